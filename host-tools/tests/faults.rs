//! Boots under faults (issue 14, point 1): devices that come late, never
//! come, are broken or duplicated, images that are damaged, command lines
//! that are wrong, a power cut while stage 2 writes. Each test breaks one
//! thing on purpose and asserts what stage 1 says on the console, what the
//! boot ends in, and — where a data disk is involved — that its bytes are
//! the same afterwards (SHA-256 before and after) unless the system wrote to
//! it itself.
//!
//! | # | fault | expected | test |
//! |---|---|---|---|
//! | 1 | the data disk plugged in 3 s after stage 1 started looking (USB hot-plug) | `persist` waits, boots persistent on it | `f01_…` |
//! | 2 | the media plugged in 3 s after stage 1 started (USB hot-plug) | stage 1 waits, boots | `f02_…` |
//! | 3 | no media at all | `seen` lines for the devices scanned, then a FATAL naming the image path, `k1os.timeout` after stage 1 started; `onfail` | `f03_…` |
//! | 4 | `system.squashfs` truncated; bytes flipped in its metadata; in its first data block | a FATAL naming the step (root image mount; stage 2's exec), no hang, `onfail` | `f04_…` (3 tests) |
//! | 5 | `K1OS-DATA` as FAT; an ext4 `K1OS-DATA` with a corrupt superblock | `auto`: RAM mode, the warning says why; the disk unchanged | `f05_…` (2 tests) |
//! | 6 | QEMU killed while stage 2 writes to the data partition | the next boot replays the journal; every file `sync`ed before the kill is intact | `f06_…` |
//! | 7 | two ext4 disks labelled `K1OS-DATA` | `persist`: FATAL naming both; `auto`: RAM mode naming both; neither written | `f07_…` (2 tests) |
//! | 8 | the hybrid ISO written to a disk, a data partition added behind it | media = the ISO partition (not the disk), data = the new partition | `f08_…` |
//! | 9 | RAM mode's tmpfs filled; `k1os.toram` with an image larger than the RAM | ENOSPC in stage 2, the system keeps running; a FATAL before copying | `f09_…` (2 tests) |
//! | 10 | `k1os.mode=bogus`, `k1os.timeout=abc`, an unterminated quote; a 4 KiB command line | named warnings, defaults, the boot goes on; the line is cut at 2048 bytes | `f10_…` (2 tests) |
//! | 11 | stage 2 missing; not executable | a FATAL before anything is moved or deleted; `onfail` | `f11_…` (2 tests) |
//! | 12 | a data partition made by the original K1OS (`/upper` with files, `/work`) | boots persistent and sees the files | `f12_…` |
//!
//! Elsewhere, not repeated here: sticks present at power-on, the data stick
//! on either port (`usb_wait.rs`), `persist` without any data disk
//! (`boot.rs`), the default `k1os.onfail` (`wait`: the message stays on the
//! screen, `generic.rs`). Every fatal fault here boots with
//! `k1os.onfail=poweroff`, so QEMU exits and the test sees how.
//!
//! Faults 6 and 9 boot the real root filesystem (`build/system.squashfs`) to
//! its shell; fault 8 the real ISO (`common::qemu_iso`); the others the test
//! media of `host_tools::testimg`, whose stage 2 reports what stage 1 set up
//! and powers off. Needs `build/kernel/bzImage` (qemu profile),
//! `build/initramfs.img` and `build/system.squashfs` (see
//! `common::UnderTest`). Serial logs: `build/test-logs/fault_*.log`; media
//! in `build/test-images/fault-*/`. VMs run one at a time, TCG unless
//! `K1OS_ACCEL` says otherwise.
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{OrPanic, UnderTest, exec_marker, start_console, wait_for_shell};
use host_tools::bench::timeline::split_printk;
use host_tools::run::Cmd;
use host_tools::testimg;
use host_tools::vm::{BootLog, Console, Drive, KERNEL_PANIC, Machine, Outcome};
use k1os_contract::cmdline::Mode;
use k1os_contract::contract::{self, boot_file, phase};

/// A direct kernel boot to the test stage 2's power-off: 3–8 s under TCG.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// The real root filesystem to its shell prompt.
const SHELL_TIMEOUT: Duration = Duration::from_secs(120);
/// One shell command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long after stage 1 started looking a late device is plugged in.
const LATE: Duration = Duration::from_secs(3);
/// The `k1os.timeout` of the boots that must fail for want of a device.
const SHORT_TIMEOUT_S: u64 = 2;
/// Slack between stage 1's deadline and its FATAL line under TCG.
const FATAL_SLACK: Duration = Duration::from_secs(3);

// ---------------------------------------------------------------------------
// Booting and asserting

/// The kernel and initramfs under test, `cmdline` appended.
fn vm(cmdline: &str) -> Machine {
    let t = UnderTest::boot_files();
    Machine::kernel(t.kernel).initrd(t.initrd).append(cmdline)
}

/// The real root filesystem on an ISO 9660 `K1OS`, made once per process.
fn real_media() -> &'static Path {
    static ISO: OnceLock<PathBuf> = OnceLock::new();
    ISO.get_or_init(|| {
        let rootfs = UnderTest::with_rootfs().rootfs.expect("asked for");
        let iso = common::scratch("fault-rootfs").join("k1os.iso");
        testimg::iso(&rootfs, &iso).or_panic();
        iso
    })
}

/// [`vm`] booting the real root filesystem from a CD-ROM.
fn real_vm(cmdline: &str) -> Machine {
    vm(cmdline).drive(Drive::cdrom(real_media()))
}

/// Boots `vm` until QEMU exits (or the timeout).
fn boot(vm: &Machine, name: &str) -> BootLog {
    common::boot(vm, name, BOOT_TIMEOUT)
}

/// Waits for QEMU to exit and returns the whole run.
fn finish(mut c: Console) -> BootLog {
    let outcome = c.wait_exit(BOOT_TIMEOUT).or_panic();
    let log = c.into_log(outcome, BOOT_TIMEOUT).or_panic();
    common::report(&log);
    log
}

/// The start of a stage-1 phase line: `k1os-init: <phase> (`.
fn phase_marker(name: &str) -> String {
    format!("{}{name} (", contract::LOG_PREFIX)
}

/// A stage-1 warning or error line's text after `k1os-init: `.
fn stage1_line(text: &str) -> String {
    format!("{}{text}", contract::LOG_PREFIX)
}

/// Stage 1 handed over to the test stage 2, which ran to its end and powered off.
#[track_caller]
fn assert_reached_stage2(log: &BootLog) {
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(contract::MARKER_FATAL);
    log.assert_order(&exec_marker(), testimg::STAGE2_UP);
    log.assert_line(testimg::STAGE2_DONE);
    assert_powered_off(log, "the test stage 2 finished");
}

#[track_caller]
fn assert_powered_off(log: &BootLog, after: &str) {
    if !log.powered_off() {
        panic!(
            "{}",
            log.failure(&format!("{after} but the guest did not power off"))
        );
    }
}

/// Stage 1 stopped with a FATAL line containing all of `parts`, then
/// `k1os.onfail=poweroff` powered the guest off: no panic, no stage 2.
/// Returns the FATAL line.
#[track_caller]
fn assert_fatal<'a>(log: &'a BootLog, parts: &[&str]) -> &'a str {
    log.assert_exited();
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(testimg::STAGE2_UP);
    let mut all = vec![contract::MARKER_FATAL];
    all.extend_from_slice(parts);
    let line = log.assert_line_with_all(&all);
    if log.lines_with(contract::MARKER_FATAL).count() != 1 {
        panic!("{}", log.failure("more than one FATAL line"));
    }
    assert_powered_off(log, "k1os.onfail=poweroff");
    line
}

/// The FATAL line came before stage 1 moved anything into the new root or
/// emptied the initramfs (its `switch_root` phase) and before any exec.
#[track_caller]
fn assert_nothing_destroyed(log: &BootLog) {
    log.assert_absent(&phase_marker(phase::SWITCH_ROOT));
    log.assert_absent(contract::MARKER_EXEC);
}

/// Stage 1's own time (µs since it started) of a phase line.
#[track_caller]
fn phase_us(log: &BootLog, name: &str) -> u64 {
    log.text
        .lines()
        .filter_map(|l| split_printk(l).map(|(_, rest)| rest))
        .filter_map(phase::parse_line)
        .find(|p| p.name == name)
        .and_then(|p| p.us)
        .unwrap_or_else(|| panic!("{}", log.failure(&format!("no timed `{name}` phase line"))))
}

/// The printk time (µs) of the first line containing `marker`.
#[track_caller]
fn printk_us(log: &BootLog, marker: &str) -> u64 {
    log.text
        .lines()
        .filter(|l| l.contains(marker))
        .find_map(split_printk)
        .map(|(us, _)| us)
        .unwrap_or_else(|| {
            panic!(
                "{}",
                log.failure(&format!("no timestamped line contains {marker:?}"))
            )
        })
}

/// Asserts a `/run/k1os/boot` value the test stage 2 printed.
#[track_caller]
fn assert_boot_value(log: &BootLog, key: &str, expected: &str) {
    let found = common::boot_value(log, key);
    if found != expected {
        panic!(
            "{}",
            log.failure(&format!("{key}={found}, expected {key}={expected}"))
        );
    }
}

/// A disk image's SHA-256 when the test began: [`Untouched::assert`] checks
/// that the guest left every byte as it was.
struct Untouched {
    path: PathBuf,
    sha256: String,
}

impl Untouched {
    fn new(path: &Path) -> Untouched {
        Untouched {
            path: path.to_path_buf(),
            sha256: testimg::sha256_file(path).or_panic(),
        }
    }

    #[track_caller]
    fn assert(&self, log: &BootLog) {
        let now = testimg::sha256_file(&self.path).or_panic();
        if now != self.sha256 {
            panic!(
                "{}",
                log.failure(&format!(
                    "{} changed during the boot (SHA-256 {} before, {now} after)",
                    self.path.display(),
                    self.sha256
                ))
            );
        }
    }
}

/// A `K1OS-DATA` ext4 image in a fresh scratch directory `dir`.
fn data_image(dir: &str, name: &str, size_mib: u64) -> PathBuf {
    let path = common::scratch(dir).join(name);
    testimg::data_image(&path, size_mib).or_panic();
    path
}

// ---------------------------------------------------------------------------
// 1, 2: devices that appear late

#[test]
fn f01_data_disk_plugged_in_late_boots_persistent() {
    let m = common::test_media();
    let data = data_image("fault-late-data", "data.img", 32);
    let vm = vm(&format!(
        "k1os.mode=persist k1os.timeout=30 k1os.onfail=poweroff {}",
        testimg::TEST_WRITE
    ))
    .drive(Drive::cdrom(&m.iso))
    .drive(Drive::usb(&data).unplugged());
    let mut c = start_console(&vm, "fault_late_data");
    // The image is mounted: stage 1 is now looking for the data partition.
    c.wait_for(&phase_marker(phase::IMAGE), BOOT_TIMEOUT)
        .or_panic();
    std::thread::sleep(LATE);
    c.monitor()
        .command_quiet(&vm.plug_command(1).or_panic())
        .or_panic();
    let log = finish(c);

    assert_reached_stage2(&log);
    common::assert_mode(&log, Mode::Persist);
    assert_boot_value(&log, boot_file::DATA, "/dev/sda");
    let waited_us = phase_us(&log, phase::DATA) - phase_us(&log, phase::IMAGE);
    assert!(
        waited_us >= LATE.as_micros() as u64,
        "{}",
        log.failure(&format!(
            "the data phase came {waited_us} µs after the image, before the disk was plugged in"
        ))
    );
    // No fall-back, no complaint on the way.
    log.assert_absent("RAM mode");
    log.assert_line(testimg::TEST_WROTE);
    common::assert_upper_file(
        common::Data::Image(&data),
        testimg::PERSISTED_FILE,
        &format!("{}\n", testimg::PERSISTED_CONTENT),
    );
    eprintln!(
        "fault_late_data: stage 1 waited {:.2} s for the data disk",
        waited_us as f64 / 1e6
    );
}

#[test]
fn f02_media_plugged_in_late_boots() {
    let m = common::test_media();
    let vm = vm("k1os.mode=ram k1os.timeout=30 k1os.onfail=poweroff")
        .drive(Drive::usb(&m.iso).read_only().unplugged());
    let mut c = start_console(&vm, "fault_late_media");
    c.wait_for(&phase_marker(phase::EARLY), BOOT_TIMEOUT)
        .or_panic();
    std::thread::sleep(LATE);
    c.monitor()
        .command_quiet(&vm.plug_command(0).or_panic())
        .or_panic();
    let log = finish(c);

    assert_reached_stage2(&log);
    common::assert_mode(&log, Mode::Ram);
    assert_boot_value(&log, boot_file::MEDIA, "/dev/sda");
    let media_us = phase_us(&log, phase::MEDIA);
    assert!(
        media_us >= LATE.as_micros() as u64,
        "{}",
        log.failure(&format!(
            "the media phase at {media_us} µs, before the stick was plugged in"
        ))
    );
    eprintln!(
        "fault_late_media: the media was mounted {:.2} s after stage 1 started",
        media_us as f64 / 1e6
    );
}

// ---------------------------------------------------------------------------
// 3: no media

#[test]
fn f03_no_media_is_fatal_within_the_timeout_naming_the_image_and_devices() {
    let data = data_image("fault-no-media", "data.img", 16);
    let untouched = Untouched::new(&data);
    let log = boot(
        &vm(&format!(
            "k1os.timeout={SHORT_TIMEOUT_S} k1os.onfail=poweroff"
        ))
        .drive(Drive::virtio(&data)),
        "fault_no_media",
    );
    assert_fatal(
        &log,
        &[
            "find the boot media: ",
            contract::DEFAULT_IMAGE,
            "no device holding it appeared within k1os.timeout",
        ],
    );
    // What was scanned, listed before the FATAL line.
    let seen = stage1_line(&format!("seen /dev/vda: ext4 \"{}\"", contract::DATA_LABEL));
    log.assert_order(&seen, contract::MARKER_FATAL);
    let waited =
        printk_us(&log, contract::MARKER_FATAL) - printk_us(&log, contract::MARKER_KERNEL_RUN_INIT);
    let timeout = Duration::from_secs(SHORT_TIMEOUT_S).as_micros() as u64;
    assert!(
        (timeout..timeout + FATAL_SLACK.as_micros() as u64).contains(&waited),
        "{}",
        log.failure(&format!(
            "the FATAL line came {waited} µs after stage 1 started; k1os.timeout is {timeout} µs"
        ))
    );
    untouched.assert(&log);
}

// ---------------------------------------------------------------------------
// 4: a damaged root image

/// The test media with its squashfs changed by `damage` (given the file),
/// in a fresh scratch directory `dir`: the ISO's path.
fn damaged_media(dir: &str, damage: impl FnOnce(&Path)) -> PathBuf {
    let m = common::test_media();
    let dir = common::scratch(dir);
    let image = dir.join("system.squashfs");
    std::fs::copy(&m.squashfs, &image).unwrap_or_else(|e| panic!("copying the squashfs: {e}"));
    damage(&image);
    let iso = dir.join("media.iso");
    testimg::iso(&image, &iso).or_panic();
    iso
}

/// A little-endian u64 of the squashfs superblock at `at`.
fn squashfs_u64(image: &Path, at: usize) -> u64 {
    let bytes = std::fs::read(image).unwrap_or_else(|e| panic!("reading {}: {e}", image.display()));
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// squashfs superblock: where the inode table starts.
const SQUASHFS_INODE_TABLE_START: usize = 64;
/// The superblock's size: the first data block follows it.
const SQUASHFS_SUPERBLOCK_LEN: u64 = 96;

fn boot_damaged(iso: &Path, name: &str) -> BootLog {
    boot(
        &vm("k1os.mode=ram k1os.onfail=poweroff").drive(Drive::cdrom(iso)),
        name,
    )
}

#[test]
fn f04_truncated_image_is_fatal() {
    let iso = damaged_media("fault-image-truncated", |image| {
        let len = std::fs::metadata(image).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(image)
            .and_then(|f| f.set_len(len / 2))
            .unwrap_or_else(|e| panic!("truncating {}: {e}", image.display()));
    });
    let log = boot_damaged(&iso, "fault_image_truncated");
    // The kernel checks the superblock's size against the device's.
    assert_fatal(&log, &["mount the root image: /dev/loop", "(EINVAL)"]);
    assert_nothing_destroyed(&log);
}

#[test]
fn f04_image_with_flipped_metadata_is_fatal() {
    let iso = damaged_media("fault-image-flipped-metadata", |image| {
        // 64 bytes inside the first metadata block of the inode table (past
        // its 2-byte header): the root directory's inode cannot be read.
        let at = squashfs_u64(image, SQUASHFS_INODE_TABLE_START);
        testimg::flip_bytes(image, at + 16, 64).or_panic();
    });
    let log = boot_damaged(&iso, "fault_image_flipped_metadata");
    assert_fatal(&log, &["mount the root image: /dev/loop", "(EIO)"]);
    log.assert_line("SQUASHFS error: ");
    assert_nothing_destroyed(&log);
}

#[test]
fn f04_image_with_flipped_data_is_fatal() {
    // 64 bytes of the first data block, right after the superblock:
    // busybox's first block (`bin/busybox` is the first file packed), which
    // stage 2's `#!/bin/sh` needs. The mount and stage 1's checks pass
    // (squashfs has no checksums); the exec fails reading it.
    let iso = damaged_media("fault-image-flipped-data", |image| {
        testimg::flip_bytes(image, SQUASHFS_SUPERBLOCK_LEN + 32, 64).or_panic();
    });
    let log = boot_damaged(&iso, "fault_image_flipped_data");
    assert_fatal(
        &log,
        &["execute stage 2: ", contract::DEFAULT_INIT, "(EIO)"],
    );
    log.assert_order(
        "SQUASHFS error: zstd decompression failed",
        contract::MARKER_FATAL,
    );
}

// ---------------------------------------------------------------------------
// 5: a K1OS-DATA that is not a mountable ext4

/// Boots the test media in `auto` with `data` as a second disk: RAM mode,
/// a warning containing `why`, the disk unchanged.
fn boot_with_unusable_data(data: &Path, name: &str, why: &[&str]) {
    let untouched = Untouched::new(data);
    let m = common::test_media();
    let log = boot(
        &vm("k1os.mode=auto k1os.onfail=poweroff")
            .drive(Drive::cdrom(&m.iso))
            .drive(Drive::virtio(data)),
        name,
    );
    assert_reached_stage2(&log);
    common::assert_mode(&log, Mode::Ram);
    let mut parts = vec![contract::LOG_PREFIX];
    parts.extend_from_slice(why);
    parts.push("; RAM mode: changes will not be kept");
    log.assert_line_with_all(&parts);
    untouched.assert(&log);
}

#[test]
fn f05_fat_labelled_k1os_data_boots_ram_saying_why() {
    let fat = common::scratch("fault-data-fat").join("fat.img");
    testimg::vfat_image(&fat, 16, contract::DATA_LABEL).or_panic();
    boot_with_unusable_data(
        &fat,
        "fault_data_fat",
        &["mount the data partition: /dev/vda: is not ext4"],
    );
}

#[test]
fn f05_ext4_with_a_corrupt_superblock_boots_ram_saying_why() {
    let data = data_image("fault-data-corrupt", "data.img", 16);
    testimg::corrupt_ext4_superblock(&data).or_panic();
    // The errno is the kernel's: EBADMSG for a bad superblock checksum.
    boot_with_unusable_data(
        &data,
        "fault_data_corrupt",
        &["mount the data partition: /dev/vda (E"],
    );
}

// ---------------------------------------------------------------------------
// 6: a power cut while stage 2 writes

/// Files written and `sync`ed before the power cut: `seq N 3000` each.
const SYNCED: [u32; 5] = [1, 2, 3, 4, 5];

/// What `seq from to` prints.
fn seq(from: u32, to: u32) -> String {
    (from..=to).map(|n| format!("{n}\n")).collect()
}

/// Whether the ext4 image's journal needs recovery (`dumpe2fs -h`).
fn needs_recovery(image: &Path) -> bool {
    let header = Cmd::new("dumpe2fs").arg("-h").arg(image).read().or_panic();
    header
        .lines()
        .find_map(|l| l.strip_prefix("Filesystem features:"))
        .is_some_and(|f| f.split_whitespace().any(|f| f == "needs_recovery"))
}

#[test]
fn f06_qemu_killed_while_writing_keeps_synced_files() {
    let data = data_image("fault-power-cut", "data.img", 64);
    let vm = real_vm("k1os.mode=persist k1os.onfail=poweroff").drive(Drive::virtio(&data));

    let mut c = start_console(&vm, "fault_power_cut_1");
    wait_for_shell(&mut c, SHELL_TIMEOUT);
    let write: String = SYNCED
        .iter()
        .map(|n| format!("seq {n} 3000 > /root/synced-{n}; "))
        .collect();
    c.run_ok(&format!("{write}sync"), COMMAND_TIMEOUT)
        .or_panic();
    // A writer that never stops, rewriting files that were never synced.
    c.run_ok(
        "(i=0; while :; do seq 1 20000 > /root/unsynced-$((i % 8)); i=$((i + 1)); done) \
         >/dev/null 2>&1 & true",
        COMMAND_TIMEOUT,
    )
    .or_panic();
    // The writer is running: it has reached its third file.
    c.run_ok(
        "until [ -e /root/unsynced-2 ]; do usleep 100000; done",
        COMMAND_TIMEOUT,
    )
    .or_panic();
    // The power cut: QEMU killed (SIGKILL) while the writer runs.
    drop(c);
    assert!(
        needs_recovery(&data),
        "{} is clean after the kill: it was not mounted when QEMU died",
        data.display()
    );

    let mut c = start_console(&vm, "fault_power_cut_2");
    wait_for_shell(&mut c, SHELL_TIMEOUT);
    // Stage 1's mount of the data partition replayed the journal.
    let transcript = c.transcript();
    let replayed = transcript.find("EXT4-fs (vda): recovery complete");
    let data_phase = transcript.find(&phase_marker(phase::DATA));
    assert!(
        matches!((replayed, data_phase), (Some(r), Some(d)) if r < d),
        "{}",
        c.failure("no journal replay when stage 1 mounted the data partition")
    );
    assert!(
        !transcript.contains(contract::MARKER_FATAL) && !transcript.contains("RAM mode"),
        "{}",
        c.failure("the data partition was not used after the power cut")
    );
    for n in SYNCED {
        let file = format!("/root/synced-{n}");
        let sum = c
            .run_ok(&format!("sha256sum {file}"), COMMAND_TIMEOUT)
            .or_panic();
        let expected = {
            use sha2::{Digest, Sha256};
            Sha256::digest(seq(n, 3000).as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        assert!(
            sum.trim_start().starts_with(&expected),
            "{}",
            c.failure(&format!(
                "{file} changed after the power cut: {}, expected {expected}",
                sum.trim()
            ))
        );
    }
    common::power_off(&mut c, SHELL_TIMEOUT);
}

// ---------------------------------------------------------------------------
// 7: two data partitions

/// Two ext4 disks labelled `K1OS-DATA`, and their checks.
fn two_data_disks(dir: &str) -> [(PathBuf, Untouched); 2] {
    let a = data_image(dir, "a.img", 16);
    let b = a.with_file_name("b.img");
    testimg::data_image(&b, 16).or_panic();
    [a, b].map(|p| {
        let u = Untouched::new(&p);
        (p, u)
    })
}

fn boot_two_data(mode: &str, disks: &[(PathBuf, Untouched); 2], name: &str) -> BootLog {
    let m = common::test_media();
    boot(
        &vm(&format!(
            "k1os.mode={mode} k1os.timeout={SHORT_TIMEOUT_S} k1os.onfail=poweroff"
        ))
        .drive(Drive::cdrom(&m.iso))
        .drive(Drive::virtio(&disks[0].0))
        .drive(Drive::virtio(&disks[1].0)),
        name,
    )
}

/// The warning naming both devices (their order is discovery's).
#[track_caller]
fn assert_both_named(log: &BootLog) {
    log.assert_line_with_all(&[
        &stage1_line(&format!(
            "data partition LABEL={}: both ",
            contract::DATA_LABEL
        )),
        "/dev/vda",
        "/dev/vdb",
        " match",
    ]);
}

#[test]
fn f07_two_data_partitions_persist_is_fatal_naming_both() {
    let disks = two_data_disks("fault-two-data-persist");
    let log = boot_two_data("persist", &disks, "fault_two_data_persist");
    assert_both_named(&log);
    assert_fatal(
        &log,
        &[
            "find the data partition: ",
            "/dev/vda",
            "/dev/vdb",
            "two different devices carry its label or UUID",
        ],
    );
    assert_nothing_destroyed(&log);
    for (_, untouched) in &disks {
        untouched.assert(&log);
    }
}

#[test]
fn f07_two_data_partitions_auto_boots_ram_naming_both() {
    let disks = two_data_disks("fault-two-data-auto");
    let log = boot_two_data("auto", &disks, "fault_two_data_auto");
    assert_both_named(&log);
    assert_reached_stage2(&log);
    common::assert_mode(&log, Mode::Ram);
    log.assert_line_with_all(&[
        "find the data partition: ",
        "/dev/vda",
        "/dev/vdb",
        "; RAM mode: changes will not be kept",
    ]);
    for (_, untouched) in &disks {
        untouched.assert(&log);
    }
}

// ---------------------------------------------------------------------------
// 8: the ISO written to a disk, with a data partition

#[test]
fn f08_iso_written_to_a_disk_with_a_data_partition() {
    let disk = common::scratch("fault-iso-disk").join("disk.img");
    let (number, part) =
        testimg::iso_disk_with_data_partition(common::qemu_iso(), &disk, 64).or_panic();
    let iso_bytes = |disk: &Path| {
        let bytes =
            std::fs::read(disk).unwrap_or_else(|e| panic!("reading {}: {e}", disk.display()));
        bytes[..part.offset as usize].to_vec()
    };
    let before = iso_bytes(&disk);
    let name = "fault_iso_disk";
    // Stopped at stage 1's hand-over: stage 1's choice is the point.
    let log = vm("k1os.mode=auto k1os.onfail=poweroff")
        .drive(Drive::virtio(&disk))
        .run_until(
            &host_tools::paths::build_dir()
                .join("test-logs")
                .join(format!("{name}.log")),
            &exec_marker(),
            BOOT_TIMEOUT,
        )
        .unwrap_or_else(|e| panic!("running QEMU for {name}: {e:?}"));
    common::report(&log);
    if log.outcome != Outcome::Stopped {
        panic!("{}", log.failure("stage 1 did not hand over to stage 2"));
    }
    // The whole disk shows the ISO 9660 `K1OS` too: its partition 1 wins.
    log.assert_line_with_all(&[
        &phase_marker(phase::MEDIA),
        &format!("/dev/vda1 (iso9660 \"{}\")", contract::MEDIA_LABEL),
    ]);
    log.assert_line_with_all(&[
        &phase_marker(phase::DATA),
        &format!("/dev/vda{number} on {}", contract::RUN_DATA),
    ]);
    log.assert_absent("RAM mode");
    // The media (everything before the data partition) was only read.
    if iso_bytes(&disk) != before {
        panic!(
            "{}",
            log.failure("the boot changed the ISO's part of the disk")
        );
    }
}

// ---------------------------------------------------------------------------
// 9: out of RAM

#[test]
fn f09_ram_mode_full_tmpfs_gives_enospc_and_keeps_running() {
    let mut c = start_console(
        &real_vm("k1os.mode=ram k1os.ramsize=24M k1os.onfail=poweroff"),
        "fault_ram_full",
    );
    wait_for_shell(&mut c, SHELL_TIMEOUT);
    let fill = c
        .run(
            "dd if=/dev/zero of=/root/fill bs=1M count=64",
            COMMAND_TIMEOUT,
        )
        .or_panic();
    assert!(
        fill.status != 0 && fill.text.contains("No space left on device"),
        "{}",
        c.failure(&format!(
            "writing 64 MiB into a 24 MiB upper layer: exit status {}:\n{}",
            fill.status, fill.text
        ))
    );
    let df = c
        .run_ok(&format!("df {}", contract::RUN_RAM), COMMAND_TIMEOUT)
        .or_panic();
    assert!(
        df.contains(" 100% "),
        "{}",
        c.failure(&format!("the RAM upper layer is not full:\n{df}"))
    );
    // Still running: the services, a write once there is room again.
    c.run_ok("k1os-service status", COMMAND_TIMEOUT).or_panic();
    let after = c
        .run_ok(
            "rm /root/fill && echo room-again > /root/after && cat /root/after",
            COMMAND_TIMEOUT,
        )
        .or_panic();
    assert_eq!(
        after.trim(),
        "room-again",
        "{}",
        c.failure("write after rm")
    );
    common::power_off(&mut c, SHELL_TIMEOUT);
}

#[test]
fn f09_toram_image_larger_than_ram_is_refused_before_copying() {
    // A 1 GiB image (sparse, in a 16 MiB ext4 labelled K1OS) for a 256 MiB
    // guest. It is never read: the size check comes first.
    let dir = common::scratch("fault-toram");
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap_or_else(|e| panic!("creating {}: {e}", tree.display()));
    let image = tree.join(contract::DEFAULT_IMAGE.trim_start_matches('/'));
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(1 << 30))
        .unwrap_or_else(|e| panic!("making {}: {e}", image.display()));
    let media = dir.join("media.img");
    testimg::ext4_from_dir(&media, 16, contract::MEDIA_LABEL, &tree).or_panic();
    let untouched = Untouched::new(&media);
    let log = boot(
        &vm("k1os.mode=ram k1os.toram k1os.onfail=poweroff").drive(Drive::virtio(&media)),
        "fault_toram_too_big",
    );
    assert_fatal(
        &log,
        &[
            "copy the image to RAM: ",
            contract::DEFAULT_IMAGE,
            "larger than the free RAM less 16 MiB (ENOSPC)",
        ],
    );
    log.assert_absent(&phase_marker(phase::TORAM));
    log.assert_absent(&phase_marker(phase::IMAGE));
    untouched.assert(&log);
}

// ---------------------------------------------------------------------------
// 10: bad command lines

#[test]
fn f10_bad_words_warn_and_use_defaults() {
    let m = common::test_media();
    let data = data_image("fault-cmdline", "data.img", 16);
    // The unterminated quote runs to the end of the line, as the kernel
    // splits it: `k1os.mode=ram` is part of the bad timeout, not a word.
    let log = boot(
        &vm("k1os.onfail=poweroff k1os.mode=bogus k1os.timeout=abc k1os.timeout=\"5 k1os.mode=ram")
            .drive(Drive::cdrom(&m.iso))
            .drive(Drive::virtio(&data)),
        "fault_cmdline_bad_words",
    );
    for warning in [
        "bad value: k1os.mode=bogus (using the default)",
        "bad value: k1os.timeout=abc (using the default)",
        "bad value: k1os.timeout=5 k1os.mode=ram (using the default)",
    ] {
        log.assert_line(&stage1_line(warning));
    }
    assert_reached_stage2(&log);
    // The default mode (auto) found the data disk.
    common::assert_mode(&log, Mode::Persist);
}

/// The bytes of the command line that reach the guest on x86 (the kernel's
/// `COMMAND_LINE_SIZE`; QEMU's loader copies that much into the guest).
const CMDLINE_KEPT: usize = 2048;

#[test]
fn f10_command_line_over_2048_bytes_is_cut() {
    let m = common::test_media();
    let base = vm("").kernel_cmdline().expect("a kernel boot");
    // Padding (dotted words: the kernel hands them to no one, stage 1
    // ignores them), then a k1os word across the cut, then words that are
    // lost, to 4 KiB.
    let mut words = String::from("k1os.onfail=poweroff k1os.mode=ram");
    let mut i = 0;
    while base.len() + 1 + words.len() < CMDLINE_KEPT - 40 {
        words += &format!(" fault.pad{i}=x");
        i += 1;
    }
    let digits = "0123456789".repeat(10);
    words += &format!(" k1os.timeout={digits}");
    while base.len() + 1 + words.len() < 4096 {
        words += " k1os.mode=persist";
    }
    let line = format!("{base} {words}");
    let value_at = line
        .find(&format!("k1os.timeout={digits}"))
        .expect("written")
        + 13;
    let kept = &line[value_at..CMDLINE_KEPT];

    let log = boot(&vm(&words).drive(Drive::cdrom(&m.iso)), "fault_cmdline_4k");
    assert_reached_stage2(&log);
    log.assert_line(&format!(
        "{}{}",
        testimg::STAGE2_CMDLINE_BYTES,
        CMDLINE_KEPT + 1 // the newline /proc/cmdline adds
    ));
    log.assert_line(&stage1_line(&format!(
        "bad value: k1os.timeout={kept} (using the default)"
    )));
    // `k1os.mode=persist` (all past the cut) never arrived.
    common::assert_mode(&log, Mode::Ram);
    eprintln!(
        "fault_cmdline_4k: a {}-byte command line arrived as its first {CMDLINE_KEPT} bytes",
        line.len()
    );
}

// ---------------------------------------------------------------------------
// 11: stage 2 missing or not executable

fn media_with_init(dir: &str, change: impl FnOnce(&Path) -> std::io::Result<()>) -> PathBuf {
    let media = testimg::media_in(&common::scratch(dir), |tree| {
        Ok(change(
            &tree.join(contract::DEFAULT_INIT.trim_start_matches('/')),
        )?)
    })
    .or_panic();
    media.iso
}

#[test]
fn f11_stage2_missing_is_fatal_before_anything_is_destroyed() {
    let iso = media_with_init("fault-init-missing", |init| std::fs::remove_file(init));
    let log = boot(
        &vm("k1os.mode=ram k1os.onfail=poweroff").drive(Drive::cdrom(&iso)),
        "fault_init_missing",
    );
    assert_fatal(
        &log,
        &[
            "check stage 2 in the new root: ",
            contract::DEFAULT_INIT,
            "(ENOENT)",
        ],
    );
    assert_nothing_destroyed(&log);
}

#[test]
fn f11_stage2_not_executable_is_fatal_before_anything_is_destroyed() {
    let iso = media_with_init("fault-init-not-executable", |init| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(init, std::fs::Permissions::from_mode(0o644))
    });
    let log = boot(
        &vm("k1os.mode=ram k1os.onfail=poweroff").drive(Drive::cdrom(&iso)),
        "fault_init_not_executable",
    );
    assert_fatal(
        &log,
        &[
            "check stage 2 in the new root: ",
            contract::DEFAULT_INIT,
            "is not executable",
        ],
    );
    assert_nothing_destroyed(&log);
}

// ---------------------------------------------------------------------------
// 12: the original K1OS's data partition

#[test]
fn f12_data_partition_of_the_original_k1os_is_used() {
    let m = common::test_media();
    let dir = common::scratch("fault-original-data");
    // What the original K1OS left: its overlay's upper and work directories
    // (overlayfs keeps an empty `work/work`), files the user made.
    let tree = dir.join("tree");
    let upper = tree.join(contract::DATA_UPPER_DIR);
    let persisted = format!("{}\n", testimg::PERSISTED_CONTENT);
    let notes = "written by the original K1OS\n";
    for (path, content) in [
        (upper.join(testimg::PERSISTED_FILE), persisted.as_str()),
        (upper.join("root/notes.txt"), notes),
    ] {
        std::fs::create_dir_all(path.parent().expect("in a directory")).unwrap();
        std::fs::write(&path, content)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    std::fs::create_dir_all(tree.join(contract::DATA_WORK_DIR).join("work")).unwrap();
    let data = dir.join("data.img");
    testimg::ext4_from_dir(&data, 16, contract::DATA_LABEL, &tree).or_panic();

    let log = boot(
        &vm("k1os.onfail=poweroff")
            .drive(Drive::cdrom(&m.iso))
            .drive(Drive::virtio(&data)),
        "fault_original_data",
    );
    assert_reached_stage2(&log);
    common::assert_mode(&log, Mode::Persist);
    assert_boot_value(&log, boot_file::DATA, "/dev/vda");
    log.assert_line(&format!(
        "{}{}",
        testimg::TEST_FOUND,
        testimg::PERSISTED_CONTENT
    ));
    // Read, not rewritten.
    common::assert_upper_file(
        common::Data::Image(&data),
        testimg::PERSISTED_FILE,
        &persisted,
    );
    common::assert_upper_file(common::Data::Image(&data), "root/notes.txt", notes);
}
