//! `host-tools qemu`: boots the ISO in QEMU, interactively, through the
//! firmware and GRUB as a PC would.
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};

use host_tools::iso::vm::{Attach, Firmware, IsoVm};
use host_tools::persist::{self, ImageFormat};
use host_tools::qemu::{ACCEL_ENV, Accel, Format};
use host_tools::run::Cmd;
use host_tools::{iso, paths, ui};

/// Boot the ISO in QEMU with the serial console on this terminal
/// (Ctrl-A X quits, Ctrl-A C is QEMU's monitor)
#[derive(clap::Args)]
pub struct Args {
    /// Attach a data disk (default build/persist.img, made with 2G if missing)
    #[arg(long, value_name = "IMAGE", num_args = 0..=1)]
    persist: Option<Option<PathBuf>>,

    /// Boot with UEFI firmware (OVMF) instead of BIOS
    #[arg(long)]
    uefi: bool,

    /// Attach the ISO as a USB stick instead of a CD-ROM
    #[arg(long, conflicts_with = "disk")]
    usb: bool,

    /// Attach the ISO as a hard disk instead of a CD-ROM
    #[arg(long)]
    disk: bool,

    /// Choose the "K1OS (RAM mode)" menu entry
    #[arg(long)]
    ram_mode: bool,

    /// The ISO [default: build/k1os.iso]
    #[arg(long)]
    iso: Option<PathBuf>,

    /// Guest memory in MiB
    #[arg(long, default_value_t = 1024)]
    memory: u32,

    /// Show the screen in a window too (the serial console stays on the terminal)
    #[arg(long)]
    gui: bool,

    /// Accelerator: KVM if it boots a kernel here, else TCG (auto); or force one
    #[arg(long, value_enum, env = ACCEL_ENV, default_value = "auto")]
    accel: AccelChoice,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum AccelChoice {
    Auto,
    Kvm,
    Tcg,
}

pub fn exec(args: Args) -> Result<()> {
    let iso_path = args
        .iso
        .unwrap_or_else(|| iso::iso_path(&paths::build_dir()));
    if !iso_path.is_file() {
        bail!(
            "{} does not exist: build it with `make iso` (or `host-tools iso`)",
            iso_path.display()
        );
    }
    let mut vm = IsoVm::new(&iso_path)
        .firmware(if args.uefi {
            Firmware::Uefi
        } else {
            Firmware::Bios
        })
        .attach(if args.usb {
            Attach::Usb
        } else if args.disk {
            Attach::Disk
        } else {
            Attach::Cdrom
        })
        .memory_mib(args.memory)
        .gui(args.gui);
    if let Some(image) = args.persist {
        let image = image.unwrap_or_else(|| persist::default_path(ImageFormat::Raw));
        if !image.exists() {
            ui::step(&format!(
                "{} does not exist: making it (host-tools make-persist)",
                image.display()
            ));
            persist::make(&persist::Options {
                target: image.clone(),
                size: None,
                format: ImageFormat::Raw,
                force: false,
                yes: false,
            })?;
        }
        let format = image_format(&image)?;
        vm = vm.data(image, format);
    }
    let accel = match args.accel {
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Auto => probe_kvm(&iso_path)?,
    };
    let log = paths::build_dir().join("qemu-serial.log");
    ui::step(&format!(
        "booting {} ({:?}, {:?}, {:?}{}); serial console copied to {}; Ctrl-A X quits",
        iso_path.display(),
        vm.firmware,
        vm.attach,
        accel,
        match &vm.data {
            Some((p, _)) => format!(", data disk {}", p.display()),
            None => String::new(),
        },
        log.display()
    ));
    let entry = if args.ram_mode { 1 } else { 0 };
    vm.run_interactive(accel, &log, entry)
}

/// KVM when it boots the ISO's own kernel here, else TCG.
fn probe_kvm(iso_path: &Path) -> Result<Accel> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        ui::step("no usable /dev/kvm: using TCG (slower)");
        return Ok(Accel::Tcg);
    }
    ui::step("checking that KVM boots a kernel here (up to 10 s; --accel kvm|tcg skips this)");
    let kernel = std::env::temp_dir().join(format!("k1os-qemu-vmlinuz-{}", std::process::id()));
    let _ = std::fs::remove_file(&kernel);
    Cmd::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso_path)
        .args(["-extract", iso::KERNEL_PATH])
        .arg(&kernel)
        .run()
        .with_context(|| {
            format!(
                "extracting {} from {}",
                iso::KERNEL_PATH,
                iso_path.display()
            )
        })?;
    let works = Accel::kvm_boots(&kernel);
    let _ = std::fs::remove_file(&kernel);
    if works {
        Ok(Accel::Kvm)
    } else {
        ui::step("KVM does not boot a kernel here: using TCG (slower)");
        Ok(Accel::Tcg)
    }
}

/// qcow2 by its magic, raw otherwise.
fn image_format(path: &Path) -> Result<Format> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = file.read(&mut magic)?;
    Ok(if n == 4 && magic == *b"QFI\xfb" {
        Format::Qcow2
    } else {
        Format::Raw
    })
}
