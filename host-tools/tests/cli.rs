//! The command line as a newcomer meets it, through the real binary: which
//! checkout it acts on (the one you stand in, found from a subdirectory or
//! in a copy; a clear refusal outside any), environment variables named in
//! their errors, `qemu --memory` units, `make-persist` without a terminal and
//! twice in a row, `qemu --persist` with a missing image, a closed stdout,
//! and the help texts. Cheap: no kernel, no VM, no cargo.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The checkout these tests were built in (the test's own working directory
/// is `host-tools/`, inside it).
fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// host-tools with `args`, run in `dir`, without the variables that would
/// change what it acts on.
fn host_tools(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-tools"));
    cmd.args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .env("NO_COLOR", "1");
    for var in [
        "K1OS_ROOT",
        "K1OS_BUILD_DIR",
        "K1OS_KERNEL_PROFILE",
        "K1OS_ACCEL",
        "RUST_BACKTRACE",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run(cmd: &mut Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("host-tools runs");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A copy of a checkout that has only what marks it as one (the workspace
/// manifest, the two packages' manifests) and one scratch package `extra`.
fn scratch_checkout(dir: &Path) {
    let real = checkout();
    for file in [
        "Cargo.toml",
        "host-tools/Cargo.toml",
        "init-nostd/Cargo.toml",
    ] {
        let to = dir.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(real.join(file), &to).unwrap();
    }
    let pkg = dir.join("packages/extra");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("package.toml"),
        "name = \"extra\"\nversion = \"1.0\"\ndescription = \"only in the copy\"\n\
         license = \"MIT\"\n",
    )
    .unwrap();
    std::fs::write(pkg.join("build.sh"), "true\n").unwrap();
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
}

#[test]
fn the_checkout_is_found_from_a_subdirectory() {
    let root = checkout();
    let r = run(&mut host_tools(
        &root.join("host-tools/src/commands"),
        &["-v", "packages"],
    ));
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stdout.contains("\nbase "), "{r}");
    assert!(
        r.stderr
            .contains(&format!("checkout {}, build directory", root.display())),
        "{r}"
    );
}

#[test]
fn a_copy_of_the_checkout_acts_on_itself() {
    let dir = tempfile::tempdir().unwrap();
    scratch_checkout(dir.path());
    let r = run(
        host_tools(&dir.path().join("sub/deeper"), &["-v", "packages"])
            .env("K1OS_CACHE", dir.path().join("cache")),
    );
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stdout.contains("\nextra "), "the copy's package: {r}");
    assert!(!r.stdout.contains("busybox"), "the real checkout's: {r}");
    assert!(
        r.stderr.contains(&format!(
            "checkout {}, build directory {}",
            dir.path().display(),
            dir.path().join("build").display()
        )),
        "{r}"
    );
}

#[test]
fn a_relative_build_dir_is_taken_from_the_checkout() {
    let dir = tempfile::tempdir().unwrap();
    scratch_checkout(dir.path());
    let r = run(host_tools(&dir.path().join("sub"), &["-v", "packages"])
        .env("K1OS_CACHE", dir.path().join("cache"))
        .env("K1OS_BUILD_DIR", "out/here"));
    assert_eq!(r.code, Some(0), "{r}");
    assert!(
        r.stderr.contains(&format!(
            "build directory {}",
            dir.path().join("out/here").display()
        )),
        "{r}"
    );
}

#[test]
fn outside_any_checkout_every_command_refuses() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["packages"][..],
        &["make-persist", "x.img", "--size", "16M"],
    ] {
        let r = run(&mut host_tools(dir.path(), args));
        assert_eq!(r.code, Some(1), "{r}");
        assert!(
            r.stderr.contains(&format!(
                "{} is not inside a K1OS checkout",
                dir.path().display()
            )),
            "{r}"
        );
        assert!(r.stderr.contains("cd into a K1OS checkout"), "{r}");
        assert!(r.stderr.contains("K1OS_ROOT"), "{r}");
        assert!(!r.stderr.contains("panicked"), "{r}");
    }
    assert!(!dir.path().join("x.img").exists());
    assert!(!dir.path().join("build").exists());

    // K1OS_ROOT names the checkout instead; a wrong one is named.
    let r = run(host_tools(dir.path(), &["-v", "packages"]).env("K1OS_ROOT", checkout()));
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stdout.contains("\nbase "), "{r}");
    let r = run(host_tools(&checkout(), &["packages"]).env("K1OS_ROOT", dir.path()));
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr.contains(&format!(
            "K1OS_ROOT={} is not a K1OS checkout",
            dir.path().display()
        )),
        "{r}"
    );
}

#[test]
fn a_bad_environment_variable_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let r = run(
        host_tools(&checkout(), &["iso", "--out", out.to_str().unwrap()])
            .env("K1OS_KERNEL_PROFILE", "bogus"),
    );
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr
            .contains("K1OS_KERNEL_PROFILE=bogus: expected qemu, generic or debian"),
        "{r}"
    );
    assert!(!r.stderr.contains("--profile"), "blames a flag: {r}");
    assert!(!out.exists(), "built something: {r}");

    let r = run(host_tools(&checkout(), &["qemu"]).env("K1OS_ACCEL", "fast"));
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr
            .contains("K1OS_ACCEL=fast: expected auto, kvm or tcg"),
        "{r}"
    );
}

#[test]
fn qemu_memory_takes_units() {
    let missing = "/nonexistent/k1os.iso";
    for ok in ["1G", "512M", "2048"] {
        let r = run(&mut host_tools(
            &checkout(),
            &["qemu", "--memory", ok, "--iso", missing],
        ));
        // Parsed: the command gets as far as the missing ISO.
        assert_eq!(r.code, Some(1), "{ok}: {r}");
        assert!(r.stderr.contains("does not exist"), "{ok}: {r}");
    }
    for (bad, why) in [
        ("1.5G", "1536M"),
        ("banana", "2G = 2 GiB"),
        ("1", "too little"),
    ] {
        let r = run(&mut host_tools(
            &checkout(),
            &["qemu", "--memory", bad, "--iso", missing],
        ));
        assert_eq!(r.code, Some(2), "{bad}: {r}");
        assert!(r.stderr.contains(why), "{bad}: {r}");
    }
}

#[test]
fn qemu_refuses_a_missing_data_image_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let iso = dir.path().join("fake.iso");
    std::fs::write(&iso, b"not booted").unwrap();
    let typo = dir.path().join("typo.img");
    let r = run(&mut host_tools(
        &checkout(),
        &[
            "qemu",
            "--accel",
            "tcg",
            "--iso",
            iso.to_str().unwrap(),
            "--persist",
            typo.to_str().unwrap(),
        ],
    ));
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr.contains("does not exist") && r.stderr.contains("make-persist"),
        "{r}"
    );
    assert!(!typo.exists(), "made the image: {r}");
}

#[test]
fn make_persist_twice_with_if_missing_keeps_the_image() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("data.img");
    let args = [
        "make-persist",
        image.to_str().unwrap(),
        "--size",
        "16M",
        "--if-missing",
    ];
    let r = run(&mut host_tools(&checkout(), &args));
    assert_eq!(r.code, Some(0), "{r}");
    let made = std::fs::metadata(&image).unwrap().modified().unwrap();
    let r = run(&mut host_tools(&checkout(), &args));
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stderr.contains("already exists: kept"), "{r}");
    assert_eq!(std::fs::metadata(&image).unwrap().modified().unwrap(), made);
    // Without --if-missing it is still an error, naming --force.
    let r = run(&mut host_tools(&checkout(), &args[..4]));
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("--force"), "{r}");
}

#[test]
fn make_persist_size_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("x.img");
    for bad in ["banana", "1.5G", "-1M"] {
        let r = run(&mut host_tools(
            &checkout(),
            &["make-persist", image.to_str().unwrap(), "--size", bad],
        ));
        assert_eq!(r.code, Some(1), "{bad}: {r}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{bad}: {r}");
        assert!(r.stderr.contains(&format!("size `{bad}`")), "{bad}: {r}");
    }
    assert!(!image.exists());
}

/// A block device node (in a scratch directory, for a device that does not
/// exist: nothing can be written to it), or an existing one under /dev when
/// this user may not make nodes. The refusal comes before anything opens it.
fn some_block_device(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::FileTypeExt;
    let node = dir.join("fake-disk");
    let made = Command::new("mknod")
        .arg(&node)
        .args(["b", "7", "250"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        return Some(node);
    }
    std::fs::read_dir("/dev").ok()?.flatten().find_map(|e| {
        let is_block = e.file_type().is_ok_and(|t| t.is_block_device());
        is_block.then(|| e.path())
    })
}

#[test]
fn make_persist_on_a_device_without_a_terminal_needs_yes() {
    let dir = tempfile::tempdir().unwrap();
    let Some(device) = some_block_device(dir.path()) else {
        eprintln!("no block device to try: skipped");
        return;
    };
    let r = run(&mut host_tools(
        &checkout(),
        &["make-persist", device.to_str().unwrap()],
    ));
    assert_eq!(r.code, Some(1), "{r}");
    assert!(
        r.stderr.contains("stdin is not a terminal") && r.stderr.contains("pass --yes"),
        "{r}"
    );
    assert!(!r.stderr.contains("holds:"), "listed the device first: {r}");
}

#[test]
fn the_dev_guard_spares_dev_shm_but_not_dev() {
    let r = run(&mut host_tools(
        &checkout(),
        &["make-persist", "/dev/k1os-no-such-disk"],
    ));
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("not a block device"), "{r}");
    if !Path::new("/dev/shm").is_dir() {
        return;
    }
    let image = PathBuf::from(format!("/dev/shm/k1os-cli-test-{}.img", std::process::id()));
    let r = run(&mut host_tools(
        &checkout(),
        &["make-persist", image.to_str().unwrap(), "--size", "16M"],
    ));
    let _ = std::fs::remove_file(&image);
    assert_eq!(r.code, Some(0), "{r}");
}

#[test]
fn rootfs_out_is_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("system.squashfs");
    let r = run(&mut host_tools(
        &checkout(),
        &["rootfs", "--out", file.to_str().unwrap()],
    ));
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("--image"), "{r}");
    assert!(!file.exists());
}

#[test]
fn a_closed_stdout_is_not_a_panic() {
    let mut child = host_tools(&checkout(), &["packages"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads: every write to stdout fails with EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn help_lists_commands_in_build_order_and_the_environment() {
    let r = run(host_tools(&checkout(), &["--help"]).env("COLUMNS", "80"));
    assert_eq!(r.code, Some(0), "{r}");
    let order = [
        "doctor",
        "kernel",
        "initramfs",
        "packages",
        "rootfs",
        "iso",
        "make-persist",
        "qemu",
        "bench",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|c| {
            r.stdout
                .find(&format!("\n  {c} "))
                .unwrap_or_else(|| panic!("{c} not listed: {r}"))
        })
        .collect();
    assert!(positions.is_sorted(), "not in build order: {r}");
    for var in [
        "K1OS_KERNEL_PROFILE",
        "K1OS_CACHE",
        "K1OS_BUILD_DIR",
        "K1OS_ACCEL",
        "SOURCE_DATE_EPOCH",
        "CARGO_TARGET_DIR",
    ] {
        assert!(r.stdout.contains(&format!("\n  {var} ")), "{var}: {r}");
    }
    assert!(r.stdout.contains("./k1os iso --profile qemu"), "{r}");
    assert!(r.stdout.lines().all(|l| l.chars().count() <= 80), "{r}");

    // In a subcommand's help, -v comes last and the examples follow.
    let r = run(host_tools(&checkout(), &["initramfs", "--help"]).env("COLUMNS", "80"));
    let options: Vec<&str> = r
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .collect();
    assert!(options.last().unwrap().contains("--verbose"), "{r}");
    assert!(r.stdout.contains("Examples:\n  ./k1os initramfs"), "{r}");

    // Every example fits 80 columns: none is wrapped onto a line of its own.
    for command in [
        "initramfs",
        "packages",
        "rootfs",
        "iso",
        "make-persist",
        "qemu",
    ] {
        let r = run(host_tools(&checkout(), &[command, "--help"]).env("COLUMNS", "80"));
        let (_, examples) = r
            .stdout
            .split_once("Examples:\n")
            .unwrap_or_else(|| panic!("{command} has no examples: {r}"));
        for line in examples.lines().filter(|l| !l.is_empty()) {
            assert!(
                line.starts_with("  ./k1os ") || line.starts_with("  sudo "),
                "{command}: wrapped example `{line}`: {r}"
            );
        }
    }
}
