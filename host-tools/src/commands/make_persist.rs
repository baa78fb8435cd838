//! `./k1os make-persist`: the ext4 `K1OS-DATA` filesystem, as an image
//! file or on a device.
use anyhow::Result;
use std::os::unix::fs::FileTypeExt;
use std::path::PathBuf;

use host_tools::persist::{self, ImageFormat, Options};
use host_tools::ui;

/// Make the persistent data filesystem (ext4 labelled K1OS-DATA): an image
/// file for QEMU (build/persist.img by default) or a USB stick, disk or
/// partition
#[derive(clap::Args)]
#[command(after_help = "\
An existing image file is kept unless --force is given. A block device must
not be in use; what is on it is shown and you must type `yes` (or pass --yes,
which is required without a terminal). Sizes are binary: 2G = 2 GiB.

Examples:
  ./k1os make-persist     build/persist.img (2 GiB), for `./k1os qemu --persist`
  ./k1os make-persist build/small.qcow2 --size 512M
  sudo target/debug/host-tools make-persist /dev/sdX   (erases the stick sdX)")]
pub struct Args {
    /// Image file or block device (/dev/sdX, /dev/sdX2) [default: build/persist.img,
    /// or build/persist.qcow2 with --format qcow2]
    #[arg(value_name = "FILE|DEVICE")]
    target: Option<PathBuf>,

    /// Size of an image file, e.g. 512M, 2G [default: 2G]; a device is used whole
    #[arg(long, value_name = "SIZE", allow_hyphen_values = true)]
    size: Option<String>,

    /// Format of an image file [default: qcow2 for a FILE ending in .qcow2, else raw]
    #[arg(long, value_enum)]
    format: Option<ImageFormat>,

    /// Replace an existing image file
    #[arg(long)]
    force: bool,

    /// Do nothing when the image file already exists (what `make make-persist`
    /// uses; --force wins; devices are never skipped)
    #[arg(long)]
    if_missing: bool,

    /// Erase a block device without asking
    #[arg(long)]
    yes: bool,
}

pub fn exec(args: Args) -> Result<()> {
    let (target, format) = match (args.target, args.format) {
        (None, format) => {
            let format = format.unwrap_or(ImageFormat::Raw);
            (persist::default_path(format), format)
        }
        (Some(target), None) => {
            let format = ImageFormat::from_extension(&target).unwrap_or(ImageFormat::Raw);
            (target, format)
        }
        (Some(target), Some(format)) => {
            if let Some(named) = ImageFormat::from_extension(&target)
                && named != format
            {
                ui::warning(&format!(
                    "{} is named like a {} image but will be {} (--format {})",
                    target.display(),
                    named.name(),
                    format.name(),
                    format.name()
                ));
            }
            (target, format)
        }
    };
    if args.if_missing && !args.force {
        match std::fs::metadata(&target) {
            Ok(meta) if !meta.file_type().is_block_device() => {
                ui::note(&format!(
                    "{} already exists: kept (pass --force to replace it)",
                    target.display()
                ));
                return Ok(());
            }
            _ => {}
        }
    }
    let opts = Options {
        target,
        size: args.size,
        format,
        force: args.force,
        yes: args.yes,
    };
    persist::make(&opts)?;
    println!(
        "{}: ext4 labelled {}",
        opts.target.display(),
        k1os_contract::contract::DATA_LABEL
    );
    Ok(())
}
