//! `host-tools rootfs`: builds the packages and packs `build/system.squashfs`.
use anyhow::Result;
use std::path::PathBuf;

use host_tools::rootfs::{self, Compression, Options};
use host_tools::ui;

/// Build the packages (cached) and pack build/rootfs/ into build/system.squashfs
#[derive(clap::Args)]
pub struct Args {
    /// Compression of the squashfs
    #[arg(long, value_enum, default_value = "zstd")]
    compress: Compression,
    /// Where the image goes (default: build/system.squashfs)
    #[arg(long)]
    out: Option<PathBuf>,
    /// The packages directory (default: packages/)
    #[arg(long)]
    packages: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    let mut opts = Options::default_for_checkout(args.compress);
    if let Some(out) = args.out {
        opts.image = out;
    }
    if let Some(dir) = args.packages {
        opts.settings.packages_dir = dir;
    }
    let start = std::time::Instant::now();
    let built = rootfs::build(&opts, |b| {
        let what = if b.cached { "cached" } else { "built" };
        ui::step(&format!(
            "package {} {}: {what} ({:.1} s)",
            b.name,
            b.version,
            b.elapsed.as_secs_f64()
        ));
    })?;
    ui::step(&format!(
        "squashfs: {} entries, {:?} ({:.1} s)",
        built.entries,
        args.compress,
        built.pack_time.as_secs_f64()
    ));
    let rebuilt = built.packages.iter().filter(|b| !b.cached).count();
    println!(
        "{}: {} bytes ({}); {} packages, {rebuilt} built; {:.1} s",
        built.image.display(),
        built.size,
        ui::human_size(built.size),
        built.packages.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
