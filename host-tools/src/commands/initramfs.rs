//! `./k1os initramfs`: builds stage 1 and packs `build/initramfs.img`.
use anyhow::Result;
use std::path::PathBuf;

use host_tools::initramfs::{self, Compression};
use host_tools::{paths, ui};

/// Build init-nostd (release) and pack build/init + build/initramfs.img
#[derive(clap::Args)]
#[command(after_help = "\
Examples:
  ./k1os initramfs                    build/init and build/initramfs.img (gzip)
  ./k1os initramfs --compress none    an uncompressed archive, to compare sizes")]
pub struct Args {
    /// Compression of the archive
    #[arg(long, value_enum, default_value = "gzip")]
    compress: Compression,
    /// Output directory: DIR/init, DIR/initramfs.img [default: build/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    let out = args.out.unwrap_or_else(paths::build_dir);
    let step = ui::Step::start("pack the initramfs");
    let built = initramfs::build(&out, args.compress)?;
    step.done("done");
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
