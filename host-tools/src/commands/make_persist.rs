//! `host-tools make-persist`: the ext4 `K1OS-DATA` filesystem, as an image
//! file or on a device.
use anyhow::Result;
use std::path::PathBuf;

use host_tools::persist::{self, ImageFormat, Options};

/// Make the persistent data filesystem (ext4 labelled K1OS-DATA): an image
/// file for QEMU (default build/persist.img) or a USB stick, disk or partition
#[derive(clap::Args)]
pub struct Args {
    /// Image file or block device (/dev/sdX, /dev/sdX2) [default: build/persist.img,
    /// or build/persist.qcow2 with --format qcow2]
    #[arg(value_name = "PATH|DEVICE")]
    target: Option<PathBuf>,

    /// Size of an image file, e.g. 512M, 2G [default: 2G]; a device is used whole
    #[arg(long)]
    size: Option<String>,

    /// Format of an image file
    #[arg(long, value_enum, default_value = "raw")]
    format: ImageFormat,

    /// Replace an existing image file
    #[arg(long)]
    force: bool,

    /// Erase a block device without asking
    #[arg(long)]
    yes: bool,
}

pub fn exec(args: Args) -> Result<()> {
    let opts = Options {
        target: args
            .target
            .unwrap_or_else(|| persist::default_path(args.format)),
        size: args.size,
        format: args.format,
        force: args.force,
        yes: args.yes,
    };
    persist::make(&opts)?;
    println!(
        "{}: ext4 labelled {}",
        opts.target.display(),
        persist::label()
    );
    Ok(())
}
