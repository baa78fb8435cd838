//! `./k1os qemu`: boots the ISO in QEMU, interactively, through the
//! firmware and GRUB as a PC would.
use anyhow::{Result, bail};
use std::path::PathBuf;

use host_tools::persist::{self, ImageFormat};
use host_tools::vm::{self, AccelChoice, Display, Drive, Firmware, Format, Machine, Purpose};
use host_tools::{iso, paths, ui};

/// Boot the ISO in QEMU with the serial console on this terminal
/// (Ctrl-A X quits, Ctrl-A C is QEMU's monitor)
#[derive(clap::Args)]
#[command(after_help = "\
The serial console is copied to build/qemu-serial.log.

Examples:
  ./k1os qemu                          BIOS, the ISO as a CD-ROM
  ./k1os qemu --uefi --usb --persist   UEFI, a USB stick, build/persist.img
  ./k1os qemu --secure-boot            UEFI, Secure Boot on (the debian profile)
  ./k1os qemu --ram-mode --memory 2G   the \"K1OS (RAM mode)\" entry, 2 GiB")]
pub struct Args {
    /// Attach a data disk: IMAGE, which must exist (make one with `./k1os
    /// make-persist`) [default: build/persist.img or build/persist.qcow2,
    /// a new 2 GiB build/persist.img when neither exists]
    #[arg(long, value_name = "IMAGE", num_args = 0..=1)]
    persist: Option<Option<PathBuf>>,

    /// Boot with UEFI firmware (OVMF) instead of BIOS
    #[arg(long)]
    uefi: bool,

    /// Boot with UEFI firmware that enforces Secure Boot, Microsoft's keys
    /// enrolled, as PCs ship (OVMF's Secure Boot build on q35): the ISO of
    /// `./k1os iso --profile debian` boots, the others are refused
    #[arg(long, conflicts_with = "uefi")]
    secure_boot: bool,

    /// Attach the ISO as a USB stick instead of a CD-ROM
    #[arg(long, conflicts_with = "disk")]
    usb: bool,

    /// Attach the ISO as a hard disk instead of a CD-ROM
    #[arg(long)]
    disk: bool,

    /// Choose the "K1OS (RAM mode)" menu entry
    #[arg(long)]
    ram_mode: bool,

    /// The ISO to boot [default: build/k1os.iso]
    #[arg(long, value_name = "FILE")]
    iso: Option<PathBuf>,

    /// Guest memory: 512M, 2G; a bare number is MiB [default: 1G]
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    memory: Option<u32>,

    /// Show the screen in a window too (the serial console stays on the terminal)
    #[arg(long)]
    gui: bool,

    /// Accelerator: `auto` uses KVM if it boots a kernel here, else TCG
    /// [default: $K1OS_ACCEL, else auto]
    #[arg(long, value_enum)]
    accel: Option<AccelChoice>,
}

/// Guest memory unless `--memory` says otherwise.
const DEFAULT_MEMORY_MIB: u32 = 1024;
/// Less than this is certainly a mistake (`--memory 1` meant 1G?).
const MIN_MEMORY_MIB: u32 = 64;

/// `--memory`: `2G`, `512M`, `1536MiB`; a bare number is MiB. Whole MiB only.
pub fn parse_memory(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let bytes = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        t.parse::<u64>()
            .ok()
            .and_then(|mib| mib.checked_mul(1 << 20))
            .ok_or_else(|| format!("{t} MiB is too large"))?
    } else {
        persist::parse_size(t).map_err(|e| format!("{e:#}"))?
    };
    if bytes % (1 << 20) != 0 {
        return Err(format!("{t} is not a whole number of MiB"));
    }
    let mib = u32::try_from(bytes >> 20).map_err(|_| format!("{t} is too large"))?;
    if mib < MIN_MEMORY_MIB {
        return Err(format!(
            "{mib} MiB is too little to boot (at least {MIN_MEMORY_MIB}M; units: 512M, 2G)"
        ));
    }
    Ok(mib)
}

pub fn exec(args: Args) -> Result<()> {
    // A bad K1OS_ACCEL is reported before anything else.
    let accel = AccelChoice::resolve(args.accel, Purpose::Interactive)?;
    let iso_path = args
        .iso
        .unwrap_or_else(|| iso::iso_path(&paths::build_dir()));
    if !iso_path.is_file() {
        bail!(
            "{} does not exist: build it with `make iso` (or `./k1os iso`)",
            iso_path.display()
        );
    }
    let (drive, attached) = if args.usb {
        (Drive::usb(&iso_path).snapshot(), "USB stick")
    } else if args.disk {
        (Drive::ide(&iso_path).snapshot(), "hard disk")
    } else {
        (Drive::cdrom(&iso_path), "CD-ROM")
    };
    let firmware = if args.secure_boot {
        Firmware::SecureBoot
    } else if args.uefi {
        Firmware::Uefi
    } else {
        Firmware::Bios
    };
    let mut machine = Machine::firmware(firmware)
        .drive(drive.boot())
        .memory_mib(args.memory.unwrap_or(DEFAULT_MEMORY_MIB))
        .display(if args.gui {
            Display::Window
        } else {
            Display::None
        })
        .accel(accel);
    let mut data_disk = String::new();
    if let Some(image) = args.persist {
        let image = match image {
            Some(image) if !image.exists() => bail!(
                "the data image {0} does not exist: make it with `./k1os make-persist {0}`, \
                 or pass --persist alone for build/persist.img",
                image.display()
            ),
            Some(image) => image,
            None => default_data_image()?,
        };
        data_disk = format!(", data disk {}", image.display());
        let format = Format::detect(&image)?;
        machine = machine.drive(Drive::virtio(image).format(format));
    }
    // Chosen (KVM probed, for auto) before the banner, which names it.
    let accel = vm::accel::for_machine(&machine, Purpose::Interactive)?;
    let machine = machine.accel(accel);
    let log = paths::build_dir().join("qemu-serial.log");
    ui::step(&format!(
        "booting {} ({}, {attached}, {}{data_disk}); serial console copied to {}; Ctrl-A X quits",
        iso_path.display(),
        match firmware {
            Firmware::SecureBoot => "UEFI with Secure Boot",
            Firmware::Uefi => "UEFI",
            Firmware::Bios => "BIOS",
        },
        accel.name(),
        log.display()
    ));
    let entry = args.ram_mode.then_some(iso::TITLE_RAM);
    machine.run_interactive(&log, entry)
}

/// `--persist` without a path: `build/persist.img`, else `build/persist.qcow2`
/// (what `make-persist --format qcow2` makes), else a new 2 GiB
/// `build/persist.img`.
fn default_data_image() -> Result<PathBuf> {
    let raw = persist::default_path(ImageFormat::Raw);
    let qcow2 = persist::default_path(ImageFormat::Qcow2);
    if raw.exists() {
        return Ok(raw);
    }
    if qcow2.exists() {
        return Ok(qcow2);
    }
    ui::step(&format!(
        "{} does not exist: making it (`./k1os make-persist`)",
        raw.display()
    ));
    persist::make(&persist::Options {
        target: raw.clone(),
        size: None,
        format: ImageFormat::Raw,
        force: false,
        yes: false,
    })?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_units() {
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("1G"), Ok(1024));
        assert_eq!(parse_memory("512M"), Ok(512));
        assert_eq!(parse_memory("1536MiB"), Ok(1536));
        assert_eq!(parse_memory("2g"), Ok(2048));
        for bad in ["", "1", "1.5G", "banana", "1000000K", "999999999999", "-1G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }
}
