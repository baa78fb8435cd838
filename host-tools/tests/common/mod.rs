//! What the QEMU test suites (`boot.rs`, `stage2.rs`, `iso.rs`) share: the
//! artefacts under test, scratch directories, fixtures made once per test
//! process, and the assertions they all make.
//!
//! Fixtures made once per process are `OnceLock`s: the first test that needs
//! one makes it while the others wait, and a panic while making it fails
//! that test and lets the next one try again.
// Each test binary uses part of this module.
#![allow(dead_code)]

pub mod screen;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use host_tools::vm::{BootLog, Console};
use host_tools::{paths, testimg};
use k1os_contract::cmdline::Mode;
use k1os_contract::contract;

/// The root shell's prompt on the serial console (`rootfs/etc/profile`).
pub const PROMPT: &str = "root@k1os:~# ";

/// The kernel, stage 1 and (for the stage-2 tests) the root filesystem under
/// test: `build/kernel/bzImage`, `build/initramfs.img`,
/// `build/system.squashfs`, or the files `K1OS_TEST_KERNEL`,
/// `K1OS_TEST_INITRD` and `K1OS_TEST_ROOTFS` name. `K1OS_TEST_INITRD=reference`
/// packs (once) and boots the reference busybox-script stage 1
/// (`ci/bench/reference-init.sh`, a benchmark fixture) instead of init-nostd.
pub struct UnderTest {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// `None` unless asked for.
    pub rootfs: Option<PathBuf>,
}

impl UnderTest {
    /// The kernel and initramfs; panics, naming what is missing and how to
    /// build it, when a file does not exist (the tests never pass silently).
    pub fn boot_files() -> UnderTest {
        UnderTest::find(false)
    }

    /// [`UnderTest::boot_files`] and the root filesystem.
    pub fn with_rootfs() -> UnderTest {
        UnderTest::find(true)
    }

    fn find(rootfs: bool) -> UnderTest {
        let build = paths::build_dir();
        let pick = |var: &str, default: &str| {
            std::env::var_os(var)
                .map(PathBuf::from)
                .unwrap_or_else(|| build.join(default))
        };
        let mut initrd = pick("K1OS_TEST_INITRD", "initramfs.img");
        if initrd.as_os_str() == "reference" {
            initrd = reference_initramfs().to_path_buf();
        }
        let under_test = UnderTest {
            kernel: pick("K1OS_TEST_KERNEL", "kernel/bzImage"),
            initrd,
            rootfs: rootfs.then(|| pick("K1OS_TEST_ROOTFS", "system.squashfs")),
        };
        let missing: Vec<String> = [&under_test.kernel, &under_test.initrd]
            .into_iter()
            .chain(&under_test.rootfs)
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .collect();
        if !missing.is_empty() {
            panic!(
                "missing {}: run `./k1os kernel --profile qemu`, `./k1os initramfs`{} first \
                 (or point K1OS_TEST_KERNEL / K1OS_TEST_INITRD{} at other files)",
                missing.join(", "),
                if rootfs { " and `./k1os rootfs`" } else { "" },
                if rootfs { " / K1OS_TEST_ROOTFS" } else { "" },
            );
        }
        under_test
    }
}

/// The reference stage 1 packed once per process.
fn reference_initramfs() -> &'static Path {
    static PACKED: OnceLock<PathBuf> = OnceLock::new();
    PACKED.get_or_init(|| {
        let out = testimg::images_dir().join("reference-initramfs.img");
        testimg::reference_initramfs(&out)
            .unwrap_or_else(|e| panic!("packing the reference initramfs: {e:?}"));
        out
    })
}

/// The test media of `host_tools::testimg` (a test stage 2 that reports
/// and powers off), made once per process.
pub fn test_media() -> &'static testimg::Media {
    static MEDIA: OnceLock<testimg::Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        testimg::media().unwrap_or_else(|e| panic!("building the test media: {e:?}"))
    })
}

/// `build/test-images/<name>/`, emptied: a test's own scratch directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = testimg::images_dir().join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Stage 1's hand-over line: `k1os-init: exec /sbin/init`.
pub fn exec_marker() -> String {
    format!("{}{}", contract::MARKER_EXEC, contract::DEFAULT_INIT)
}

/// Where a data filesystem is.
#[derive(Clone, Copy, Debug)]
pub enum Data<'a> {
    /// A raw ext4 image.
    Image(&'a Path),
    /// The ext4 in partition `n` of a GPT disk image.
    Partition(&'a Path, u32),
}

/// Asserts that `/upper/<rel>` of the data filesystem holds `expected`: what
/// the guest wrote went to the overlay's upper layer on the data partition.
#[track_caller]
pub fn assert_upper_file(data: Data, rel: &str, expected: &str) {
    let rel = rel.trim_start_matches('/');
    let (found, place) = match data {
        Data::Image(image) => (
            testimg::read_upper_file(image, rel),
            image.display().to_string(),
        ),
        Data::Partition(disk, n) => (
            testimg::read_upper_file_in_partition(disk, n, rel),
            format!("partition {n} of {}", disk.display()),
        ),
    };
    let found = found.unwrap_or_else(|e| panic!("reading /{rel} from {place}: {e:#}"));
    assert_eq!(
        found.as_deref().map(String::from_utf8_lossy).as_deref(),
        Some(expected),
        "/{}/{rel} in {place}",
        contract::DATA_UPPER_DIR,
    );
}

/// A `key=value` of `/run/k1os/boot` as the test stage 2 printed it.
#[track_caller]
pub fn boot_value<'a>(log: &'a BootLog, key: &str) -> &'a str {
    let marker = format!("{}{key}=", testimg::STAGE2_BOOT_LINE);
    log.value_after(&marker).unwrap_or_else(|| {
        panic!(
            "{}",
            log.failure(&format!("/run/k1os/boot has no `{key}=` line"))
        )
    })
}

/// Asserts the mode stage 1 chose, as the test stage 2 printed it.
#[track_caller]
pub fn assert_mode(log: &BootLog, mode: Mode) {
    let found = boot_value(log, contract::boot_file::MODE);
    if found != mode.as_str() {
        panic!(
            "{}",
            log.failure(&format!("mode={found}, expected mode={}", mode.as_str()))
        );
    }
}

/// `poweroff` at the shell: QEMU must exit with status 0 after the kernel's
/// power-down line, and stage 2's shutdown must not report anything it could
/// not unmount or make read-only.
#[track_caller]
pub fn power_off(console: &mut Console, timeout: Duration) {
    console
        .power_off(timeout)
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert!(
        !console.transcript().contains("k1os: shutdown: cannot"),
        "{}",
        console.failure("the shutdown left something writable")
    );
}

/// Boots `vm` until QEMU exits (or `timeout`), and says how it ended.
pub fn boot(vm: &host_tools::vm::Machine, name: &str, timeout: Duration) -> BootLog {
    let log = vm
        .run(name, timeout)
        .unwrap_or_else(|e| panic!("running QEMU for {name}: {e:?}"));
    report(&log);
    log
}

/// Persistent mode across two boots of `base` (its data disk the ext4
/// image `data`): the first boot's test stage 2 writes the test file
/// ([`testimg::TEST_WRITE`]), the second finds it, and the file is in the
/// disk's upper layer. `reached` is the suite's own check that a boot got
/// through stage 1 to the end of stage 2 (what it asserts differs with the
/// kernel); the logs are `<name>_1_write` and `<name>_2_read`.
pub fn assert_persists_across_boots(
    base: &host_tools::vm::Machine,
    data: &Path,
    name: &str,
    timeout: Duration,
    reached: impl Fn(&BootLog),
) {
    let first = boot(
        &base.clone().append(testimg::TEST_WRITE),
        &format!("{name}_1_write"),
        timeout,
    );
    reached(&first);
    assert_mode(&first, Mode::Persist);
    first.assert_line(testimg::TEST_WROTE);

    let second = boot(base, &format!("{name}_2_read"), timeout);
    reached(&second);
    assert_mode(&second, Mode::Persist);
    let found = format!("{}{}", testimg::TEST_FOUND, testimg::PERSISTED_CONTENT);
    second.assert_line(&found);

    assert_upper_file(
        Data::Image(data),
        testimg::PERSISTED_FILE,
        &format!("{}\n", testimg::PERSISTED_CONTENT),
    );
}

/// How a boot ended, after how long, and where its serial log is.
pub fn report(log: &BootLog) {
    eprintln!(
        "{}: {:?} after {:.1} s ({}); serial log {}",
        log.name,
        log.outcome,
        log.elapsed.as_secs_f64(),
        log.accel.name(),
        log.log_path.display()
    );
}

/// Starts `vm` with its serial console, and says where the console's log is.
pub fn start_console(vm: &host_tools::vm::Machine, name: &str) -> Console {
    let c = vm
        .start(name)
        .unwrap_or_else(|e| panic!("starting QEMU for {name}: {e:?}"));
    eprintln!(
        "{name}: console log {} ({})",
        c.log_path().display(),
        c.accel().name()
    );
    c
}

/// Waits for stage 1's hand-over, stage 2's ready line and the prompt (each
/// within `timeout`); returns what stage 2 printed before it was ready.
pub fn wait_for_shell(c: &mut Console, timeout: Duration) -> String {
    c.wait_for(&exec_marker(), timeout).or_panic();
    let stage2 = c
        .wait_for(contract::MARKER_STAGE2_READY, timeout)
        .or_panic();
    c.wait_for(PROMPT, timeout).or_panic();
    assert!(
        !stage2.contains(host_tools::vm::KERNEL_PANIC),
        "{}",
        c.failure("kernel panic")
    );
    stage2
}

/// `build/test-iso/k1os.iso`: the qemu-profile ISO (`host-tools iso
/// --profile qemu`, its repository included) with the test epoch, built or
/// found up to date once per process. The suites that boot the real ISO
/// share it (`tests/iso.rs` builds the same file its own way, to check the
/// build itself).
pub fn qemu_iso() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_iso("qemu", &paths::build_dir().join("test-iso")))
}

/// `host-tools iso --profile <profile>` with the test epoch and `out` as its
/// whole build directory (`K1OS_BUILD_DIR`: its kernel too, so the kernel
/// the other suites boot, `build/kernel/`, stays theirs) (built, or found
/// up to date); the ISO's path, `<out>/k1os.iso`. Callers keep it in a
/// `OnceLock`, one build per process.
pub fn build_iso(profile: &str, out: &Path) -> PathBuf {
    let start = std::time::Instant::now();
    // A fixed epoch: the default, the last commit's time, would change
    // the ISO whenever someone commits while the tests run.
    let run = host_tools::run::Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(["iso", "--profile", profile])
        .env(paths::BUILD_DIR_ENV, out)
        .env("SOURCE_DATE_EPOCH", testimg::SOURCE_DATE_EPOCH)
        .stdin_null()
        .output_unchecked()
        .or_panic();
    assert!(
        run.success,
        "`{}={} host-tools iso --profile {profile}` failed:\n{}{}",
        paths::BUILD_DIR_ENV,
        out.display(),
        run.stdout,
        run.stderr
    );
    eprintln!(
        "{} ready in {:.1} s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    host_tools::iso::iso_path(out)
}

/// Panics with an error's whole chain (a test's `unwrap` for harness calls).
pub trait OrPanic<T> {
    fn or_panic(self) -> T;
}

impl<T> OrPanic<T> for anyhow::Result<T> {
    #[track_caller]
    fn or_panic(self) -> T {
        self.unwrap_or_else(|e| panic!("{e:#}"))
    }
}
