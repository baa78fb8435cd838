//! What the stage 1s boot into, the same for all of them: the stage-2
//! root image on an ISO 9660 `K1OS` (attached as a CD-ROM), the data disks
//! (1 GiB ext4 `K1OS-DATA`, empty or almost full) and the small empty disks
//! that the growth runs add.
//!
//! **The seam between the bench and the root filesystem is [`Root`]**:
//! `Root::System` (the default) boots `build/system.squashfs`, K1OS's root
//! filesystem (`host_tools::rootfs`), whose stage 2 writes
//! [`contract::MARKER_STAGE2_READY`] to `/dev/kmsg` (so it carries a printk
//! timestamp) once its services are up; the bench stops the VM at that line.
//! `Root::Bench` is a tiny busybox root whose `/sbin/init` writes the same line
//! and powers off: stage 2 as cheap as it gets, for looking at stage 1 alone.
use anyhow::{Context, Result, bail, ensure};
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k1os_contract::contract;

use crate::run::Cmd;
use crate::{paths, rootfs, testimg, ui};

/// The stage-2 root the bench boots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Root {
    /// `build/system.squashfs`, the K1OS root filesystem (`host-tools rootfs`).
    System,
    /// A tiny busybox root: its `/sbin/init` says "stage 2 ready" and powers off.
    Bench,
}

impl Root {
    pub fn name(self) -> &'static str {
        match self {
            Root::Bench => "bench",
            Root::System => "system",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Root::System => {
                "`build/system.squashfs`, K1OS's root filesystem (busybox init, services, then the ready line)"
            }
            Root::Bench => {
                "a tiny busybox root whose /sbin/init says the ready line and powers off"
            }
        }
    }
}

/// The bench root's `/sbin/init`: the ready marker with a printk timestamp,
/// then power-off (the kernel's `reboot: Power down` ends QEMU).
pub fn bench_init_script() -> String {
    format!(
        "#!/bin/sh\n\
         # K1OS bench stage 2 (a benchmark fixture): the ready line goes to\n\
         # /dev/kmsg, so it carries a printk timestamp; then power off.\n\
         echo \"<6>{}\" > /dev/kmsg\n\
         poweroff -f\n",
        contract::MARKER_STAGE2_READY
    )
}

/// The root image for `root`, under `dir`: the bench root made there, or
/// `build/system.squashfs` (first built with `host-tools rootfs`' defaults
/// when `build`) copied there, so the run boots the same bytes throughout.
pub fn root_image(root: Root, dir: &Path, build: bool) -> Result<PathBuf> {
    match root {
        Root::Bench => {
            let step = ui::Step::start("bench: stage-2 root (busybox, says ready and powers off)");
            let tree = dir.join("bench-root");
            testimg::test_rootfs(&tree)?;
            let init = tree.join("sbin/init");
            fs::write(&init, bench_init_script())
                .with_context(|| format!("writing {}", init.display()))?;
            fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
            let image = dir.join("bench-root.squashfs");
            testimg::squashfs(&tree, &image)?;
            step.done(&ui::human_size(fs::metadata(&image)?.len()));
            Ok(image)
        }
        Root::System => {
            let mut image = paths::build_dir().join("system.squashfs");
            if build {
                let step = ui::Step::start("bench: root filesystem (packages cached)");
                let opts = rootfs::Options::default_for_checkout(rootfs::Compression::Zstd);
                image = rootfs::build(&opts, |_| {})?.image;
                step.done(&ui::human_size(fs::metadata(&image)?.len()));
            }
            ensure!(
                image.is_file(),
                "the bench boots {} (`--root system`), which is not built: \
                 run `host-tools rootfs`, or use `--root bench`",
                image.display()
            );
            let copy = dir.join("system.squashfs");
            fs::copy(&image, &copy)
                .with_context(|| format!("copying {} to {}", image.display(), copy.display()))?;
            Ok(copy)
        }
    }
}

/// The boot media: an ISO 9660 `K1OS` holding `image` as `/system.squashfs`.
pub fn media_iso(image: &Path, dir: &Path) -> Result<PathBuf> {
    let iso = dir.join("media.iso");
    testimg::iso(image, &iso)?;
    Ok(iso)
}

/// How full a data disk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// `/upper` and `/work` only.
    Empty,
    /// `/upper/fill/` holds files up to about [`ALMOST_FULL_PERCENT`] of the filesystem.
    AlmostFull,
}

/// How much of an almost full data disk is used.
pub const ALMOST_FULL_PERCENT: f64 = 95.0;
/// Size of the data disks.
pub const DATA_SIZE_MIB: u64 = 1024;
/// Size of each big file on an almost full disk, and how many small ones there are.
const FILL_CHUNK: u64 = 64 << 20;
const SMALL_FILES: usize = 512;
const SMALL_FILE_BYTES: usize = 4096;
/// Changes when the way data disks are made changes (their stamps then differ).
const RECIPE: &str = "data-disk v1: mkfs.ext4 -E lazy_itable_init=0,lazy_journal_init=0 -d";

/// A data disk: a raw file holding an ext4 `K1OS-DATA` with `/upper` and `/work`.
#[derive(Clone, Debug)]
pub struct DataDisk {
    pub path: PathBuf,
    pub size_mib: u64,
    pub fill: Fill,
    /// Blocks in use, in percent of the filesystem.
    pub used_percent: f64,
}

/// Makes (or reuses, when its stamp matches) the data disk `path`. The
/// guest never changes it: the bench attaches it with `snapshot=on`, so every
/// boot sees the same clean filesystem.
pub fn data_disk(path: &Path, size_mib: u64, fill: Fill) -> Result<DataDisk> {
    let stamp_path = path.with_extension("stamp");
    let stamp = format!("{RECIPE}\nsize={size_mib}M fill={fill:?}\n");
    let reuse = path.is_file() && fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp);
    if !reuse {
        let _ = fs::remove_file(&stamp_path);
        let step = ui::Step::start(format!(
            "bench: data disk {} ({size_mib} MiB, {fill:?})",
            path.display()
        ));
        let tree = path.with_extension("tree");
        make_tree(&tree, None)?;
        mkfs(path, size_mib, &tree)?;
        if fill == Fill::AlmostFull {
            let (count, free, block) = usage(path)?;
            let target_used = (count as f64 * ALMOST_FULL_PERCENT / 100.0) as u64;
            let to_fill = target_used.saturating_sub(count - free) * block;
            make_tree(&tree, Some(to_fill))?;
            mkfs(path, size_mib, &tree)?;
        }
        fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
        fs::write(&stamp_path, &stamp)
            .with_context(|| format!("writing {}", stamp_path.display()))?;
        step.done("done");
    }
    let (count, free, _) = usage(path)?;
    Ok(DataDisk {
        path: path.to_path_buf(),
        size_mib,
        fill,
        used_percent: (count - free) as f64 * 100.0 / count as f64,
    })
}

/// The tree a data disk is made from: `upper/`, `work/`, and `fill` bytes
/// of files (non-zero content: `mkfs.ext4 -d` would leave zero blocks as holes).
fn make_tree(tree: &Path, fill: Option<u64>) -> Result<()> {
    if tree.exists() {
        fs::remove_dir_all(tree).with_context(|| format!("removing {}", tree.display()))?;
    }
    let upper = tree.join(contract::DATA_UPPER_DIR);
    for dir in [upper.clone(), tree.join(contract::DATA_WORK_DIR)] {
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let Some(mut left) = fill else {
        return Ok(());
    };
    let small = upper.join("fill/small");
    fs::create_dir_all(&small).with_context(|| format!("creating {}", small.display()))?;
    for i in 0..SMALL_FILES {
        let content = vec![b'a' + (i % 26) as u8; SMALL_FILE_BYTES];
        fs::write(small.join(format!("{i:04}.txt")), content)?;
        left = left.saturating_sub(SMALL_FILE_BYTES as u64);
    }
    let pattern: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8 + 1).collect();
    let mut n = 0;
    while left > 0 {
        let size = left.min(FILL_CHUNK);
        let path = upper.join(format!("fill/big-{n:03}.bin"));
        let mut f =
            fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut written = 0;
        while written < size {
            let len = (size - written).min(pattern.len() as u64) as usize;
            f.write_all(&pattern[..len])
                .with_context(|| format!("writing {}", path.display()))?;
            written += len as u64;
        }
        left -= size;
        n += 1;
    }
    Ok(())
}

fn mkfs(path: &Path, size_mib: u64, tree: &Path) -> Result<()> {
    let _ = fs::remove_file(path);
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", contract::DATA_LABEL])
        .args(["-E", "lazy_itable_init=0,lazy_journal_init=0", "-d"])
        .arg(tree)
        .arg(path)
        .arg(format!("{size_mib}M"))
        .run()
        .with_context(|| format!("making the data disk {}", path.display()))
}

/// (block count, free blocks, block size) of the ext4 in `path` (`dumpe2fs -h`).
fn usage(path: &Path) -> Result<(u64, u64, u64)> {
    let out = Cmd::new("dumpe2fs").arg("-h").arg(path).read()?;
    let field = |name: &str| -> Result<u64> {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("`dumpe2fs -h {}` has no {name:?}", path.display()))
    };
    let count = field("Block count:")?;
    let free = field("Free blocks:")?;
    let block = field("Block size:")?;
    if count == 0 || free > count {
        bail!("`dumpe2fs -h {}`: odd block counts", path.display());
    }
    Ok((count, free, block))
}

/// The image every extra block device of the growth runs shows (empty,
/// attached read-only as many times as needed).
pub fn extra_disk(dir: &Path) -> Result<PathBuf> {
    let path = dir.join("extra-disk.img");
    let f = fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(EXTRA_DISK_BYTES)?;
    Ok(path)
}

/// Size of each extra block device.
pub const EXTRA_DISK_BYTES: u64 = 8 << 20;
