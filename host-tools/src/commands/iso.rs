//! `./k1os iso`: builds `build/k1os.iso` and whatever it needs.
use anyhow::Result;
use std::path::PathBuf;
use std::time::Instant;

use host_tools::iso::{self, Options};
use host_tools::kernel::Profile;
use host_tools::{paths, ui};

/// Build the bootable hybrid ISO (BIOS + UEFI, CD + USB stick): kernel,
/// initramfs, root filesystem and warp's repository as needed, then
/// build/k1os.iso
#[derive(clap::Args)]
#[command(after_help = "\
Each step is skipped when its inputs have not changed: a rebuild with nothing
changed takes a second or two. The ISO is reproducible (SOURCE_DATE_EPOCH,
default the last commit's time). The kernel is cached in $K1OS_CACHE.

The ISO carries warp's signed repository as /repo (the packages with
`repository = true`, built into DIR/repo/ as `./k1os repo build` does, signed
with the build key or $K1OS_REPO_KEY): a booted K1OS installs from it with no
network (`warp update`, then `warp install NAME`).

The initramfs trusts the ISO's root image and no other: stage 1 mounts it
through dm-verity, the kernel checks each block as it is read.

Examples:
  ./k1os iso                  for real PCs (generic kernel: ~20 min at first)
  ./k1os iso --profile qemu   the small test kernel: minutes; QEMU only
  ./k1os iso --profile debian Debian's signed chain: boots with Secure Boot on
  ./k1os qemu                 then boot it")]
pub struct Args {
    /// Kernel profile: `generic` boots real PCs, `qemu` is the small test
    /// kernel, `debian` Debian's signed package (its modules in the
    /// initramfs) [default: $K1OS_KERNEL_PROFILE, else generic]
    #[arg(long, value_enum)]
    profile: Option<Profile>,

    /// Kernel source: a tarball or an unpacked tree [default: the pinned one,
    /// see kernel/pin.toml]
    #[arg(long, value_name = "TARBALL|DIR")]
    kernel_source: Option<PathBuf>,

    /// Ship this root filesystem image as /system.squashfs instead of building
    /// one (made by `./k1os rootfs`: its dm-verity tree is checked, and the
    /// initramfs trusts it)
    #[arg(long, value_name = "FILE")]
    system: Option<PathBuf>,

    /// Output directory: DIR/k1os.iso, DIR/initramfs.img, DIR/repo/, DIR/iso/
    /// [default: build/]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    let start = Instant::now();
    let opts = Options {
        profile: paths::kernel_profile(args.profile)?,
        kernel_source: args.kernel_source,
        out: args.out.unwrap_or_else(paths::build_dir),
        system: args.system,
    };
    let built = iso::build(&opts)?;
    let width = built
        .artefacts
        .iter()
        .map(|a| a.what.len())
        .max()
        .unwrap_or(0);
    println!();
    for a in &built.artefacts {
        println!(
            "{:<width$}  {:>10}  {}",
            a.what,
            ui::human_size(a.size),
            a.path.display()
        );
    }
    println!();
    println!(
        "{} {} in {:.1} s (SOURCE_DATE_EPOCH={}, kernel profile {})",
        built.iso.display(),
        if built.rebuilt { "built" } else { "up to date" },
        start.elapsed().as_secs_f64(),
        built.epoch,
        opts.profile
    );
    println!("boot it: ./k1os qemu [--uefi|--secure-boot] [--usb] [--persist] [--ram-mode]");
    Ok(())
}
