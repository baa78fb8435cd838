//! `./k1os initramfs`: builds stage 1 and packs `build/initramfs.img`.
use anyhow::Result;
use std::path::PathBuf;

use host_tools::initramfs::{self, Compression};
use host_tools::{paths, ui, verity};

/// Build init-nostd (release) and pack build/init + build/initramfs.img
#[derive(clap::Args)]
#[command(after_help = "\
Without --image the initramfs trusts no image: stage 1 mounts whatever image
it finds, unverified, with a warning. With --image it trusts that image only
(its dm-verity root hash is packed in): another image, or a damaged one, stops
the boot. `./k1os iso` always packs its image's.

Examples:
  ./k1os initramfs                    build/init and build/initramfs.img (gzip)
  ./k1os initramfs --image build/system.squashfs  the same, trusting that image
  ./k1os initramfs --compress none    an uncompressed archive, to compare sizes")]
pub struct Args {
    /// Compression of the archive
    #[arg(long, value_enum, default_value = "gzip")]
    compress: Compression,
    /// Output directory: DIR/init, DIR/initramfs.img [default: build/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Trust this root image (made by `./k1os rootfs`: its hash tree is checked)
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    let out = args.out.unwrap_or_else(paths::build_dir);
    let trust = match &args.image {
        Some(image) => {
            let step = ui::Step::start(format!("check the hash tree of {}", image.display()));
            let v = verity::read(image)?;
            step.done(&format!("root hash {}", v.root_hex()));
            Some(v)
        }
        None => None,
    };
    let step = ui::Step::start("pack the initramfs");
    let built = initramfs::build(&out, args.compress, trust.as_ref())?;
    step.done(match trust {
        Some(_) => "done, trusting that image",
        None => "done, trusting no image (stage 1 will warn that the image is not verified)",
    });
    println!(
        "{}: {} bytes ({})",
        built.init.display(),
        built.init_size,
        ui::human_size(built.init_size)
    );
    println!(
        "{}: {} bytes ({} uncompressed, {})",
        built.image.display(),
        built.image_size,
        ui::human_size(built.raw_size),
        super::spelling(&args.compress)
    );
    Ok(())
}
