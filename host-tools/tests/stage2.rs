//! Stage 2 and the root filesystem.
//!
//! QEMU boots (TCG unless `K1OS_ACCEL` says otherwise) of the kernel
//! (`build/kernel/bzImage`, qemu profile), stage 1 (`build/initramfs.img`) and
//! the real root filesystem (`build/system.squashfs`, from `host-tools
//! rootfs`) on a test ISO, driving the serial console like a user with
//! `host_tools::console`. Run `host-tools kernel --profile qemu`, `host-tools
//! initramfs` and `host-tools rootfs` first (`ci/test.sh` does); without their
//! outputs these tests fail, naming what is missing. `K1OS_TEST_KERNEL`,
//! `K1OS_TEST_INITRD` and `K1OS_TEST_ROOTFS` point them at other files.
//!
//! And host tests of the package builder, with scratch package directories
//! and caches: a failing script, the cache, conflicts, reproducibility.
//!
//! Console logs are kept in `build/test-logs/stage2_*.log`.
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use host_tools::console::{Console, Options};
use host_tools::packages::{Plan, Settings};
use host_tools::qemu::{Drive, KERNEL_POWER_DOWN, KERNEL_RESTART, Vm};
use host_tools::rootfs::{self, Compression};
use host_tools::run::Cmd;
use host_tools::{paths, testimg};
use k1os_contract::contract;

/// From QEMU's start to the shell prompt. TCG boots take 3–8 s; a loaded
/// machine can be much slower.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// One shell command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// From `poweroff` to QEMU's exit (services stop, processes end, filesystems
/// go read-only, init's own pauses).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
/// The root shell's prompt on the serial console (`/etc/profile`).
const PROMPT: &str = "root@k1os:~# ";

// ---------------------------------------------------------------------------
// QEMU boots of the real image
// ---------------------------------------------------------------------------

/// The kernel, the initramfs and the root filesystem under test.
fn boot_files() -> (PathBuf, PathBuf, PathBuf) {
    let build = paths::build_dir();
    let pick =
        |var: &str, default: PathBuf| std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    let kernel = pick("K1OS_TEST_KERNEL", build.join("kernel/bzImage"));
    let initrd = pick("K1OS_TEST_INITRD", build.join("initramfs.img"));
    let rootfs = pick("K1OS_TEST_ROOTFS", build.join("system.squashfs"));
    let missing: Vec<String> = [&kernel, &initrd, &rootfs]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        panic!(
            "missing {}: run `./k1os kernel --profile qemu`, `./k1os initramfs` and \
             `./k1os rootfs` first (or point K1OS_TEST_KERNEL / K1OS_TEST_INITRD / \
             K1OS_TEST_ROOTFS at other files)",
            missing.join(", ")
        );
    }
    (kernel, initrd, rootfs)
}

/// The boot media (ISO 9660 `K1OS` with the real `/system.squashfs`), made
/// once per process.
fn media() -> PathBuf {
    static ISO: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut slot = ISO.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(|| {
        let (_, _, rootfs) = boot_files();
        let dir = testimg::images_dir().join("stage2");
        fs::create_dir_all(&dir).unwrap();
        let iso = dir.join("k1os.iso");
        testimg::iso(&rootfs, &iso).unwrap_or_else(|e| panic!("making the test ISO: {e:?}"));
        iso
    })
    .clone()
}

fn vm() -> Vm {
    let (kernel, initrd, _) = boot_files();
    Vm::new(kernel).initrd(initrd).drive(Drive::cdrom(media()))
}

fn start(vm: &Vm, name: &str, allow_reboot: bool) -> Console {
    let c = Console::start(
        vm,
        name,
        Options {
            allow_reboot,
            log: None,
        },
    )
    .unwrap_or_else(|e| panic!("starting QEMU for {name}: {e:?}"));
    eprintln!(
        "{name}: console log {} ({:?})",
        c.log_path().display(),
        c.accel()
    );
    c
}

/// `k1os-init: exec /sbin/init`.
fn exec_marker() -> String {
    format!("{}{}", contract::MARKER_EXEC, contract::DEFAULT_INIT)
}

/// Waits for stage 1's hand-over, stage 2's ready line and the prompt;
/// returns the text from the hand-over to the ready line.
fn wait_for_shell(c: &mut Console) -> String {
    c.wait_for(&exec_marker(), BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let stage2 = c
        .wait_for(contract::MARKER_STAGE2_READY, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    c.wait_for(PROMPT, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !stage2.contains("Kernel panic"),
        "{}",
        c.failure("kernel panic")
    );
    stage2
}

/// The printk timestamp (seconds) of the first line of `text` containing `marker`.
fn printk_time(text: &str, marker: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.contains(marker))?;
    let inner = line.trim_start().strip_prefix('[')?.split(']').next()?;
    inner.trim().parse().ok()
}

/// Reports the time from stage 1's `exec` to stage 2's ready line.
fn report_stage2_time(c: &Console, name: &str) {
    let text = c.transcript();
    match (
        printk_time(&text, &exec_marker()),
        printk_time(&text, contract::MARKER_STAGE2_READY),
    ) {
        (Some(a), Some(b)) => eprintln!(
            "{name}: stage 2 took {:.0} ms (exec at {a:.3} s, ready at {b:.3} s)",
            (b - a) * 1000.0
        ),
        _ => eprintln!("{name}: no printk timestamps on the exec or ready line"),
    }
}

fn run_ok(c: &mut Console, command: &str) -> String {
    c.run_ok(command, COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"))
}

fn status(c: &mut Console, command: &str) -> i32 {
    c.run(command, COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"))
        .status
}

/// Types `poweroff` and waits for QEMU to end with the kernel's power-down line.
fn power_off(c: &mut Console) {
    c.send_line("poweroff").unwrap();
    let code = c
        .wait_exit(SHUTDOWN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    let text = c.transcript();
    assert!(
        text.contains(KERNEL_POWER_DOWN),
        "{}",
        c.failure("no power-down line after `poweroff`")
    );
    assert_eq!(
        code,
        Some(0),
        "{}",
        c.failure("QEMU's exit status after the power-off")
    );
    assert!(
        !text.contains("k1os: shutdown: cannot"),
        "{}",
        c.failure("the shutdown left something writable")
    );
}

/// What is not clean in an ext4 image: its superblock's state and journal
/// (`dumpe2fs -h`), and what `e2fsck -fn` finds to fix. (`e2fsck -fn` alone
/// exits 0 on an image left by `poweroff -f`: it skips the journal replay and
/// only prints "Fix? no" for the counts it finds wrong.)
fn ext4_problems(image: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let header = Cmd::new("dumpe2fs")
        .arg("-h")
        .arg(image)
        .read()
        .unwrap_or_else(|e| panic!("{e:#}"));
    let field = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let state = field("Filesystem state:");
    if state != "clean" {
        problems.push(format!("filesystem state: {state}"));
    }
    let features = field("Filesystem features:");
    if features.split_whitespace().any(|f| f == "needs_recovery") {
        problems.push(format!("the journal needs recovery ({features})"));
    }
    match Cmd::new("e2fsck").arg("-fn").arg(image).read() {
        Ok(out) if !out.contains("Fix? no") && !out.contains("journal") => {}
        Ok(out) => problems.push(format!("`e2fsck -fn` found problems:\n{out}")),
        Err(e) => problems.push(format!("{e:#}")),
    }
    problems
}

fn assert_clean_ext4(image: &Path) {
    let problems = ext4_problems(image);
    assert!(
        problems.is_empty(),
        "{} is not clean after the power-off:\n{}",
        image.display(),
        problems.join("\n")
    );
}

#[test]
fn ram_mode_shell_services_and_reboot() {
    let mut c = start(&vm().append("k1os.mode=ram"), "stage2_ram", true);
    wait_for_shell(&mut c);
    report_stage2_time(&c, "stage2_ram");

    let os_release = run_ok(&mut c, "cat /etc/os-release");
    assert!(
        os_release.lines().any(|l| l == "NAME=K1OS"),
        "{}",
        c.failure(&format!("os-release:\n{os_release}"))
    );
    let version = format!("VERSION_ID={}", env!("CARGO_PKG_VERSION"));
    assert!(
        os_release.lines().any(|l| l == version),
        "{}",
        c.failure(&format!("no {version} in:\n{os_release}"))
    );

    let ps = run_ok(&mut c, "ps");
    for daemon in ["syslogd", "klogd"] {
        assert!(
            ps.contains(daemon),
            "{}",
            c.failure(&format!("{daemon} is not running:\n{ps}"))
        );
    }
    assert_eq!(
        status(&mut c, "k1os-service status"),
        0,
        "{}",
        c.failure("a service is not running")
    );

    let path = run_ok(&mut c, "echo $PATH");
    let dirs: Vec<&str> = path.trim().split(':').collect();
    for dir in ["/bin", "/sbin", "/usr/bin", "/usr/sbin"] {
        assert!(
            dirs.contains(&dir),
            "{}",
            c.failure(&format!("PATH lacks {dir}: {path}"))
        );
    }
    assert!(
        dirs.iter().all(|d| d.starts_with('/')),
        "{}",
        c.failure(&format!("PATH has a relative entry: {path}"))
    );
    assert_eq!(run_ok(&mut c, "hostname").trim(), "k1os");
    assert_eq!(run_ok(&mut c, "echo $HOME").trim(), "/root");

    let mounts = run_ok(&mut c, "cat /proc/mounts");
    for (dir, fstype) in [
        ("/", "overlay"),
        ("/dev/pts", "devpts"),
        ("/tmp", "tmpfs"),
        ("/proc", "proc"),
        ("/run", "tmpfs"),
    ] {
        assert!(
            mounts
                .lines()
                .any(|l| l.split(' ').nth(1) == Some(dir) && l.split(' ').nth(2) == Some(fstype)),
            "{}",
            c.failure(&format!("{dir} is not a {fstype} mount:\n{mounts}"))
        );
    }
    let lo = run_ok(&mut c, "ip link show lo");
    assert!(
        lo.contains("UP"),
        "{}",
        c.failure(&format!("lo is not up:\n{lo}"))
    );
    // The shell has job control (a controlling terminal), and syslogd logs.
    assert_eq!(run_ok(&mut c, "tty").trim(), "/dev/ttyS0");
    run_ok(
        &mut c,
        "logger k1os-test-log-line && sleep 1 && grep -q k1os-test-log-line /var/log/messages",
    );

    // RAM mode: what is written is gone after a reboot.
    run_ok(
        &mut c,
        "echo ram > /root/ram-mode-file && sync && test -f /root/ram-mode-file",
    );
    c.send_line("reboot").unwrap();
    c.wait_for(KERNEL_RESTART, SHUTDOWN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    wait_for_shell(&mut c);
    assert_eq!(
        status(&mut c, "test -e /root/ram-mode-file"),
        1,
        "{}",
        c.failure("the file survived a reboot in RAM mode")
    );
    power_off(&mut c);
}

#[test]
fn persistent_mode_keeps_files_and_powers_off_clean() {
    let dir = testimg::images_dir().join("stage2-persist");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data.img");
    testimg::data_image(&data, 64).unwrap();
    let vm = vm().append("k1os.mode=persist").drive(Drive::virtio(&data));
    let content = "K1OS stage 2 persistence 5c1e";

    let mut c = start(&vm, "stage2_persist_1", false);
    wait_for_shell(&mut c);
    report_stage2_time(&c, "stage2_persist_1");
    let mounts = run_ok(&mut c, "cat /proc/mounts");
    assert!(
        mounts
            .lines()
            .any(|l| l.split(' ').nth(1) == Some(contract::RUN_DATA) && l.contains(" ext4 rw")),
        "{}",
        c.failure(&format!(
            "the data partition is not mounted rw on {}:\n{mounts}",
            contract::RUN_DATA
        ))
    );
    // No sync: the shutdown must do it.
    run_ok(&mut c, &format!("echo '{content}' > /root/persisted.txt"));
    power_off(&mut c);
    drop(c);

    assert_clean_ext4(&data);
    let on_disk = testimg::read_upper_file(&data, "root/persisted.txt").unwrap();
    assert_eq!(
        on_disk.as_deref().map(String::from_utf8_lossy).as_deref(),
        Some(format!("{content}\n").as_str()),
        "/{}/root/persisted.txt in {}",
        contract::DATA_UPPER_DIR,
        data.display()
    );

    let mut c = start(&vm, "stage2_persist_2", false);
    wait_for_shell(&mut c);
    assert_eq!(run_ok(&mut c, "cat /root/persisted.txt").trim(), content);
    power_off(&mut c);
    drop(c);
    assert_clean_ext4(&data);
}

/// The check above sees an unclean power-off (`poweroff -f` skips the
/// shutdown): so its passing in the test above means something.
#[test]
fn the_clean_check_sees_a_forced_power_off() {
    let dir = testimg::images_dir().join("stage2-forced");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let data = dir.join("data.img");
    testimg::data_image(&data, 64).unwrap();
    let mut c = start(
        &vm().append("k1os.mode=persist").drive(Drive::virtio(&data)),
        "stage2_forced_poweroff",
        false,
    );
    wait_for_shell(&mut c);
    run_ok(&mut c, "echo forced > /root/forced.txt");
    c.send_line("poweroff -f").unwrap();
    c.wait_exit(SHUTDOWN_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:#}"));
    drop(c);
    assert!(
        !ext4_problems(&data).is_empty(),
        "a forced power-off left {} clean?",
        data.display()
    );
}

// ---------------------------------------------------------------------------
// The package builder, on scratch packages
// ---------------------------------------------------------------------------

/// A scratch packages directory, cache and work directory.
struct Scratch {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        fs::create_dir_all(root.join("packages")).unwrap();
        Scratch { _tmp: tmp, root }
    }

    fn settings(&self) -> Settings {
        Settings {
            packages_dir: self.root.join("packages"),
            cache_dir: self.root.join("cache"),
            work_dir: self.root.join("work"),
            jobs: 1,
        }
    }

    fn options(&self, image: &str) -> rootfs::Options {
        rootfs::Options {
            settings: self.settings(),
            staging: self.root.join("staging"),
            image: self.root.join(image),
            compression: Compression::Zstd,
        }
    }

    fn package(&self, name: &str, depends: &[&str], extra: &str, script: &str) {
        let dir = self.root.join("packages").join(name);
        fs::create_dir_all(&dir).unwrap();
        let deps: Vec<String> = depends.iter().map(|d| format!("\"{d}\"")).collect();
        fs::write(
            dir.join("package.toml"),
            format!(
                "name = \"{name}\"\nversion = \"1.0\"\ndescription = \"test package {name}\"\n\
                 license = \"MIT\"\ndepends = [{}]\n{extra}",
                deps.join(", ")
            ),
        )
        .unwrap();
        fs::write(dir.join("build.sh"), script).unwrap();
    }

    /// A package that makes the tree bootable-looking (what `check_staging` wants).
    fn skeleton(&self) {
        self.package(
            "skel",
            &[],
            "",
            "for d in dev proc sys run tmp sbin etc; do mkdir -p \"$DESTDIR/$d\"; done\n\
             printf '#!/bin/sh\\n' > \"$DESTDIR/sbin/init\"\nchmod 755 \"$DESTDIR/sbin/init\"\n\
             echo NAME=TEST > \"$DESTDIR/etc/os-release\"\n",
        );
    }
}

fn built_names(r: &rootfs::Rootfs, cached: bool) -> Vec<String> {
    r.packages
        .iter()
        .filter(|b| b.cached == cached)
        .map(|b| b.name.clone())
        .collect()
}

#[test]
fn a_failing_package_stops_the_build_with_its_name_and_log_tail() {
    let s = Scratch::new();
    s.package("first", &[], "", "echo first > \"$DESTDIR/first\"\n");
    s.package(
        "broken",
        &["first"],
        "",
        "echo 'configuring broken'\necho 'error: the compiler is on strike (on purpose)' >&2\nexit 3\n",
    );
    s.package(
        "after",
        &["broken"],
        "",
        "echo after > \"$DESTDIR/after\"\n",
    );
    let plan = Plan::new(s.settings()).unwrap();
    let mut reported = Vec::new();
    let err = plan.build(|b| reported.push(b.name.clone())).unwrap_err();
    let msg = format!("{err:#}");
    for expected in [
        "package `broken` 1.0 failed to build",
        "exit status: 3",
        "error: the compiler is on strike (on purpose)",
        "configuring broken",
        "broken.log",
    ] {
        assert!(
            msg.contains(expected),
            "{expected:?} not in the error:\n{msg}"
        );
    }
    assert_eq!(
        reported,
        vec!["first"],
        "only the package before the broken one is done"
    );
    let log = fs::read_to_string(s.root.join("work/broken.log")).unwrap();
    assert!(log.contains("on strike"), "the full log is kept: {log}");
    // Nothing of the broken build is left in the cache.
    let cached: Vec<String> = fs::read_dir(s.root.join("cache/packages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].starts_with("first-"), "{cached:?}");
}

#[test]
fn a_second_build_with_nothing_changed_rebuilds_no_package() {
    let s = Scratch::new();
    s.skeleton();
    let tree = s.root.join("packages/lib/files");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("greeting"), "hello\n").unwrap();
    s.package(
        "lib",
        &[],
        "[[source]]\ntree = \"files\"\n",
        "mkdir -p \"$DESTDIR/usr/lib\"\ncp \"$SRCDIR/files/greeting\" \"$DESTDIR/usr/lib/greeting\"\n",
    );
    s.package(
        "app",
        &["lib"],
        "",
        // A dependency's output is in $SYSROOT.
        "mkdir -p \"$DESTDIR/usr/bin\"\n{ echo '#!/bin/sh'; echo \"echo $(cat \"$SYSROOT/usr/lib/greeting\")\"; } \
         > \"$DESTDIR/usr/bin/app\"\nchmod 755 \"$DESTDIR/usr/bin/app\"\n",
    );

    let first = rootfs::build(&s.options("one.squashfs"), |_| {}).unwrap();
    assert_eq!(built_names(&first, false), vec!["lib", "app", "skel"]);
    let second = rootfs::build(&s.options("two.squashfs"), |_| {}).unwrap();
    assert_eq!(
        built_names(&second, false),
        Vec::<String>::new(),
        "nothing changed, nothing rebuilt"
    );
    assert_eq!(
        fs::read(&first.image).unwrap(),
        fs::read(&second.image).unwrap(),
        "two builds give identical images"
    );
    assert_eq!(
        fs::read_to_string(s.root.join("staging/usr/bin/app")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );

    // A change in a tree source rebuilds its package and what depends on it.
    fs::write(tree.join("greeting"), "bonjour\n").unwrap();
    let third = rootfs::build(&s.options("three.squashfs"), |_| {}).unwrap();
    assert_eq!(built_names(&third, false), vec!["lib", "app"]);
    assert_eq!(built_names(&third, true), vec!["skel"]);
    assert_ne!(
        fs::read(&first.image).unwrap(),
        fs::read(&third.image).unwrap()
    );
}

#[test]
fn two_packages_installing_the_same_file_are_refused() {
    let s = Scratch::new();
    s.skeleton();
    s.package(
        "one",
        &[],
        "",
        "mkdir -p \"$DESTDIR/etc\"\necho 1 > \"$DESTDIR/etc/motd\"\n",
    );
    s.package(
        "two",
        &[],
        "",
        "mkdir -p \"$DESTDIR/etc\"\necho 2 > \"$DESTDIR/etc/motd\"\n",
    );
    let err = format!(
        "{:#}",
        rootfs::build(&s.options("x.squashfs"), |_| {}).unwrap_err()
    );
    assert!(
        err.contains("`one` and `two` both install /etc/motd"),
        "{err}"
    );
}

#[test]
fn a_package_without_a_licence_is_refused_before_anything_is_built() {
    let s = Scratch::new();
    s.skeleton();
    let dir = s.root.join("packages/nolicence");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("package.toml"),
        "name = \"nolicence\"\nversion = \"1\"\ndescription = \"d\"\n",
    )
    .unwrap();
    fs::write(dir.join("build.sh"), "exit 0\n").unwrap();
    let err = format!("{:#}", Plan::new(s.settings()).unwrap_err());
    assert!(
        err.contains("nolicence/package.toml") && err.contains("`license` is missing"),
        "{err}"
    );
    assert!(!s.root.join("cache").exists(), "nothing was built");
}

/// The real packages: a second build with nothing changed rebuilds nothing
/// and gives the same bytes. (The first may build: it downloads busybox-static
/// from the Debian mirror when the source cache does not have it yet.)
#[test]
fn the_real_rootfs_is_cached_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = rootfs::Options::default_for_checkout(Compression::Zstd);
    opts.staging = tmp.path().join("rootfs");
    opts.image = tmp.path().join("one.squashfs");
    opts.settings.work_dir = tmp.path().join("packages");
    let first = rootfs::build(&opts, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    opts.image = tmp.path().join("two.squashfs");
    let second = rootfs::build(&opts, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(built_names(&second, false), Vec::<String>::new());
    assert_eq!(
        fs::read(&first.image).unwrap(),
        fs::read(&second.image).unwrap()
    );
    for path in [
        "sbin/init",
        "bin/sh",
        "etc/inittab",
        "etc/os-release",
        "lib/k1os/contract.sh",
    ] {
        assert!(
            fs::symlink_metadata(opts.staging.join(path)).is_ok(),
            "/{path} is missing"
        );
    }
    let contract_sh = fs::read_to_string(opts.staging.join("lib/k1os/contract.sh")).unwrap();
    assert!(
        contract_sh.contains(&format!(
            "K1OS_MARKER_STAGE2_READY='{}'",
            contract::MARKER_STAGE2_READY
        )),
        "{contract_sh}"
    );
    assert!(!contract_sh.contains("@K1OS_"), "{contract_sh}");
}
