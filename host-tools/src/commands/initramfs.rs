//! `./k1os initramfs`: builds stage 1 and packs `build/initramfs.img`.
use anyhow::Result;
use std::path::PathBuf;

use host_tools::initramfs::{self, Compression};
use host_tools::{kernel, paths, ui, verity};

/// Build init-nostd (release) and pack build/init + build/initramfs.img
#[derive(clap::Args)]
#[command(after_help = "\
Without --image the initramfs trusts no image: stage 1 mounts whatever image
it finds, unverified, with a warning. With --image it trusts that image only
(its dm-verity root hash is packed in): another image, or a damaged one, stops
the boot. `./k1os iso` always packs its image's.

With --kernel-modules (a /lib/modules/<release> tree with its modules.dep) it
packs the modules stage 1 needs before it can find the media (filesystems,
disk, USB and keyboard drivers; docs/boot-contract.md, \"Kernel modules\")
and every module they depend on, uncompressed, with the list stage 1 loads
them by. A module the tree lacks is a warning naming it; none, an error.

Examples:
  ./k1os initramfs                    build/init and build/initramfs.img (gzip)
  ./k1os initramfs --image build/system.squashfs  the same, trusting that image
  ./k1os initramfs --compress none    an uncompressed archive, to compare sizes
  ./k1os initramfs --kernel-modules build/kernel/modules  Debian's modules too")]
pub struct Args {
    /// Compression of the archive [default: gzip; zstd with --kernel-modules,
    /// which keeps Debian's modules under 2 MiB where gzip takes 2.4]
    #[arg(long, value_enum)]
    compress: Option<Compression>,
    /// Output directory: DIR/init, DIR/initramfs.img [default: build/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Trust this root image (made by `./k1os rootfs`: its hash tree is checked)
    #[arg(long, value_name = "FILE")]
    image: Option<PathBuf>,
    /// Carry the kernel modules stage 1 needs from this /lib/modules/<release>
    /// tree [default: build/kernel/modules when the kernel in build/kernel/
    /// has one (the `debian` profile), else none]
    #[arg(long, value_name = "DIR")]
    kernel_modules: Option<PathBuf>,
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
    let kernel_modules = args.kernel_modules.or_else(super::kernel_modules_of_build);
    if let Some(tree) = &kernel_modules {
        kernel::debian::check_module_tree(tree)?;
    }
    let compress = args.compress.unwrap_or(match kernel_modules {
        Some(_) => Compression::Zstd,
        None => Compression::Gzip,
    });
    let step = ui::Step::start("pack the initramfs");
    let built = initramfs::build(&out, compress, trust.as_ref(), kernel_modules.as_deref())?;
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
    if let Some(selection) = &built.modules {
        println!(
            "kernel modules: {} packed ({} bytes uncompressed), {} built in, {} not found",
            selection.modules.len(),
            built.modules_size,
            selection.builtin.len(),
            selection.missing.len()
        );
    }
    println!(
        "{}: {} bytes ({} uncompressed, {})",
        built.image.display(),
        built.image_size,
        ui::human_size(built.raw_size),
        super::spelling(&compress)
    );
    Ok(())
}
