//! Boots on the controllers real PCs have, on QEMU's `q35` chipset (ICH9,
//! PCIe, a built-in AHCI controller), with the `qemu`-profile kernel, which
//! has their drivers (`kernel/k1os.config`: AHCI, NVMe, xHCI, usb-storage,
//! UAS):
//!
//! - the ISO (`host-tools iso --profile qemu`, built once per process into
//!   `build/test-iso/`, `common::qemu_iso`) as a USB stick on xHCI, through SeaBIOS and GRUB
//!   with the data partition on a second stick, and through OVMF and GRUB
//!   without one (auto mode: RAM);
//! - direct kernel boots of the test media (`host_tools::testimg`, whose
//!   stage 2 reports what stage 1 found and powers off) where GRUB is not the
//!   point: the media on an AHCI CD with the data partition on an AHCI disk,
//!   on an AHCI CD with the data partition on NVMe, and on a USB 3 stick
//!   through UAS with the data partition on a second UAS stick.
//!
//! Each asserts the media and data partition stage 1 found (`/run/k1os/boot`),
//! that the kernel drove them with the driver meant (its probe line), and
//! prints stage 1's time (printk time from `Run /init` to `k1os-init: exec`).
//!
//! Needs `build/kernel/bzImage` (qemu profile) and `build/initramfs.img` for
//! the direct boots (see `common::UnderTest`). Serial logs:
//! `build/test-logs/pc_*.log`. VMs run one at a time, TCG unless `K1OS_ACCEL`
//! says otherwise.
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{OrPanic, PROMPT, UnderTest, assert_mode, boot_value, exec_marker, power_off};
use host_tools::bench::timeline::Timeline;
use host_tools::iso::TITLE_AUTO;
use host_tools::run::Cmd;
use host_tools::testimg;
use host_tools::vm::{BootLog, Console, Drive, Firmware, KERNEL_PANIC, Machine};
use k1os_contract::cmdline::Mode;
use k1os_contract::contract::{self, boot_file};

/// A direct kernel boot to the test stage 2's power-off: 3–8 s under TCG.
const KERNEL_BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// From QEMU's start through the firmware and GRUB to stage 2 ready.
const ISO_BOOT_TIMEOUT: Duration = Duration::from_secs(240);
const SHELL_TIMEOUT: Duration = Duration::from_secs(60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(60);

/// The kernel's lines that say which driver took a device: the proof that
/// the bus under test, not a fallback, carried the media or data.
const AHCI_PROBE: &str = "ahci 0000:";
const NVME_PROBE: &str = "nvme nvme0: ";
const XHCI_PROBE: &str = "xhci_hcd 0000:";
const USB_STORAGE_PROBE: &str = "usb-storage ";
const UAS_PROBE: &str = ": uas";

// ---------------------------------------------------------------------------
// Stage 1's time

/// Stage 1's time in the console `log` (`Run /init` → `exec`), printed with
/// `what`; panics when either marker is missing.
fn report_stage1(what: &str, log: &str, log_path: &Path) -> f64 {
    let t = Timeline::parse(log);
    let Some(us) = t.stage1_us() else {
        panic!(
            "{what}: no stage-1 time in {} (run_init {:?}, exec {:?})",
            log_path.display(),
            t.run_init,
            t.exec
        );
    };
    let phases: Vec<String> = t
        .phases
        .iter()
        .map(|p| format!("{} {:.2}", p.name, p.at_us as f64 / 1e6))
        .collect();
    let secs = us as f64 / 1e6;
    eprintln!(
        "STAGE 1 {what}: {secs:.2} s (Run /init {:.2} s; {}); log {}",
        t.run_init.unwrap_or(0) as f64 / 1e6,
        phases.join(", "),
        log_path.display()
    );
    secs
}

// ---------------------------------------------------------------------------
// Direct kernel boots of the test media

/// The kernel and initramfs under test on q35 (no firmware menu).
fn q35_kernel(cmdline: &str) -> Machine {
    let t = UnderTest::boot_files();
    Machine::kernel(t.kernel)
        .initrd(t.initrd)
        .q35()
        .append(cmdline)
}

/// Boots to the test stage 2's power-off; asserts it got there.
fn boot_test_media(vm: &Machine, name: &str) -> BootLog {
    let log = vm
        .run(name, KERNEL_BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("running QEMU for {name}: {e:?}"));
    eprintln!(
        "{name}: {:?} after {:.1} s ({}); serial log {}",
        log.outcome,
        log.elapsed.as_secs_f64(),
        log.accel.name(),
        log.log_path.display()
    );
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
    log
}

/// Asserts a `/run/k1os/boot` value.
#[track_caller]
fn assert_boot_value(log: &BootLog, key: &str, expected: &str) {
    let found = boot_value(log, key);
    if found != expected {
        panic!(
            "{}",
            log.failure(&format!("{key}={found}, expected {key}={expected}"))
        );
    }
}

/// A GPT disk whose partition 2 is the ext4 `K1OS-DATA`, in a fresh scratch
/// directory `name`.
fn data_disk(name: &str) -> PathBuf {
    let disk = common::scratch(name).join("data.img");
    testimg::gpt_data_disk(&disk, 64).or_panic();
    disk
}

#[test]
fn ahci_cd_media_and_ahci_disk_data() {
    let m = common::test_media();
    let data = data_disk("pc-ahci");
    // Both on q35's built-in AHCI ports (ide.0, ide.1): sr0 and sda.
    let vm = q35_kernel("k1os.mode=auto")
        .drive(Drive::cdrom(&m.iso))
        .drive(Drive::sata(&data));
    let log = boot_test_media(&vm, "pc_ahci");
    assert_mode(&log, Mode::Persist);
    assert_boot_value(&log, boot_file::MEDIA, "/dev/sr0");
    assert_boot_value(&log, boot_file::DATA, "/dev/sda2");
    log.assert_line(AHCI_PROBE);
    log.assert_absent("ata_piix");
    report_stage1("AHCI (CD + disk)", &log.text, &log.log_path);
}

#[test]
fn nvme_data_partition_is_found() {
    let m = common::test_media();
    let data = data_disk("pc-nvme");
    let vm = q35_kernel("k1os.mode=auto")
        .drive(Drive::cdrom(&m.iso))
        .drive(Drive::nvme(&data));
    let log = boot_test_media(&vm, "pc_nvme");
    assert_mode(&log, Mode::Persist);
    assert_boot_value(&log, boot_file::MEDIA, "/dev/sr0");
    assert_boot_value(&log, boot_file::DATA, "/dev/nvme0n1p2");
    log.assert_line(NVME_PROBE);
    report_stage1("NVMe (data; media on an AHCI CD)", &log.text, &log.log_path);
}

#[test]
fn uas_sticks_hold_the_media_and_the_data() {
    let m = common::test_media();
    let data = data_disk("pc-uas");
    // The whole-disk ISO 9660 of the test media on one stick, the data
    // partition on another, both UAS devices on the xHCI controller.
    let vm = q35_kernel("k1os.mode=auto")
        .drive(Drive::uas(&m.iso).read_only())
        .drive(Drive::uas(&data));
    let log = boot_test_media(&vm, "pc_uas");
    assert_mode(&log, Mode::Persist);
    let media = boot_value(&log, boot_file::MEDIA);
    let data_dev = boot_value(&log, boot_file::DATA);
    // The two sticks' order (sda, sdb) is the order their hosts finished
    // scanning; which is which does not matter, that both are found does.
    let ok = matches!(
        (media, data_dev),
        ("/dev/sda", "/dev/sdb2") | ("/dev/sdb", "/dev/sda2")
    );
    if !ok {
        panic!(
            "{}",
            log.failure(&format!(
                "media={media} data={data_dev}: expected the whole stick sdX and partition 2 \
                 of the other"
            ))
        );
    }
    log.assert_line(XHCI_PROBE);
    log.assert_line(UAS_PROBE);
    log.assert_absent(USB_STORAGE_PROBE);
    report_stage1("UAS (media + data sticks)", &log.text, &log.log_path);
}

// ---------------------------------------------------------------------------
// The ISO through the firmware and GRUB

/// Boots through GRUB's default entry (auto mode, chosen over the serial
/// console) to stage 2 ready and a shell that answers.
fn iso_to_shell(vm: &Machine, name: &str) -> Console {
    let mut s = vm
        .start(name)
        .unwrap_or_else(|e| panic!("starting QEMU for {name}: {e:?}"));
    s.select_entry(TITLE_AUTO, ISO_BOOT_TIMEOUT).or_panic();
    s.wait_for(contract::MARKER_STAGE2_READY, ISO_BOOT_TIMEOUT)
        .or_panic();
    let ready = s.elapsed();
    s.wait_for(PROMPT, SHELL_TIMEOUT).or_panic();
    s.wait_for_shell(SHELL_TIMEOUT).or_panic();
    eprintln!(
        "{name}: `{}` {:.1} s after QEMU started ({}); log {}",
        contract::MARKER_STAGE2_READY,
        ready.as_secs_f64(),
        s.accel().name(),
        s.log_path().display()
    );
    s
}

/// `/run/k1os/boot` of a running ISO boot.
fn boot_file_of(s: &mut Console) -> String {
    s.run_ok(&format!("cat {}", contract::RUN_BOOT_FILE), COMMAND_TIMEOUT)
        .or_panic()
}

#[track_caller]
fn assert_has(text: &str, s: &Console, needle: &str) {
    if !text.contains(needle) {
        panic!("{}", s.failure(&format!("expected {needle:?} in:\n{text}")));
    }
}

/// The ISO written to a USB stick: writes go to a throwaway overlay.
fn iso_stick() -> Drive {
    Drive::usb(common::qemu_iso()).snapshot().boot()
}

#[test]
fn bios_usb_stick_with_the_data_on_a_second_stick() {
    let data = common::scratch("pc-usb-bios").join("persist.img");
    let made = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(["make-persist", "--size", "64M"])
        .arg(&data)
        .stdin_null()
        .output_unchecked()
        .or_panic();
    assert!(
        made.success,
        "host-tools make-persist failed:\n{}{}",
        made.stdout, made.stderr
    );
    // Both sticks plugged in before power-on, as a person would.
    let vm = Machine::firmware(Firmware::Bios)
        .q35()
        .drive(iso_stick())
        .drive(Drive::usb(&data));
    let mut s = iso_to_shell(&vm, "pc_usb_bios");
    let boot = boot_file_of(&mut s);
    assert_has(&boot, &s, &format!("{}=persist", boot_file::MODE));
    // The stick's ISO 9660 partition (the hybrid layout's first), and the
    // other stick's data filesystem; which stick is sda is the order their
    // scans finished.
    let media_ok = boot.contains("media=/dev/sda1") || boot.contains("media=/dev/sdb1");
    let data_ok = boot.contains("data=/dev/sda") || boot.contains("data=/dev/sdb");
    if !media_ok || !data_ok {
        panic!(
            "{}",
            s.failure(&format!("media or data not on the sticks:\n{boot}"))
        );
    }
    let transcript = s.transcript();
    assert_has(&transcript, &s, XHCI_PROBE);
    assert_has(&transcript, &s, USB_STORAGE_PROBE);
    report_stage1("USB BIOS (ISO + data stick)", &transcript, s.log_path());
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

#[test]
fn uefi_usb_stick_without_data_boots_in_ram() {
    let vm = Machine::firmware(Firmware::Uefi).q35().drive(iso_stick());
    let mut s = iso_to_shell(&vm, "pc_usb_uefi");
    let efi = s
        .run_ok("ls -d /sys/firmware/efi", COMMAND_TIMEOUT)
        .or_panic();
    assert_has(&efi, &s, "/sys/firmware/efi");
    let boot = boot_file_of(&mut s);
    assert_has(&boot, &s, &format!("{}=ram", boot_file::MODE));
    // The ISO 9660 partition, never the ESP next to it.
    assert_has(&boot, &s, "media=/dev/sda1");
    let transcript = s.transcript();
    assert_has(&transcript, &s, XHCI_PROBE);
    report_stage1("USB UEFI (ISO, no data)", &transcript, s.log_path());
    power_off(&mut s, POWER_OFF_TIMEOUT);
}
