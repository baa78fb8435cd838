//! Stage 2 and the root filesystem: QEMU boots (TCG unless `K1OS_ACCEL` says
//! otherwise) of the kernel (`build/kernel/bzImage`, qemu profile), stage 1
//! (`build/initramfs.img`) and the real root filesystem
//! (`build/system.squashfs`, from `host-tools rootfs`) on a test ISO, driving
//! the serial console like a user (`host_tools::vm::Console`). Run
//! `host-tools kernel --profile qemu`, `host-tools initramfs` and
//! `host-tools rootfs` first (`ci/test.sh` does); without their outputs these
//! tests fail, naming what is missing. `K1OS_TEST_KERNEL`, `K1OS_TEST_INITRD`
//! and `K1OS_TEST_ROOTFS` point them at other files.
//!
//! The package builder's own tests, which need no VM, are in `packages.rs`.
//!
//! Console logs are kept in `build/test-logs/stage2_*.log`.
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{
    Data, OrPanic, UnderTest, assert_upper_file, power_off, start_console, wait_for_shell,
};
use host_tools::bench::timeline::{Marker, Timeline};
use host_tools::run::Cmd;
use host_tools::testimg;
use host_tools::vm::{Console, Drive, KERNEL_RESTART, Machine, Outcome};
use k1os_contract::contract;

/// From QEMU's start to the shell prompt. TCG boots take 3–8 s; a loaded
/// machine can be much slower.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// One shell command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// From `poweroff` to QEMU's exit (services stop, processes end, filesystems
/// go read-only, init's own pauses).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// The boot media (ISO 9660 `K1OS` with the real `/system.squashfs`), made
/// once per process.
fn media() -> &'static Path {
    static ISO: OnceLock<PathBuf> = OnceLock::new();
    ISO.get_or_init(|| {
        let rootfs = UnderTest::with_rootfs().rootfs.expect("asked for");
        let iso = common::scratch("stage2").join("k1os.iso");
        testimg::iso(&rootfs, &iso).unwrap_or_else(|e| panic!("making the test ISO: {e:?}"));
        iso
    })
}

/// The kernel and initramfs under test with the media as a CD-ROM.
fn vm(cmdline: &str) -> Machine {
    let t = UnderTest::with_rootfs();
    Machine::kernel(t.kernel)
        .initrd(t.initrd)
        .append(cmdline)
        .drive(Drive::cdrom(media()))
}

/// Reports the time from stage 1's `exec` to stage 2's ready line (printk
/// times, read by the bench's parser).
fn report_stage2_time(c: &Console, name: &str) {
    let t = Timeline::parse(&c.transcript());
    match (t.exec, t.span(Marker::Exec, Marker::Stage2Ready)) {
        (Some(exec), Some(us)) => eprintln!(
            "{name}: stage 2 took {:.0} ms (exec at {:.3} s)",
            us as f64 / 1000.0,
            exec as f64 / 1e6
        ),
        _ => eprintln!("{name}: no printk timestamps on the exec or ready line"),
    }
}

fn run_ok(c: &mut Console, command: &str) -> String {
    c.run_ok(command, COMMAND_TIMEOUT).or_panic()
}

fn status(c: &mut Console, command: &str) -> i32 {
    c.run(command, COMMAND_TIMEOUT).or_panic().status
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
    let mut c = start_console(&vm("k1os.mode=ram").allow_reboot(true), "stage2_ram");
    wait_for_shell(&mut c, BOOT_TIMEOUT);
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
    // The kernel under test has its drivers built in: the modules service
    // has nothing to load, and says so without failing the status.
    let modules = run_ok(&mut c, "k1os-service status modules");
    assert!(
        modules.contains("modules: not needed (/lib/modules/")
            && modules.contains("does not exist"),
        "{}",
        c.failure(&format!("k1os-service status modules: {modules}"))
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
    c.wait_for(KERNEL_RESTART, SHUTDOWN_TIMEOUT).or_panic();
    wait_for_shell(&mut c, BOOT_TIMEOUT);
    assert_eq!(
        status(&mut c, "test -e /root/ram-mode-file"),
        1,
        "{}",
        c.failure("the file survived a reboot in RAM mode")
    );
    power_off(&mut c, SHUTDOWN_TIMEOUT);
}

#[test]
fn persistent_mode_keeps_files_and_powers_off_clean() {
    let data = common::scratch("stage2-persist").join("data.img");
    testimg::data_image(&data, 64).unwrap();
    let vm = vm("k1os.mode=persist").drive(Drive::virtio(&data));
    let content = "K1OS stage 2 persistence 5c1e";

    let mut c = start_console(&vm, "stage2_persist_1");
    wait_for_shell(&mut c, BOOT_TIMEOUT);
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
    power_off(&mut c, SHUTDOWN_TIMEOUT);
    drop(c);

    assert_clean_ext4(&data);
    assert_upper_file(
        Data::Image(&data),
        "root/persisted.txt",
        &format!("{content}\n"),
    );

    let mut c = start_console(&vm, "stage2_persist_2");
    wait_for_shell(&mut c, BOOT_TIMEOUT);
    assert_eq!(run_ok(&mut c, "cat /root/persisted.txt").trim(), content);
    power_off(&mut c, SHUTDOWN_TIMEOUT);
    drop(c);
    assert_clean_ext4(&data);
}

/// The check above sees an unclean power-off (`poweroff -f` skips the
/// shutdown): so its passing in the test above means something.
#[test]
fn the_clean_check_sees_a_forced_power_off() {
    let data = common::scratch("stage2-forced").join("data.img");
    testimg::data_image(&data, 64).unwrap();
    let mut c = start_console(
        &vm("k1os.mode=persist").drive(Drive::virtio(&data)),
        "stage2_forced_poweroff",
    );
    wait_for_shell(&mut c, BOOT_TIMEOUT);
    run_ok(&mut c, "echo forced > /root/forced.txt");
    c.send_line("poweroff -f").unwrap();
    let outcome = c.wait_exit(SHUTDOWN_TIMEOUT).or_panic();
    assert!(
        matches!(outcome, Outcome::Exited(_)),
        "{}",
        c.failure("`poweroff -f` did not end QEMU")
    );
    drop(c);
    assert!(
        !ext4_problems(&data).is_empty(),
        "a forced power-off left {} clean?",
        data.display()
    );
}
