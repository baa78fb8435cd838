//! QEMU boot tests: the kernel (`build/kernel/bzImage`, qemu profile) and the
//! initramfs (`build/initramfs.img`, stage 1) boot test media made by
//! `host_tools::testimg`, whose stage 2 is a script that reports what stage 1
//! set up on the serial console and powers off.
//!
//! Run `host-tools kernel --profile qemu` and `host-tools initramfs` first;
//! without their outputs every test here fails (never passes silently).
//! `K1OS_TEST_KERNEL` / `K1OS_TEST_INITRD` point the tests at other files;
//! `K1OS_TEST_INITRD=reference` boots the reference busybox-script stage 1
//! instead of init-nostd (see `common::UnderTest`).
//!
//! Serial logs are kept in `build/test-logs/<boot>.log`; test media in
//! `build/test-images/`. VMs run one at a time, with TCG unless `K1OS_ACCEL`
//! says otherwise (`host_tools::vm::accel`).
mod common;

use std::time::Duration;

use common::{Data, UnderTest, assert_mode, assert_upper_file, boot_value, exec_marker};
use host_tools::testimg;
use host_tools::vm::{BootLog, Drive, Format, KERNEL_PANIC, Machine};
use k1os_contract::cmdline::Mode;
use k1os_contract::contract;

/// Per boot. TCG boots take 3–8 s; a loaded machine can be much slower.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// The kernel and initramfs under test, booting the test media from a CD-ROM.
fn vm(cmdline: &str) -> Machine {
    let t = UnderTest::boot_files();
    Machine::kernel(t.kernel).initrd(t.initrd).append(cmdline)
}

fn boot(vm: &Machine, name: &str) -> BootLog {
    common::boot(vm, name, BOOT_TIMEOUT)
}

/// Stage 1 handed over to the test stage 2, which ran to its end and powered off.
fn assert_reached_stage2(log: &BootLog) {
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(contract::MARKER_FATAL);
    log.assert_order(&exec_marker(), testimg::STAGE2_UP);
    log.assert_line(testimg::STAGE2_DONE);
    if !log.powered_off() {
        panic!(
            "{}",
            log.failure("the test stage 2 finished but the guest did not power off")
        );
    }
}

/// What the test stage 2 writes with `k1os.test=write`, as it is on disk.
fn persisted() -> String {
    format!("{}\n", testimg::PERSISTED_CONTENT)
}

#[test]
fn ram_mode_from_cd_reaches_stage2() {
    let m = common::test_media();
    let log = boot(
        &vm("k1os.mode=ram").drive(Drive::cdrom(&m.iso)),
        "boot_ram_cd",
    );
    assert_reached_stage2(&log);
    assert_mode(&log, Mode::Ram);
    log.assert_line_with_all(&[testimg::STAGE2_ROOT_LINE, "overlay"]);
    log.assert_line(testimg::TEST_MISSING);
}

#[test]
fn persistent_mode_keeps_a_file_across_boots() {
    let m = common::test_media();
    let data = common::scratch("persist").join("data.img");
    testimg::data_image(&data, 64).unwrap();
    let base = vm("k1os.mode=persist")
        .drive(Drive::cdrom(&m.iso))
        .drive(Drive::virtio(&data));

    common::assert_persists_across_boots(
        &base,
        &data,
        "boot_persist",
        BOOT_TIMEOUT,
        assert_reached_stage2,
    );
}

#[test]
fn auto_without_data_disk_falls_back_to_ram_with_a_notice() {
    let m = common::test_media();
    let log = boot(
        &vm("k1os.mode=auto").drive(Drive::cdrom(&m.iso)),
        "boot_auto_no_data",
    );
    assert_reached_stage2(&log);
    assert_mode(&log, Mode::Ram);
    let notice = log
        .lines_with(contract::LOG_PREFIX)
        .any(|l| l.contains(contract::DATA_LABEL) && l.to_lowercase().contains("ram"));
    if !notice {
        panic!(
            "{}",
            log.failure(&format!(
                "no `{}` line names {} and RAM mode",
                contract::LOG_PREFIX,
                contract::DATA_LABEL
            ))
        );
    }
}

#[test]
fn persist_without_data_disk_fails_and_powers_off() {
    let m = common::test_media();
    let log = boot(
        &vm("k1os.mode=persist k1os.onfail=poweroff k1os.timeout=3").drive(Drive::cdrom(&m.iso)),
        "boot_persist_no_data",
    );
    log.assert_exited();
    log.assert_line_with_all(&[contract::MARKER_FATAL, contract::DATA_LABEL]);
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(testimg::STAGE2_UP);
    if !log.powered_off() {
        panic!(
            "{}",
            log.failure("k1os.onfail=poweroff did not power the guest off")
        );
    }
}

#[test]
fn media_on_a_virtio_disk_reaches_stage2() {
    let m = common::test_media();
    let log = boot(
        &vm("k1os.mode=ram").drive(Drive::virtio(&m.iso).read_only()),
        "boot_ram_virtio_media",
    );
    assert_reached_stage2(&log);
    assert_mode(&log, Mode::Ram);
    let media_dev = boot_value(&log, contract::boot_file::MEDIA);
    assert!(
        media_dev.contains("vda"),
        "{}",
        log.failure(&format!("media={media_dev}, expected the virtio disk"))
    );
}

#[test]
fn data_partition_in_a_gpt_disk() {
    let m = common::test_media();
    let disk = common::scratch("gpt").join("disk.img");
    testimg::gpt_data_disk(&disk, 80).unwrap();
    // No k1os.mode: the default (auto) must find the partition and persist.
    let log = boot(
        &vm(testimg::TEST_WRITE)
            .drive(Drive::cdrom(&m.iso))
            .drive(Drive::virtio(&disk)),
        "boot_gpt_data",
    );
    assert_reached_stage2(&log);
    assert_mode(&log, Mode::Persist);
    let data_dev = boot_value(&log, contract::boot_file::DATA);
    assert!(
        data_dev.contains("vda2"),
        "{}",
        log.failure(&format!("data={data_dev}, expected partition 2"))
    );
    log.assert_line(testimg::TEST_WROTE);
    assert_upper_file(
        Data::Partition(&disk, 2),
        testimg::PERSISTED_FILE,
        &persisted(),
    );
}

#[test]
fn qemu_that_fails_to_start_is_an_error_with_its_stderr() {
    let t = UnderTest::boot_files();
    let raw = common::scratch("bogus-drive").join("raw.img");
    std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
    let err = Machine::kernel(t.kernel)
        .initrd(t.initrd)
        .drive(Drive::virtio(&raw).format(Format::Qcow2))
        .run("boot_bogus_drive", BOOT_TIMEOUT)
        .expect_err("QEMU cannot open a raw file as qcow2");
    let msg = format!("{err:#}");
    for part in ["boot_bogus_drive: `qemu-system-x86_64 ", "before", "qcow2"] {
        assert!(msg.contains(part), "{part:?} not in: {msg}");
    }
}
