//! The built image carries `THIRD-PARTY-NOTICES` naming every package and every
//! crate linked into the binaries K1OS ships.
//!
//! The crates are checked against what cargo compiles, not against
//! `notices::shipped_crates` (which asks `cargo tree` and wrote the file):
//! `cargo check` of the binary for its target, in a target directory of its
//! own, reports every crate it compiles; those compiled for the target (not
//! for the host, as proc-macros and build scripts are) are what the binary is
//! made of.

use std::collections::BTreeSet;
use std::path::Path;

use host_tools::notices::{NOTICES_PATH, SHIPPED_BINARIES, target_of};
use host_tools::rootfs::{self, Compression, Options};
use host_tools::run::Cmd;
use host_tools::{packages, paths};

/// `name version` of every registry crate `cargo check` compiles for
/// the binary's target (`notices::target_of`) when it checks the workspace
/// binary `binary`.
fn compiled_crates(binary: &str) -> BTreeSet<String> {
    let target = target_of(binary);
    // Its own target directory: the check never waits for, or invalidates,
    // the main one; the second run finds everything fresh.
    let target_dir = paths::cargo_target_dir().join("notices-oracle");
    let out = Cmd::new("cargo")
        .args(["check", "--locked", "-p", binary, "--bin", binary])
        .args(["--target", target, "--message-format", "json"])
        .arg("--manifest-path")
        .arg(paths::repo_root().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .read()
        .unwrap();
    let for_target = target_dir.join(target);
    let mut crates = BTreeSet::new();
    for line in out.lines() {
        let message: serde_json::Value = serde_json::from_str(line).unwrap();
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let built_for_target = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .any(|f| Path::new(f).starts_with(&for_target));
        // `registry+https://…#rustix@1.1.6`; the workspace's are `path+file://…`.
        let id = message["package_id"].as_str().unwrap();
        if let (true, Some(("registry", rest))) = (built_for_target, id.split_once('+'))
            && let Some((_, name_version)) = rest.rsplit_once('#')
            && let Some((name, version)) = name_version.split_once('@')
        {
            crates.insert(format!("{name} {version}"));
        }
    }
    assert!(
        !crates.is_empty(),
        "no crates in `cargo check`'s output:\n{out}"
    );
    crates
}

/// The lines of the notices' section `Rust crates compiled into <binary>`.
fn notices_crates<'a>(text: &'a str, binary: &str) -> BTreeSet<&'a str> {
    let header = format!("Rust crates compiled into {binary}\n");
    let at = text
        .find(&header)
        .unwrap_or_else(|| panic!("no `{}` section in:\n{text}", header.trim()));
    text[at + header.len()..]
        .lines()
        .skip(2) // the underline and a blank line
        .take_while(|line| !line.is_empty())
        .collect()
}

#[test]
fn image_lists_every_package_and_shipped_crate() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::default_for_checkout(Compression::Zstd);
    opts.staging = dir.path().join("rootfs");
    opts.image = dir.path().join("system.squashfs");
    rootfs::build(&opts, |_| {}).unwrap();

    let text = Cmd::new("unsquashfs")
        .args(["-cat"])
        .arg(&opts.image)
        .arg(NOTICES_PATH)
        .read()
        .unwrap();
    for p in packages::load(&packages::packages_dir()).unwrap() {
        let entry = format!("{} {}\n  licence: {}", p.name, p.version, p.license);
        // Repository packages are not in the image: their notices travel
        // in their own archives (tests/repo_packages.rs).
        if p.repository {
            assert!(!text.contains(&entry), "repository package in:\n{text}");
        } else {
            assert!(text.contains(&entry), "no entry `{entry}` in:\n{text}");
        }
    }
    assert!(
        text.contains("corresponding\n  source"),
        "GPL packages say where their source is"
    );
    for binary in SHIPPED_BINARIES {
        let listed: BTreeSet<String> = notices_crates(&text, binary)
            .into_iter()
            .map(|line| {
                // `rustix 1.1.6  (licence)`
                let (crate_, licence) = line.split_once("  (").unwrap_or((line, ""));
                assert!(
                    licence.len() > 1 && licence.ends_with(')'),
                    "no licence in `{line}`"
                );
                crate_.to_string()
            })
            .collect();
        assert_eq!(
            listed,
            compiled_crates(binary),
            "the crates the notices list for {binary} (left) are not the ones cargo compiles \
             into it (right)"
        );
    }
}
