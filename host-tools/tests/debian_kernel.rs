//! Debian's kernel (the `debian` profile: the signed `linux-image` package,
//! its drivers as modules) with K1OS's stage 1 and the modules it needs
//! (`initramfs --kernel-modules`): a direct kernel boot on q35 of the test
//! media (`host_tools::testimg`) reaches the test stage 2 in RAM mode and in
//! persistent mode, stage 1 having loaded every module of its list and
//! passed a module its parameters from the command line; and with the media
//! on a USB stick and the data on an NVMe disk.
//!
//! The kernel and its module tree come from the cache
//! (`kernel::debian::ensure_entry`, downloaded the first time); the
//! initramfs is packed here from the stage 1 of this checkout, so
//! `build/kernel/` and `build/initramfs.img` — what the other suites boot —
//! are left alone.
mod common;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use common::{OrPanic, assert_mode, boot_value, exec_marker};
use host_tools::initramfs::{self, Compression};
use host_tools::kernel::debian;
use host_tools::testimg;
use host_tools::vm::{BootLog, Drive, KERNEL_PANIC, Machine};
use k1os_contract::cmdline::Mode;
use k1os_contract::contract;

/// Debian's kernel is larger and loads 54 modules under TCG: slower than
/// the qemu kernel's 3–8 s, and the machine may be loaded.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);

/// Debian's kernel and an initramfs with its modules, packed once.
fn files() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let kernel = debian::ensure_entry().or_panic();
        let out = testimg::images_dir().join("debian-initramfs");
        let built =
            initramfs::build(&out, Compression::Zstd, None, Some(&kernel.modules)).or_panic();
        let selection = built.modules.as_ref().expect("modules packed");
        assert!(selection.missing.is_empty(), "{:?}", selection.missing);
        eprintln!(
            "initramfs with {} modules: {} bytes zstd, {} raw (modules {} raw)",
            selection.modules.len(),
            built.image_size,
            built.raw_size,
            built.modules_size
        );
        (kernel.bzimage, built.image)
    })
}

/// A direct boot on q35 (the CD on its AHCI controller), 512 MiB: the
/// modules are unpacked into the initramfs's RAM.
fn vm(cmdline: &str) -> Machine {
    let (kernel, initrd) = files();
    Machine::kernel(kernel)
        .initrd(initrd)
        .q35()
        .memory_mib(512)
        .append(cmdline)
}

fn boot(vm: &Machine, name: &str) -> BootLog {
    common::boot(vm, name, BOOT_TIMEOUT)
}

/// Every module loaded (none failed), then stage 1 handed over to the test
/// stage 2, which ran to its end and powered off.
fn assert_reached_stage2(log: &BootLog) {
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(contract::MARKER_FATAL);
    log.assert_absent("load the kernel modules:");
    let summary = log.assert_line("k1os-init: kernel modules: ");
    assert!(summary.contains(" 0 failed"), "{summary}");
    log.assert_order("k1os-init: kernel modules: ", &exec_marker());
    log.assert_order(&exec_marker(), testimg::STAGE2_UP);
    log.assert_line(testimg::STAGE2_DONE);
    if !log.powered_off() {
        panic!(
            "{}",
            log.failure("the test stage 2 finished but the guest did not power off")
        );
    }
    eprintln!(
        "{summary}; stage 1 {} us (time_us.overlay)",
        boot_value(log, "time_us.overlay")
    );
}

#[test]
fn debian_kernel_ram_mode_reaches_stage2() {
    let m = common::test_media();
    // A parameter for a module, spelled with `-` like GRUB's
    // `usb-storage.delay_use=0`: stage 1 passes it to finit_module, and the
    // kernel names the module when it does not know the parameter.
    let log = boot(
        &vm("k1os.mode=ram usb-storage.k1os_probe=1").drive(Drive::cdrom(&m.iso)),
        "debian_ram_cd",
    );
    assert_reached_stage2(&log);
    assert_mode(&log, Mode::Ram);
    log.assert_line("usb_storage: unknown parameter 'k1os_probe' ignored");
    // The Debian kernel, not another one.
    log.assert_line("6.1.0-56-amd64");
    log.assert_line_with_all(&[testimg::STAGE2_ROOT_LINE, "overlay"]);
}

#[test]
fn debian_kernel_persistent_mode_keeps_a_file_across_boots() {
    let m = common::test_media();
    let data = common::scratch("debian-persist").join("data.img");
    testimg::data_image(&data, 64).unwrap();
    let base = vm("k1os.mode=persist")
        .drive(Drive::cdrom(&m.iso))
        .drive(Drive::virtio(&data));

    common::assert_persists_across_boots(
        &base,
        &data,
        "debian_persist",
        BOOT_TIMEOUT,
        assert_reached_stage2,
    );
}

/// The drivers of real PCs, as Debian's modules: the media on a USB stick
/// (xHCI, usb-storage, sd_mod), the data on partition 2 of an NVMe disk
/// (GPT), found in `auto` mode; `usb-storage.delay_use=0` as GRUB's entries
/// pass it, here to the module.
#[test]
fn debian_kernel_usb_stick_media_and_nvme_data() {
    let m = common::test_media();
    let data = common::scratch("debian-nvme").join("data.img");
    testimg::gpt_data_disk(&data, 64).or_panic();
    let log = boot(
        &vm("k1os.mode=auto usb-storage.delay_use=0")
            .drive(Drive::usb(&m.iso).read_only())
            .drive(Drive::nvme(&data)),
        "debian_usb_nvme",
    );
    assert_reached_stage2(&log);
    assert_mode(&log, Mode::Persist);
    let media = boot_value(&log, contract::boot_file::MEDIA);
    assert!(media.starts_with("/dev/sd"), "media={media}");
    assert_eq!(
        boot_value(&log, contract::boot_file::DATA),
        "/dev/nvme0n1p2"
    );
}
