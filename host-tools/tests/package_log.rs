//! A package build names its log when it starts (issue 9.4), so a slow one
//! can be followed with `tail -f`: `rootfs` on a scratch package whose script
//! fails after a moment. Nothing is packed; it takes about a second.
use std::fs;

use host_tools::run::Cmd;

#[test]
fn a_package_build_prints_its_log_path_when_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("packages/scratch");
    fs::create_dir_all(&package).unwrap();
    fs::write(
        package.join("package.toml"),
        "name = \"scratch\"\nversion = \"1.0\"\ndescription = \"a test package\"\n\
         license = \"MIT\"\ndepends = []\n",
    )
    .unwrap();
    fs::write(
        package.join("build.sh"),
        "echo compiling scratch\necho 'scratch: it broke' >&2\nexit 3\n",
    )
    .unwrap();
    let build = dir.path().join("build");
    let out = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .arg("rootfs")
        .arg("--packages")
        .arg(dir.path().join("packages"))
        .env("K1OS_BUILD_DIR", &build)
        .env("K1OS_CACHE", dir.path().join("cache"))
        .stdin_null()
        .output_unchecked()
        .unwrap();
    let stderr = &out.stderr;
    assert!(!out.success, "the script fails: {stderr}");
    let log = build.join("packages/scratch.log");
    let line = format!("package scratch 1.0: building (log: {})", log.display());
    let at = stderr
        .find(&line)
        .unwrap_or_else(|| panic!("`{line}` not in:\n{stderr}"));
    let error = stderr.find("error:").expect("an error");
    assert!(at < error, "printed when the build starts:\n{stderr}");
    let text = fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("compiling scratch") && text.contains("it broke"),
        "{text}"
    );
}
