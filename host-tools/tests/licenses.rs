//! The licence policy (`deny.toml`) really rejects a crate whose licence is not
//! on the allowlist, naming the crate and its licence: a scratch workspace with
//! a GPL-only path dependency must fail `cargo deny check licenses`.

use std::path::Path;
use std::process::Command;

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A workspace whose only dependency carries `license`.
fn scratch_workspace(dir: &Path, license: &str) {
    write(
        &dir.join("Cargo.toml"),
        r#"[package]
name = "scratch-app"
version = "0.1.0"
edition = "2021"
license = "Apache-2.0"
publish = false

[dependencies]
scratch-dep = { path = "dep" }
"#,
    );
    write(&dir.join("src/main.rs"), "fn main() {}\n");
    write(
        &dir.join("dep/Cargo.toml"),
        &format!(
            "[package]\nname = \"scratch-dep\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"{license}\"\npublish = false\n"
        ),
    );
    write(&dir.join("dep/src/lib.rs"), "");
}

fn cargo_deny_licenses(dir: &Path) -> (bool, String) {
    let out = Command::new("cargo")
        .args(["deny", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--config")
        .arg(repo_root().join("deny.toml"))
        .args(["check", "licenses"])
        .output()
        .expect("cargo deny is installed (./k1os doctor --install)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        !text.contains("no such command"),
        "cargo-deny is missing: run `./k1os doctor --install`\n{text}"
    );
    (out.status.success(), text)
}

#[test]
fn a_gpl_dependency_fails_the_licence_check_by_name() {
    let dir = tempfile::tempdir().unwrap();
    scratch_workspace(dir.path(), "GPL-3.0-only");
    let (ok, text) = cargo_deny_licenses(dir.path());
    assert!(
        !ok,
        "cargo deny accepted a GPL-3.0-only dependency:\n{text}"
    );
    assert!(
        text.contains("scratch-dep"),
        "the message names the crate:\n{text}"
    );
    assert!(
        text.contains("GPL-3.0-only"),
        "the message names the licence:\n{text}"
    );
}

#[test]
fn an_allowed_licence_passes() {
    let dir = tempfile::tempdir().unwrap();
    scratch_workspace(dir.path(), "MIT OR Apache-2.0");
    let (ok, text) = cargo_deny_licenses(dir.path());
    assert!(
        ok,
        "cargo deny rejected an MIT OR Apache-2.0 dependency:\n{text}"
    );
}
