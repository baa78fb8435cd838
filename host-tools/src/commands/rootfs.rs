//! `./k1os rootfs`: builds the packages and packs `build/system.squashfs`.
use anyhow::{Result, bail};
use std::path::PathBuf;

use host_tools::rootfs::{self, Compression, Options};
use host_tools::ui;

/// Build the packages (cached) and pack build/rootfs/ into build/system.squashfs
#[derive(clap::Args)]
#[command(after_help = "\
Packages are cached in $K1OS_CACHE by a hash of their inputs; their build
logs go to build/packages/<name>.log. The image's dm-verity hash tree is
appended to it (`./k1os initramfs --image` makes an initramfs that trusts it).
Two runs give the same bytes; when the staged tree is the same as for the
image already there (its stamp, FILE.stamp), that image is kept.

With --kernel-modules (a /lib/modules/<release> tree with its modules.dep, the
`debian` profile's build/kernel/modules) the image carries that tree as
/lib/modules/<release>, and stage 2 loads the modules its hardware needs
(docs/boot-contract.md, \"Kernel modules in stage 2\").

Examples:
  ./k1os rootfs                  build/rootfs/ and build/system.squashfs (zstd)
  ./k1os rootfs --compress xz --image /tmp/small.squashfs
  ./k1os rootfs --kernel-modules build/kernel/modules  with Debian's modules")]
pub struct Args {
    /// Compression of the squashfs
    #[arg(long, value_enum, default_value = "zstd")]
    compress: Compression,
    /// Output directory: DIR/system.squashfs, DIR/rootfs/, DIR/packages/ (logs)
    /// [default: build/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where the image goes [default: DIR/system.squashfs of --out]
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// The packages directory [default: <checkout>/packages]
    #[arg(long, value_name = "DIR")]
    packages: Option<PathBuf>,
    /// Ship this /lib/modules/<release> tree in the image [default:
    /// build/kernel/modules when the kernel in build/kernel/ has one (the
    /// `debian` profile), else none]
    #[arg(long, value_name = "DIR")]
    kernel_modules: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    let mut opts = Options::default_for_checkout(args.compress);
    if let Some(out) = args.out {
        // `--out` used to name the image file: say so rather than make a
        // directory called `something.squashfs`.
        if out.is_file() || out.extension().is_some_and(|e| e == "squashfs") {
            bail!(
                "--out is the output directory ({0}/system.squashfs, {0}/rootfs/): to name the \
                 image file, pass --image {0}",
                out.display()
            );
        }
        opts.staging = out.join("rootfs");
        opts.image = out.join("system.squashfs");
        opts.settings.work_dir = out.join("packages");
    }
    if let Some(image) = args.image {
        opts.image = image;
    }
    if let Some(dir) = args.packages {
        opts.settings.packages_dir = dir;
    }
    opts.kernel_modules = args.kernel_modules.or_else(super::kernel_modules_of_build);
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
    let packed = match built.packed {
        true => "packed",
        false => "up to date (packed from the same tree before)",
    };
    ui::step(&format!(
        "squashfs: {} entries, {}, {packed} ({:.1} s)",
        built.entries,
        super::spelling(&args.compress),
        built.pack_time.as_secs_f64()
    ));
    if let Some(release) = &built.modules_release {
        ui::step(&format!("kernel modules: /lib/modules/{release}"));
    }
    ui::step(&format!(
        "dm-verity: root hash {}, hash tree {} ({} bytes) appended",
        built.verity.root_hex(),
        ui::human_size(built.verity.tree_bytes),
        built.verity.tree_bytes
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
