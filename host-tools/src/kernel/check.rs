//! `./k1os kernel check`: a final .config against the profile's fragments,
//! naming what blocks each missing option (from a table of Kconfig dependencies).
use anyhow::{Context, Result, bail};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::Path;

use super::{Profile, file_name};

/// One `CONFIG_` line of a fragment: what the final .config must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Without the `CONFIG_` prefix.
    pub option: String,
    /// `Some("y")`, `Some("\"text\"")`…; `None` for `# CONFIG_X is not set`.
    pub value: Option<String>,
    /// The fragment's file name.
    pub fragment: String,
}

/// The `CONFIG_` lines of a fragment (or of a .config).
pub fn parse_fragment(text: &str, fragment: &str) -> Vec<Requirement> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let (option, value) = if let Some(rest) = line.strip_prefix("# CONFIG_") {
            match rest.strip_suffix(" is not set") {
                Some(option) => (option, None),
                None => continue,
            }
        } else if let Some(rest) = line.strip_prefix("CONFIG_") {
            match rest.split_once('=') {
                Some((option, value)) => (option, Some(value.to_string())),
                None => continue,
            }
        } else {
            continue;
        };
        out.push(Requirement {
            option: option.to_string(),
            value,
            fragment: fragment.to_string(),
        });
    }
    out
}

/// A final .config's set options (name without `CONFIG_` → value).
pub type Config = BTreeMap<String, String>;

pub fn parse_config(text: &str) -> Config {
    parse_fragment(text, ".config")
        .into_iter()
        .filter_map(|r| Some((r.option, r.value?)))
        .collect()
}

/// The .config in `bytes`, as `kernel check` reads it: text, or gzip-compressed
/// text (`/proc/config.gz`). `name` names the input in errors. Something with
/// no `CONFIG_` line at all is not a kernel .config, and says so rather than
/// failing every requirement.
pub fn config_from_bytes(bytes: &[u8], name: &str) -> Result<Config> {
    let text: Cow<'_, [u8]> = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .with_context(|| format!("{name}: gzip data that does not decompress"))?;
        out.into()
    } else {
        bytes.into()
    };
    let Ok(text) = std::str::from_utf8(&text) else {
        bail!(
            "{name} is not a kernel .config: it is binary data (a kernel image? pass the \
             .config it was built with, such as build/kernel/config or /proc/config.gz)"
        );
    };
    if parse_fragment(text, ".config").is_empty() {
        bail!(
            "{name} is not a kernel .config: it has no `CONFIG_…=` or `# CONFIG_… is not set` line"
        );
    }
    Ok(parse_config(text))
}

/// The requirements of `profile`: its fragments' lines, later fragments
/// overriding earlier ones as merge_config.sh does.
pub fn requirements(profile: Profile) -> Result<Vec<Requirement>> {
    let mut out: Vec<Requirement> = Vec::new();
    for path in profile.fragments() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for req in parse_fragment(&text, &file_name(&path)) {
            match out.iter_mut().find(|r| r.option == req.option) {
                Some(old) => *old = req,
                None => out.push(req),
            }
        }
    }
    Ok(out)
}

/// A required option the config does not have as required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub option: String,
    pub wanted: Option<String>,
    pub actual: Option<String>,
    /// Why Kconfig left it so, when the dependency table knows.
    pub blocker: Option<String>,
    pub fragment: String,
    /// What a real PC booted with this kernel goes without ([`REAL_PC`]).
    pub real_pc: Option<&'static str>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.option;
        match (&self.actual, &self.wanted) {
            (None, Some(w)) if w == "y" => write!(f, "CONFIG_{o} is not set")?,
            (None, Some(w)) => write!(f, "CONFIG_{o} is not set (wanted: CONFIG_{o}={w})")?,
            (Some(a), Some(w)) => write!(f, "CONFIG_{o}={a}, but K1OS needs CONFIG_{o}={w}")?,
            (Some(a), None) => write!(f, "CONFIG_{o}={a}, but K1OS needs it not set")?,
            (None, None) => write!(f, "CONFIG_{o} is as wanted")?,
        }
        if let Some(b) = &self.blocker {
            write!(f, ": {b}")?;
        }
        if let Some(loss) = self.real_pc {
            write!(f, " (a real PC without it: {loss})")?;
        }
        Ok(())
    }
}

/// Every requirement `config` does not meet, in the fragments' order.
pub fn check_config(config: &Config, requirements: &[Requirement]) -> Vec<Problem> {
    let mut out = Vec::new();
    for req in requirements {
        let actual = config.get(&req.option).cloned();
        if actual == req.value {
            continue;
        }
        let need_y = req.value.as_deref() == Some("y");
        let blocker = match (&req.value, actual.as_deref()) {
            // Missing, or a module where built-in is wanted: Kconfig's doing.
            (Some(_), None) | (Some(_), Some("m")) => blocker(&req.option, need_y, config),
            _ => None,
        };
        out.push(Problem {
            option: req.option.clone(),
            wanted: req.value.clone(),
            actual,
            blocker,
            fragment: req.fragment.clone(),
            real_pc: REAL_PC
                .iter()
                .find(|(o, _)| *o == req.option)
                .map(|(_, loss)| *loss),
        });
    }
    out
}

/// Checks the .config at `path` against `profile`'s fragments.
pub fn check_file(path: &Path, profile: Profile) -> Result<Vec<Problem>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(check_config(&parse_config(&text), &requirements(profile)?))
}

/// A failed check as one message: every problem, one per line.
pub fn report(path: &Path, profile: Profile, problems: &[Problem]) -> String {
    let mut s = format!(
        "{} lacks {} option(s) the {profile} profile requires:",
        path.display(),
        problems.len()
    );
    for p in problems {
        s += &format!("\n  {p}   [{}]", p.fragment);
    }
    let mut losses: Vec<&str> = problems.iter().filter_map(|p| p.real_pc).collect();
    losses.dedup();
    if !losses.is_empty() {
        s += &format!(
            "\nOn a real PC this kernel would go without: {}",
            losses.join("; ")
        );
    }
    s += "\n(see kernel/README.md, \"Checking a config\")";
    s
}

/// The options without which a real PC loses the hardware it boots from or
/// is used with, and what it loses: `kernel check` says so next to the
/// option's name, so a missing `CONFIG_BLK_DEV_NVME` reads as "no NVMe
/// disks" (a stick boots, then the data partition is never found). The
/// qemu profile requires the storage ones too (k1os.config), the generic
/// profile all of them (generic.config adds the framebuffer and USB HID).
/// The EFI framebuffer is `FB_EFI` in 6.1 (`SYSFB_SIMPLEFB` + `DRM_SIMPLEDRM`
/// is the other way; generic.config uses `FB_EFI`, which needs `FB=y`).
const REAL_PC: &[(&str, &str)] = &[
    ("ATA", "SATA disks and CD drives (AHCI)"),
    ("SATA_AHCI", "SATA disks and CD drives (AHCI)"),
    ("BLK_DEV_NVME", "NVMe disks"),
    ("USB", "USB (sticks, keyboards)"),
    ("USB_PCI", "USB host controllers (all of a PC's are on PCI)"),
    (
        "USB_XHCI_HCD",
        "USB 3 (xHCI) ports, where a stick is plugged in",
    ),
    (
        "USB_XHCI_PCI",
        "USB 3 (xHCI) ports, where a stick is plugged in",
    ),
    ("USB_STORAGE", "USB sticks"),
    ("USB_UAS", "USB 3 sticks and enclosures that speak UAS"),
    (
        "FB",
        "a console on the EFI framebuffer (UEFI has no VGA text mode)",
    ),
    (
        "FB_EFI",
        "a console on the EFI framebuffer (UEFI has no VGA text mode)",
    ),
    (
        "FRAMEBUFFER_CONSOLE",
        "a console on the EFI framebuffer (UEFI has no VGA text mode)",
    ),
    ("HID", "USB keyboards"),
    ("USB_HID", "USB keyboards"),
    ("HID_GENERIC", "USB keyboards"),
];

/// Which profile a .config was most likely made with: tinyconfig turns
/// loadable modules off, x86_64_defconfig turns them on.
pub fn guess_profile(config: &Config) -> (Profile, &'static str) {
    if config.get("MODULES").map(String::as_str) == Some("y") {
        (
            Profile::Generic,
            "CONFIG_MODULES=y: an x86_64_defconfig base",
        )
    } else {
        (
            Profile::Qemu,
            "CONFIG_MODULES is not set: a tinyconfig base",
        )
    }
}

/// Kconfig dependencies of every option the fragments require and of the
/// options those depend on, in Linux 6.1 on x86_64 (read from its Kconfig
/// files: `depends on` lines plus the enclosing `if` blocks and menus).
/// Syntax: `SYM` must be y or m (y when the dependent must be y), `SYM=y`
/// must be y, `!SYM` must be unset, `A|B` either. Dependencies that are
/// always met on x86_64 (MMU, HAS_IOMEM, HAS_DMA, HAVE_PCI, …) are left out.
///
/// A table rather than a Kconfig parser, on purpose: the check must work
/// where there is no source tree (a config copied out of `build/`, a cache
/// hit in CI), and Kconfig's language (`if` blocks spanning `source`d files,
/// menus with `depends on`, `select`, tristate expressions, `$(ARCH)` macros)
/// is much more code to get right than this list of ~120 options. A unit
/// test keeps it complete: every option of every fragment must have a row.
/// When moving to another kernel, re-read the Kconfig entries of these rows.
const DEPENDS: &[(&str, &[&str])] = &[
    ("64BIT", &[]),
    ("BINFMT_ELF", &[]),
    ("BINFMT_SCRIPT", &[]),
    ("MULTIUSER", &[]),
    ("PRINTK", &[]),
    ("PRINTK_TIME", &["PRINTK"]),
    ("TTY", &[]),
    ("VT", &["TTY"]),
    ("VT_CONSOLE", &["TTY", "VT"]),
    ("UNIX98_PTYS", &["TTY"]),
    ("SERIAL_8250", &["TTY"]),
    ("SERIAL_8250_CONSOLE", &["TTY", "SERIAL_8250=y"]),
    ("BLK_DEV_INITRD", &[]),
    ("RD_GZIP", &["BLK_DEV_INITRD"]),
    ("RD_XZ", &["BLK_DEV_INITRD"]),
    ("RD_ZSTD", &["BLK_DEV_INITRD"]),
    ("PROC_FS", &[]),
    ("SYSFS", &[]),
    ("DEVTMPFS", &[]),
    ("SHMEM", &[]),
    ("TMPFS", &["SHMEM"]),
    ("TMPFS_XATTR", &["TMPFS"]),
    ("NET", &[]),
    ("UNIX", &["NET"]),
    ("INET", &["NET"]),
    ("FILE_LOCKING", &[]),
    ("FUTEX", &[]),
    // Network cards: drivers/net/Kconfig wraps everything in `if NETDEVICES`,
    // the virtual drivers also in `if NET_CORE`, the Ethernet ones in
    // `if ETHERNET` and `if NET_VENDOR_<vendor>`, PHY drivers in `if PHYLIB`,
    // USB adapters in `if USB_NET_DRIVERS`.
    ("PACKET", &["NET"]),
    ("NETDEVICES", &["NET"]),
    ("NET_CORE", &["NETDEVICES"]),
    ("VIRTIO_NET", &["NETDEVICES", "NET_CORE", "VIRTIO"]),
    ("ETHERNET", &["NETDEVICES", "NET"]),
    // `default PTP_1588_CLOCK`, or y when PTP is off: PTP_1588_CLOCK=m makes
    // it m, and then the drivers that depend on it cannot be built in.
    ("PTP_1588_CLOCK_OPTIONAL", &[]),
    ("NET_VENDOR_INTEL", &["ETHERNET"]),
    ("E1000", &["NET_VENDOR_INTEL", "PCI"]),
    (
        "E1000E",
        &["NET_VENDOR_INTEL", "PCI", "PTP_1588_CLOCK_OPTIONAL"],
    ),
    (
        "IGB",
        &["NET_VENDOR_INTEL", "PCI", "PTP_1588_CLOCK_OPTIONAL"],
    ),
    (
        "IGC",
        &["NET_VENDOR_INTEL", "PCI", "PTP_1588_CLOCK_OPTIONAL"],
    ),
    ("NET_VENDOR_REALTEK", &["ETHERNET", "PCI"]),
    ("R8169", &["NET_VENDOR_REALTEK", "PCI"]),
    ("PHYLIB", &["NETDEVICES"]),
    ("REALTEK_PHY", &["PHYLIB"]),
    ("NET_VENDOR_BROADCOM", &["ETHERNET", "PCI"]),
    (
        "TIGON3",
        &["NET_VENDOR_BROADCOM", "PCI", "PTP_1588_CLOCK_OPTIONAL"],
    ),
    ("NET_VENDOR_ATHEROS", &["ETHERNET", "PCI"]),
    ("ALX", &["NET_VENDOR_ATHEROS", "PCI"]),
    ("ATL1C", &["NET_VENDOR_ATHEROS", "PCI"]),
    ("USB_NET_DRIVERS", &["NETDEVICES", "USB", "NET"]),
    ("USB_USBNET", &["USB_NET_DRIVERS"]),
    ("USB_NET_CDCETHER", &["USB_NET_DRIVERS", "USB_USBNET"]),
    ("USB_NET_CDC_NCM", &["USB_NET_DRIVERS", "USB_USBNET"]),
    ("USB_NET_AX88179_178A", &["USB_NET_DRIVERS", "USB_USBNET"]),
    ("USB_RTL8152", &["USB_NET_DRIVERS"]),
    ("MISC_FILESYSTEMS", &[]),
    ("SQUASHFS", &["MISC_FILESYSTEMS", "BLOCK"]),
    ("SQUASHFS_XZ", &["MISC_FILESYSTEMS", "SQUASHFS"]),
    ("SQUASHFS_ZSTD", &["MISC_FILESYSTEMS", "SQUASHFS"]),
    ("OVERLAY_FS", &[]),
    ("EXT4_FS", &["BLOCK"]),
    ("ISO9660_FS", &["BLOCK"]),
    ("JOLIET", &["BLOCK", "ISO9660_FS"]),
    ("FAT_FS", &["BLOCK"]),
    ("VFAT_FS", &["BLOCK"]),
    ("NLS", &[]),
    ("NLS_CODEPAGE_437", &["NLS"]),
    ("NLS_ISO8859_1", &["NLS"]),
    ("NLS_UTF8", &["NLS"]),
    ("BLOCK", &[]),
    ("BLK_DEV", &["BLOCK"]),
    ("PARTITION_ADVANCED", &["BLOCK"]),
    ("MSDOS_PARTITION", &["BLOCK"]),
    ("EFI_PARTITION", &["BLOCK"]),
    ("BLK_DEV_LOOP", &["BLK_DEV"]),
    // drivers/md/Kconfig: device-mapper is in `if MD`; crypto/Kconfig: the
    // algorithms are in `if CRYPTO`, the x86 ones (arch/x86/crypto/Kconfig)
    // too.
    ("MD", &["BLOCK"]),
    ("BLK_DEV_DM", &["MD"]),
    ("DM_VERITY", &["MD", "BLK_DEV_DM"]),
    ("CRYPTO", &[]),
    ("CRYPTO_SHA256", &["CRYPTO"]),
    ("CRYPTO_SHA256_SSSE3", &["CRYPTO", "64BIT"]),
    ("PCI", &[]),
    ("SCSI", &["BLOCK"]),
    ("SCSI_LOWLEVEL", &["SCSI"]),
    ("BLK_DEV_SD", &["SCSI"]),
    ("BLK_DEV_SR", &["SCSI", "BLK_DEV"]),
    ("ATA", &["BLOCK"]),
    ("ATA_SFF", &["ATA"]),
    ("ATA_BMDMA", &["ATA", "ATA_SFF"]),
    ("ATA_PIIX", &["ATA", "ATA_SFF", "ATA_BMDMA", "PCI"]),
    ("SATA_AHCI", &["ATA", "PCI"]),
    ("VIRTIO", &[]),
    ("VIRTIO_MENU", &[]),
    ("VIRTIO_PCI", &["VIRTIO_MENU", "PCI"]),
    ("VIRTIO_BLK", &["BLK_DEV", "VIRTIO"]),
    ("SCSI_VIRTIO", &["SCSI", "SCSI_LOWLEVEL", "VIRTIO"]),
    ("USB_SUPPORT", &[]),
    ("USB", &["USB_SUPPORT"]),
    ("USB_PCI", &["USB_SUPPORT", "PCI"]),
    // drivers/usb/host/Kconfig: USB_XHCI_PCI (no prompt, default y) is in
    // `if USB_XHCI_HCD` and depends on USB_PCI.
    ("USB_XHCI_HCD", &["USB"]),
    ("USB_XHCI_PCI", &["USB_XHCI_HCD", "USB_PCI"]),
    ("USB_EHCI_HCD", &["USB"]),
    ("USB_OHCI_HCD", &["USB"]),
    ("USB_UHCI_HCD", &["USB", "USB_PCI"]),
    ("USB_STORAGE", &["USB", "SCSI"]),
    ("USB_UAS", &["USB", "SCSI", "USB_STORAGE"]),
    ("INPUT", &[]),
    ("HID", &["INPUT"]),
    ("HID_GENERIC", &["HID"]),
    ("USB_HID", &["USB", "INPUT"]),
    ("INPUT_KEYBOARD", &["INPUT"]),
    ("KEYBOARD_ATKBD", &["INPUT", "INPUT_KEYBOARD"]),
    ("ACPI", &[]),
    ("EFI", &["ACPI"]),
    ("EFI_STUB", &["EFI"]),
    // drivers/nvme/host/Kconfig; it selects NVME_CORE.
    ("BLK_DEV_NVME", &["PCI", "BLOCK"]),
    ("FB", &[]),
    ("FB_EFI", &["FB=y", "EFI"]),
    ("FRAMEBUFFER_CONSOLE", &["VT", "FB"]),
    // lib/Kconfig.debug: `depends on DEBUG_KERNEL`. Required off (its lines
    // clutter the screen console), so no dependency can make it fail.
    ("DEBUG_STACK_USAGE", &[]),
];

/// Options without a prompt: they are on only when another option selects
/// them (Kconfig `select`), so that option is what to name.
const SELECTED_BY: &[(&str, &[&str])] = &[
    ("FAT_FS", &["VFAT_FS", "MSDOS_FS"]),
    ("VIRTIO", &["VIRTIO_PCI", "VIRTIO_MMIO"]),
    ("HID", &["USB_HID"]),
];

fn lookup(
    table: &'static [(&'static str, &'static [&'static str])],
    option: &str,
) -> &'static [&'static str] {
    table
        .iter()
        .find(|(o, _)| *o == option)
        .map(|(_, d)| *d)
        .unwrap_or(&[])
}

/// How deep a blocker chain is followed (`A` needs `B`, which needs `C`…).
const MAX_CHAIN: usize = 4;

/// The unmet dependencies of `option` as clauses ("depends on CONFIG_X,
/// which is not set"), following each chain down to `MAX_CHAIN`.
fn blocking_clauses(option: &str, need_y: bool, config: &Config, depth: usize) -> Vec<String> {
    let value = |o: &str| config.get(o).map(String::as_str);
    let is_set = |o: &str| matches!(value(o), Some(v) if v != "n");
    let mut reasons = Vec::new();
    for dep in lookup(DEPENDS, option) {
        if let Some(sym) = dep.strip_prefix('!') {
            if is_set(sym) {
                reasons.push(format!("conflicts with CONFIG_{sym}, which is set"));
            }
        } else if dep.contains('|') {
            let alternatives: Vec<&str> = dep.split('|').collect();
            if !alternatives.iter().any(|s| is_set(s)) {
                let names: Vec<String> =
                    alternatives.iter().map(|s| format!("CONFIG_{s}")).collect();
                reasons.push(format!(
                    "depends on {}, none of which is set",
                    names.join(" or ")
                ));
            }
        } else {
            let (sym, must_be_y) = match dep.strip_suffix("=y") {
                Some(sym) => (sym, true),
                None => (*dep, need_y),
            };
            let why_not = match value(sym) {
                None | Some("n") => "which is not set",
                Some("m") if must_be_y => "which is m (a module), so this one cannot be y",
                _ => continue,
            };
            let mut reason = format!("depends on CONFIG_{sym}, {why_not}");
            let deeper = match depth < MAX_CHAIN {
                true => blocking_clauses(sym, must_be_y, config, depth + 1),
                false => Vec::new(),
            };
            if !deeper.is_empty() {
                let deeper: Vec<String> =
                    deeper.iter().map(|c| format!("CONFIG_{sym} {c}")).collect();
                reason += &format!(" ({})", deeper.join("; "));
            }
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        let selectors = lookup(SELECTED_BY, option);
        if !selectors.is_empty() && !selectors.iter().any(|s| is_set(s)) {
            let names: Vec<String> = selectors.iter().map(|s| format!("CONFIG_{s}")).collect();
            reasons.push(format!(
                "has no prompt and is only selected by {}, none of which is set",
                names.join(" or ")
            ));
        }
    }
    reasons
}

/// Why `option` is not set (or not `y` when `need_y`), naming the options
/// that block it, or `None` when the table knows nothing unmet.
fn blocker(option: &str, need_y: bool, config: &Config) -> Option<String> {
    let clauses = blocking_clauses(option, need_y, config, 0);
    let clauses: Vec<String> = clauses.iter().map(|c| format!("it {c}")).collect();
    (!clauses.is_empty()).then(|| clauses.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(text: &str) -> Vec<Requirement> {
        parse_fragment(text, "test.config")
    }

    fn messages(config: &str, fragment: &str) -> Vec<String> {
        check_config(&parse_config(config), &reqs(fragment))
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_complete_config_passes() {
        let config = "CONFIG_MISC_FILESYSTEMS=y\nCONFIG_BLOCK=y\nCONFIG_SQUASHFS=y\n";
        assert!(messages(config, "CONFIG_SQUASHFS=y\nCONFIG_BLOCK=y\n").is_empty());
    }

    #[test]
    fn a_missing_option_names_its_blocker() {
        let config = "CONFIG_BLOCK=y\n# CONFIG_MISC_FILESYSTEMS is not set\n";
        assert_eq!(
            messages(config, "CONFIG_SQUASHFS=y\n"),
            ["CONFIG_SQUASHFS is not set: it depends on CONFIG_MISC_FILESYSTEMS, which is not set"]
        );
    }

    #[test]
    fn every_unmet_dependency_is_named() {
        let messages = messages("", "CONFIG_SQUASHFS=y\n");
        assert_eq!(
            messages,
            [
                "CONFIG_SQUASHFS is not set: it depends on CONFIG_MISC_FILESYSTEMS, which is not set; \
              it depends on CONFIG_BLOCK, which is not set"
            ]
        );
    }

    #[test]
    fn a_blocker_chain_is_followed() {
        let messages = messages("CONFIG_PCI=y\n", "CONFIG_EFI_STUB=y\n");
        assert_eq!(
            messages,
            [
                "CONFIG_EFI_STUB is not set: it depends on CONFIG_EFI, which is not set \
              (CONFIG_EFI depends on CONFIG_ACPI, which is not set)"
            ]
        );
    }

    #[test]
    fn a_config_without_the_network_is_reported() {
        // The qemu profile's requirements over a config from before issue 12
        // (tinyconfig: INET on, no network device support, no packet sockets).
        let config =
            "CONFIG_NET=y\nCONFIG_INET=y\nCONFIG_VIRTIO=y\n# CONFIG_NETDEVICES is not set\n";
        let problems: Vec<String> =
            check_config(&parse_config(config), &requirements(Profile::Qemu).unwrap())
                .iter()
                .filter(|p| {
                    ["PACKET", "NETDEVICES", "NET_CORE", "VIRTIO_NET"].contains(&p.option.as_str())
                })
                .map(|p| format!("{p}   [{}]", p.fragment))
                .collect();
        assert_eq!(
            problems,
            [
                "CONFIG_PACKET is not set   [k1os.config]",
                "CONFIG_NETDEVICES is not set   [k1os.config]",
                "CONFIG_NET_CORE is not set: it depends on CONFIG_NETDEVICES, which is not set   [k1os.config]",
                "CONFIG_VIRTIO_NET is not set: it depends on CONFIG_NETDEVICES, which is not set; \
                 it depends on CONFIG_NET_CORE, which is not set (CONFIG_NET_CORE depends on \
                 CONFIG_NETDEVICES, which is not set)   [k1os.config]",
            ]
        );
    }

    #[test]
    fn a_built_in_nic_behind_a_ptp_module_names_it() {
        let config = "CONFIG_PCI=y\nCONFIG_ETHERNET=y\nCONFIG_NET_VENDOR_INTEL=y\n\
                      CONFIG_PTP_1588_CLOCK_OPTIONAL=m\nCONFIG_E1000E=m\n";
        assert_eq!(
            messages(config, "CONFIG_E1000E=y\n"),
            [
                "CONFIG_E1000E=m, but K1OS needs CONFIG_E1000E=y: it depends on \
                 CONFIG_PTP_1588_CLOCK_OPTIONAL, which is m (a module), so this one cannot be y"
            ]
        );
    }

    /// A config that meets every requirement of `profile`.
    fn complete(profile: Profile) -> Config {
        requirements(profile)
            .unwrap()
            .into_iter()
            .filter_map(|r| Some((r.option, r.value?)))
            .collect()
    }

    #[test]
    fn a_generic_config_without_nvme_fails_naming_it() {
        let mut config = complete(Profile::Generic);
        assert!(check_config(&config, &requirements(Profile::Generic).unwrap()).is_empty());
        config.remove("BLK_DEV_NVME");
        let problems = check_config(&config, &requirements(Profile::Generic).unwrap());
        let lines: Vec<String> = problems
            .iter()
            .map(|p| format!("{p}   [{}]", p.fragment))
            .collect();
        assert_eq!(
            lines,
            ["CONFIG_BLK_DEV_NVME is not set (a real PC without it: NVMe disks)   [k1os.config]"]
        );
        let report = report(Path::new("c"), Profile::Generic, &problems);
        assert!(
            report.starts_with("c lacks 1 option(s) the generic profile requires:")
                && report.contains("\nOn a real PC this kernel would go without: NVMe disks"),
            "{report}"
        );
    }

    #[test]
    fn a_generic_config_without_pc_hardware_names_each_loss() {
        // x86_64_defconfig's USB and HID as modules, no AHCI, no framebuffer.
        let mut config = complete(Profile::Generic);
        for option in ["SATA_AHCI", "FB", "FB_EFI", "FRAMEBUFFER_CONSOLE"] {
            config.remove(option);
        }
        config.insert("USB_XHCI_HCD".into(), "m".into());
        config.insert("USB_HID".into(), "m".into());
        let problems = check_config(&config, &requirements(Profile::Generic).unwrap());
        let named: Vec<(&str, Option<&str>)> = problems
            .iter()
            .map(|p| (p.option.as_str(), p.real_pc))
            .collect();
        let fb = Some("a console on the EFI framebuffer (UEFI has no VGA text mode)");
        assert_eq!(
            named,
            [
                ("SATA_AHCI", Some("SATA disks and CD drives (AHCI)")),
                (
                    "USB_XHCI_HCD",
                    Some("USB 3 (xHCI) ports, where a stick is plugged in")
                ),
                ("USB_HID", Some("USB keyboards")),
                ("FB", fb),
                ("FB_EFI", fb),
                ("FRAMEBUFFER_CONSOLE", fb),
            ]
        );
        let fb_efi = problems.iter().find(|p| p.option == "FB_EFI").unwrap();
        assert_eq!(
            fb_efi.to_string(),
            "CONFIG_FB_EFI is not set: it depends on CONFIG_FB, which is not set \
             (a real PC without it: a console on the EFI framebuffer (UEFI has no VGA text mode))"
        );
        // The qemu profile requires the storage controllers too.
        let qemu: Vec<String> = requirements(Profile::Qemu)
            .unwrap()
            .into_iter()
            .map(|r| r.option)
            .collect();
        for option in [
            "SATA_AHCI",
            "BLK_DEV_NVME",
            "USB_XHCI_PCI",
            "USB_STORAGE",
            "USB_UAS",
        ] {
            assert!(qemu.iter().any(|o| o == option), "qemu lacks {option}");
        }
    }

    #[test]
    fn a_wrong_value_is_reported() {
        let config = "CONFIG_BLOCK=y\nCONFIG_EXT4_FS=m\nCONFIG_LOCALVERSION=\"-x\"\n";
        let fragment = "CONFIG_EXT4_FS=y\nCONFIG_LOCALVERSION=\"-k1os\"\n";
        assert_eq!(
            messages(config, fragment),
            [
                "CONFIG_EXT4_FS=m, but K1OS needs CONFIG_EXT4_FS=y",
                "CONFIG_LOCALVERSION=\"-x\", but K1OS needs CONFIG_LOCALVERSION=\"-k1os\"",
            ]
        );
    }

    #[test]
    fn a_module_dependency_blocks_built_in() {
        let config = "CONFIG_TTY=y\nCONFIG_SERIAL_8250=m\n";
        assert_eq!(
            messages(config, "CONFIG_SERIAL_8250_CONSOLE=y\n"),
            [
                "CONFIG_SERIAL_8250_CONSOLE is not set: it depends on CONFIG_SERIAL_8250, which is m \
              (a module), so this one cannot be y"
            ]
        );
    }

    #[test]
    fn a_select_only_option_names_its_selectors() {
        let config = "CONFIG_BLOCK=y\n";
        assert_eq!(
            messages(config, "CONFIG_FAT_FS=y\n"),
            [
                "CONFIG_FAT_FS is not set: it has no prompt and is only selected by CONFIG_VFAT_FS or \
              CONFIG_MSDOS_FS, none of which is set"
            ]
        );
    }

    #[test]
    fn not_set_requirements_are_checked() {
        assert_eq!(
            messages("CONFIG_MODULES=y\n", "# CONFIG_MODULES is not set\n"),
            ["CONFIG_MODULES=y, but K1OS needs it not set"]
        );
        assert!(
            messages(
                "# CONFIG_MODULES is not set\n",
                "# CONFIG_MODULES is not set\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn fragments_parse_values_and_comments() {
        let r = reqs("# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n\nnoise\n");
        let got: Vec<(&str, Option<&str>)> = r
            .iter()
            .map(|r| (r.option.as_str(), r.value.as_deref()))
            .collect();
        assert_eq!(got, [("A", Some("y")), ("B", None), ("C", Some("\"x y\""))]);
    }

    #[test]
    fn later_fragments_override_earlier_ones() {
        // requirements() reads files; the override rule itself is what it applies.
        let generic = requirements(Profile::Generic).unwrap();
        let qemu = requirements(Profile::Qemu).unwrap();
        assert!(generic.len() > qemu.len());
        let mut names: Vec<&str> = generic.iter().map(|r| r.option.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), generic.len(), "one requirement per option");
    }

    #[test]
    fn every_fragment_option_has_a_dependency_row() {
        for profile in Profile::BUILT {
            for req in requirements(profile).unwrap() {
                assert!(
                    DEPENDS.iter().any(|(o, _)| *o == req.option),
                    "CONFIG_{} ({}) has no row in DEPENDS",
                    req.option,
                    req.fragment
                );
            }
        }
        for (option, deps) in DEPENDS.iter().chain(SELECTED_BY) {
            for dep in *deps {
                for sym in dep
                    .trim_start_matches('!')
                    .trim_end_matches("=y")
                    .split('|')
                {
                    let known = DEPENDS.iter().any(|(o, _)| *o == sym)
                        || sym == "MSDOS_FS"
                        || sym == "VIRTIO_MMIO";
                    assert!(known, "{option} names {sym}, which has no row");
                }
            }
        }
    }

    #[test]
    fn plain_and_gzip_configs_are_read_and_other_files_refused() {
        use std::io::Write;
        let text = "# comment\nCONFIG_MODULES=y\n# CONFIG_EXT4_FS is not set\n";
        let plain = config_from_bytes(text.as_bytes(), "c").unwrap();
        assert_eq!(plain.get("MODULES").map(String::as_str), Some("y"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(config_from_bytes(&gz, "config.gz").unwrap(), plain);

        let err = config_from_bytes(b"# K1OS\n\nSome prose.\n", "README.md").unwrap_err();
        assert_eq!(
            err.to_string(),
            "README.md is not a kernel .config: it has no `CONFIG_…=` or \
             `# CONFIG_… is not set` line"
        );
        let err = config_from_bytes(b"MZ\xea\x07\xc0\x07\x8c\xc8HdrS\xff", "bzImage").unwrap_err();
        assert!(
            err.to_string()
                .contains("bzImage is not a kernel .config: it is binary data")
        );
        let err = config_from_bytes(&gz[..gz.len() / 2], "cut.gz").unwrap_err();
        assert!(
            err.to_string()
                .contains("cut.gz: gzip data that does not decompress")
        );
    }

    #[test]
    fn the_profile_is_guessed_from_the_base() {
        assert_eq!(
            guess_profile(&parse_config("CONFIG_MODULES=y\n")).0,
            Profile::Generic
        );
        assert_eq!(
            guess_profile(&parse_config("# CONFIG_MODULES is not set\n")).0,
            Profile::Qemu
        );
    }
}
