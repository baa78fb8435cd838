//! The `debian` profile's ISO (`host-tools iso --profile debian`): Debian's
//! signed kernel, and on the UEFI path Debian's signed boot chain (shim as
//! `BOOTX64.EFI`, the signed GRUB as `grubx64.efi`, `kernel/debian-efi.toml`).
//!
//! - It boots to stage 2 under OVMF's Secure Boot firmware with Microsoft's
//!   keys enrolled ([`Firmware::SecureBoot`]), the kernel saying Secure Boot
//!   is on and the kernel locked down; through GRUB in BIOS; and, from a USB
//!   stick, under UEFI without Secure Boot.
//! - The same firmware refuses the ISO K1OS builds for its own kernels (its
//!   GRUB is unsigned), and the signed chain refuses a kernel K1OS built:
//!   that kernel never starts.
//! - Its ESP holds the packages' binaries byte for byte; two builds are
//!   byte-identical.
//! - Its root image carries the rest of Debian's modules
//!   (`/lib/modules/<release>`), which stage 2's `modules` service loads for
//!   the hardware: a virtio-net card's driver at boot (coldplug, under
//!   Secure Boot's lockdown: the module's signature is checked), then DHCP
//!   on it; a USB serial adapter plugged in later (hotplug). Neither driver
//!   is in the initramfs.
//!
//! The ISO is built with its own build directory (`common::build_iso`), so the
//! kernel the other suites boot (`build/kernel/`) stays theirs. Serial logs:
//! `build/test-logs/sb_*.log`. Each UEFI boot under TCG takes about a minute.
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{OrPanic, PROMPT, power_off};
use host_tools::iso::{self, TITLE_AUTO, signed};
use host_tools::paths;
use host_tools::run::Cmd;
use host_tools::vm::{Console, Drive, Firmware, Machine, Network};
use k1os_contract::contract;

/// From QEMU's start to the stage-2 marker: Debian's kernel loads 54
/// modules, and under TCG OVMF, shim and GRUB take their time too.
const BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const SHELL_TIMEOUT: Duration = Duration::from_secs(60);
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(60);
/// For the firmware to try (and refuse) the unsigned ISO.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(120);

/// `build/test-debian-iso/k1os.iso`, built once per process.
fn debian_iso() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| common::build_iso("debian", &paths::build_dir().join("test-debian-iso")))
}

/// Starts `vm`, chooses the default entry, waits for stage 2 and a shell
/// that answers; says how long each step took.
fn boot_to_stage2(vm: &Machine, name: &str) -> Console {
    let mut s = vm
        .start(name)
        .unwrap_or_else(|e| panic!("starting QEMU for {name}: {e:?}"));
    s.select_entry(TITLE_AUTO, BOOT_TIMEOUT).or_panic();
    let menu = s.elapsed();
    s.wait_for(contract::MARKER_STAGE2_READY, BOOT_TIMEOUT)
        .or_panic();
    let ready = s.elapsed();
    s.wait_for(PROMPT, SHELL_TIMEOUT).or_panic();
    s.wait_for_shell(SHELL_TIMEOUT).or_panic();
    let transcript = s.transcript();
    // Every module of the initramfs loaded: under lockdown only signed ones
    // would, and Debian's are.
    if !transcript.contains("k1os-init: kernel modules: ") || !transcript.contains(" 0 failed") {
        panic!("{}", s.failure("not every kernel module loaded"));
    }
    eprintln!(
        "{name}: GRUB menu {:.1} s, `{}` {:.1} s after QEMU started ({}); log {}",
        menu.as_secs_f64(),
        contract::MARKER_STAGE2_READY,
        ready.as_secs_f64(),
        s.accel().name(),
        s.log_path().display()
    );
    s
}

#[track_caller]
fn assert_shown(s: &Console, needle: &str) {
    if !s.transcript().contains(needle) {
        panic!(
            "{}",
            s.failure(&format!("the console never showed {needle:?}"))
        );
    }
}

/// The lines stage 2's `modules` service (`/sbin/k1os-modules`) writes to
/// the kernel log.
const COLDPLUG_LINE: &str = "k1os: modules: coldplug: ";
const HOTPLUG_LINE: &str = "k1os: modules: hotplug: ";
/// The network service's line for a lease from QEMU's DHCP server.
const LEASE_LINE: &str = "k1os: network: eth0 10.0.2.15/24";
/// For the coldplug (a modprobe over every device's modalias under TCG) and
/// a DHCP lease after it.
const MODULES_TIMEOUT: Duration = Duration::from_secs(120);

/// The kernel log's lines that contain `needle`, waited for (`dmesg` in a
/// loop in the guest) up to [`MODULES_TIMEOUT`].
fn kernel_log_lines(s: &mut Console, needle: &str) -> String {
    let command = format!(
        "i=0; while ! dmesg | grep -q '{needle}' && [ $i -lt {} ]; do sleep 1; i=$((i+1)); done; \
         dmesg | grep '{needle}'",
        MODULES_TIMEOUT.as_secs()
    );
    s.run_ok(&command, MODULES_TIMEOUT + SHELL_TIMEOUT)
        .or_panic()
}

/// The lines of `text` (a command's output, the console's kernel messages
/// mixed in) that contain `needle`, each once.
fn only_lines_with(text: &str, needle: &str) -> String {
    let mut lines: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
    // The console shows each kernel message too.
    lines.dedup();
    lines.join("\n")
}

/// The names of the modules the kernel has loaded (`/proc/modules`).
fn loaded_modules(s: &mut Console) -> Vec<String> {
    s.run_ok("cut -d' ' -f1 /proc/modules", SHELL_TIMEOUT)
        .or_panic()
        .lines()
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn debian_iso_boots_to_stage2_under_secure_boot() {
    // A virtio-net card: its driver (virtio_net, with net_failover and
    // failover) is not in the initramfs, only in the root image.
    let vm = Machine::firmware(Firmware::SecureBoot)
        .drive(Drive::cdrom(debian_iso()).boot())
        .network(Network::Restricted { forwards: vec![] });
    let mut s = boot_to_stage2(&vm, "sb_debian_cdrom");
    // shim ran (it leaves its MOK list in a table the kernel finds: shim's
    // own signature is what the firmware checked); the kernel's EFI stub and
    // the kernel itself found Secure Boot on, and the kernel locked itself
    // down.
    for line in [
        "MOKvar=",
        "EFI stub: UEFI Secure Boot is enabled.",
        "secureboot: Secure boot enabled",
        "Kernel is locked down from EFI Secure Boot",
    ] {
        assert_shown(&s, line);
    }

    // The coldplug found the card and loaded its driver from the image:
    // under lockdown, so the module's signature was accepted.
    let coldplug = kernel_log_lines(&mut s, COLDPLUG_LINE);
    assert!(coldplug.contains(" virtio_net"), "{coldplug}");
    let loaded = loaded_modules(&mut s);
    for module in ["virtio_net", "net_failover", "failover"] {
        assert!(
            loaded.iter().any(|m| m == module),
            "{}",
            s.failure(&format!("{module} is not loaded: {loaded:?}"))
        );
    }
    let modules = s
        .run_ok("ls -1 /lib/modules/$(uname -r)/", SHELL_TIMEOUT)
        .or_panic();
    for file in ["kernel", "modules.dep", "modules.alias"] {
        assert!(modules.lines().any(|l| l == file), "{modules}");
    }
    // And the network service configured it (QEMU's DHCP server).
    kernel_log_lines(&mut s, LEASE_LINE);
    let status = s
        .run_ok("k1os-service status modules", SHELL_TIMEOUT)
        .or_panic();
    assert!(status.contains("modules: running"), "{status}");
    eprintln!(
        "under Secure Boot: {}",
        only_lines_with(&coldplug, COLDPLUG_LINE)
    );
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

/// Through K1OS's GRUB in BIOS (QEMU's `pc`, whose ACPI lets PCI cards be
/// plugged in while it runs); then an Intel e1000 network card plugged in:
/// the hotplug half of the `modules` service loads `e1000` from the image
/// for it, and the network service gets a lease on it.
#[test]
fn debian_iso_boots_through_grub_in_bios() {
    let vm = Machine::firmware(Firmware::Bios).drive(Drive::cdrom(debian_iso()).boot());
    let mut s = boot_to_stage2(&vm, "sb_debian_bios_cdrom");
    assert_shown(&s, "Linux version 6.1.0-56-amd64");
    kernel_log_lines(&mut s, COLDPLUG_LINE);
    assert!(!loaded_modules(&mut s).iter().any(|m| m == "e1000"));

    // QEMU's user network, restricted: its DHCP server and nothing else.
    s.monitor()
        .command_quiet("netdev_add user,id=hotplug0,restrict=on")
        .or_panic();
    s.monitor()
        .command_quiet("device_add e1000,netdev=hotplug0,id=hotplug0nic")
        .or_panic();
    // The card's PCI vendor and device id, in its modalias.
    let hotplug = kernel_log_lines(&mut s, "for pci:v00008086d0000100E");
    assert!(
        hotplug.contains(&format!("{HOTPLUG_LINE}e1000 ")),
        "{hotplug}"
    );
    kernel_log_lines(&mut s, LEASE_LINE);
    eprintln!("{}", only_lines_with(&hotplug, HOTPLUG_LINE));
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

/// The ESP as GPT partition 2 of a stick (not the CD's El Torito entry),
/// shim and GRUB without Secure Boot, the media found on USB.
#[test]
fn debian_iso_boots_from_a_usb_stick_under_uefi() {
    let vm = Machine::firmware(Firmware::Uefi)
        .q35()
        .drive(Drive::usb(debian_iso()).snapshot().boot());
    let mut s = boot_to_stage2(&vm, "sb_debian_uefi_usb");
    assert_shown(&s, "secureboot: Secure boot disabled");
    let boot = s
        .run_ok(&format!("cat {}", contract::RUN_BOOT_FILE), SHELL_TIMEOUT)
        .or_panic();
    assert!(boot.contains("media=/dev/sda1"), "{boot}");
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

/// The ISO of a kernel K1OS builds: its `BOOTX64.EFI` is K1OS's own,
/// unsigned GRUB, which firmware with Microsoft's keys refuses to start
/// (OVMF says `Access Denied`, then finds nothing else to boot).
#[test]
fn secure_boot_refuses_the_unsigned_k1os_iso() {
    let vm = Machine::firmware(Firmware::SecureBoot).drive(Drive::cdrom(common::qemu_iso()).boot());
    let mut s = vm.start("sb_refuses_unsigned").or_panic();
    let refused = s.wait_for("Access Denied", REFUSAL_TIMEOUT).or_panic();
    let line = refused.lines().last().unwrap_or("");
    assert!(
        line.starts_with("BdsDxe: failed to load Boot0001 \"UEFI QEMU DVD-ROM"),
        "{}",
        s.failure(&format!("refused, but not the CD: {line:?}"))
    );
    s.wait_for("No bootable option or device was found", REFUSAL_TIMEOUT)
        .or_panic();
    for never in ["Welcome to GRUB", "GNU GRUB", "Linux version", "Run /init"] {
        if s.transcript().contains(never) {
            panic!("{}", s.failure(&format!("{never:?} under Secure Boot")));
        }
    }
}

/// Debian's signed chain with a kernel K1OS built: the debian ISO with its
/// `/boot/vmlinuz` replaced by the qemu-profile ISO's (xorriso replays the
/// boot records, so the ESP and GRUB are the same). shim and the signed
/// GRUB start, and GRUB refuses the kernel because shim does.
#[test]
fn the_signed_chain_refuses_a_kernel_k1os_built() {
    let scratch = common::scratch("sb-unsigned-kernel");
    let kernel = scratch.join("vmlinuz");
    let _ = std::fs::remove_file(&kernel);
    Cmd::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(common::qemu_iso())
        .args(["-extract", iso::KERNEL_PATH])
        .arg(&kernel)
        .run()
        .or_panic();
    let swapped = scratch.join("debian-chain-k1os-kernel.iso");
    let _ = std::fs::remove_file(&swapped);
    Cmd::new("xorriso")
        .arg("-indev")
        .arg(debian_iso())
        .arg("-outdev")
        .arg(&swapped)
        .args(["-boot_image", "any", "replay", "-map"])
        .arg(&kernel)
        .arg(iso::KERNEL_PATH)
        .run()
        .or_panic();

    let vm = Machine::firmware(Firmware::SecureBoot).drive(Drive::cdrom(&swapped).boot());
    let mut s = vm.start("sb_refuses_k1os_kernel").or_panic();
    // The menu is Debian's GRUB's reading of /boot/grub/grub.cfg: the chain
    // itself was accepted.
    s.wait_for(TITLE_AUTO, REFUSAL_TIMEOUT).or_panic();
    s.wait_for("error: bad shim signature.", REFUSAL_TIMEOUT)
        .or_panic();
    for never in ["Linux version", "Run /init"] {
        if s.transcript().contains(never) {
            panic!("{}", s.failure(&format!("{never:?} under Secure Boot")));
        }
    }
}

/// `/.disk/info` (what the signed GRUB searches for), the packages'
/// binaries unchanged in the ESP, and a second build byte-identical.
#[test]
fn debian_iso_layout_and_reproducibility() {
    let iso = debian_iso();
    let build = iso.parent().unwrap();
    let listing = Cmd::new("xorriso")
        .arg("-indev")
        .arg(iso)
        .args(["-find", "/.disk", "-type", "f"])
        .read()
        .unwrap();
    assert!(
        listing.contains(signed::DISK_INFO_PATH),
        "no {} in {}:\n{listing}",
        signed::DISK_INFO_PATH,
        iso.display()
    );

    // The ESP is GPT partition 2; mtools reads it in place (`FILE@@OFFSET`).
    let info = Cmd::new("sgdisk")
        .args(["-i", "2"])
        .arg(iso)
        .read()
        .unwrap();
    let first = info
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no first sector of partition 2:\n{info}"));
    let out = tempfile::tempdir().unwrap();
    let work = iso::work_dir(build);
    let signed = signed::binaries_in(&work);
    for (esp_path, fetched) in [
        (iso::EFI_LOADER_PATH, &signed.shim),
        (signed::SECOND_STAGE_PATH, &signed.grub),
    ] {
        let copy = out.path().join(esp_path.rsplit('/').next().unwrap());
        Cmd::new("mcopy")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-n")
            .arg("-i")
            .arg(format!("{}@@{}", iso.display(), first * 512))
            .arg(format!("::{esp_path}"))
            .arg(&copy)
            .run()
            .unwrap();
        assert!(
            std::fs::read(&copy).unwrap() == std::fs::read(fetched).unwrap(),
            "{esp_path} in the ESP is not {}",
            fetched.display()
        );
    }
    // shim carries Microsoft's Authenticode signature (the firmware's db
    // trusts the CA named in it).
    let shim = std::fs::read(&signed.shim).unwrap();
    let ca = b"Microsoft Corporation UEFI CA 2011";
    assert!(
        shim.windows(ca.len()).any(|w| w == ca),
        "{} has no Microsoft signature",
        signed.shim.display()
    );

    // The image ships Debian's modules: its notices say so (the ISO's
    // /THIRD-PARTY-NOTICES is the image's).
    let notices = std::fs::read_to_string(work.join("THIRD-PARTY-NOTICES")).unwrap();
    assert!(
        notices.contains("Linux kernel modules 6.1.0-56-amd64 (/lib/modules/6.1.0-56-amd64)"),
        "{notices}"
    );

    let other = tempfile::tempdir().unwrap();
    let second = common::build_iso("debian", other.path());
    let a = std::fs::read(iso).unwrap();
    let b = std::fs::read(&second).unwrap();
    assert_eq!(a.len(), b.len(), "sizes differ");
    if let Some(at) = a.iter().zip(&b).position(|(x, y)| x != y) {
        panic!(
            "{} and {} differ first at byte {at:#x}",
            iso.display(),
            second.display()
        );
    }
}
