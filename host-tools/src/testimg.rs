//! Test media for the QEMU boot tests and benchmarks, built with the real
//! tools (`mksquashfs`, `xorriso`, `mkfs.ext4`, `sgdisk`) through [`Cmd`]:
//!
//! - a tiny root filesystem: a static busybox and a `/sbin/init` script that
//!   reports what it finds on the serial console (the `STAGE2_*`/`TEST_*`
//!   markers below) and powers off ([`test_rootfs`], [`media`]);
//! - the boot media: an ISO 9660 with volume ID `K1OS` holding
//!   `/system.squashfs`, used as a CD or, as is, as a disk ([`iso`]);
//! - data images: a raw ext4 labelled `K1OS-DATA` ([`data_image`]) or a GPT
//!   disk whose partition 2 is that ext4 ([`gpt_data_disk`]);
//! - for the fault tests (`tests/faults.rs`): variants of the media
//!   ([`media_in`]), an ext4 made from a tree ([`ext4_from_dir`]), a FAT image
//!   ([`vfat_image`]), damage ([`flip_bytes`], [`corrupt_ext4_superblock`]),
//!   a hybrid ISO written to a disk with a data partition added behind it
//!   ([`iso_disk_with_data_partition`]) and [`sha256_file`];
//! - host-side readers of a data image's overlay upper ([`read_upper_file`],
//!   [`read_upper_file_in_partition`]);
//! - the reference stage 1, `ci/bench/reference-init.sh` packed with busybox
//!   into an initramfs ([`reference_initramfs`]): a benchmark fixture.
//!
//! Everything lands under `build/test-images/` unless the caller says where.
use anyhow::{Context, Result, bail};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use k1os_contract::contract;

use crate::paths;
use crate::run::{self, Cmd};

/// `SOURCE_DATE_EPOCH` of the test images (2026-01-01): reproducible bytes.
pub const SOURCE_DATE_EPOCH: &str = "1767225600";

/// Printed by the test `/sbin/init` first thing.
pub const STAGE2_UP: &str = "K1OS-TEST: stage 2 up";
/// Each line of `/run/k1os/boot` is printed after this prefix
/// (`K1OS-TEST: boot: mode=ram`).
pub const STAGE2_BOOT_LINE: &str = "K1OS-TEST: boot: ";
/// Printed instead when `/run/k1os/boot` is missing.
pub const STAGE2_NO_BOOT_FILE: &str = "K1OS-TEST: no boot file";
/// The root mount as stage 2 sees it (`K1OS-TEST: root: overlay / overlay …`).
pub const STAGE2_ROOT_LINE: &str = "K1OS-TEST: root: ";
/// Printed right before the test init powers off.
pub const STAGE2_DONE: &str = "K1OS-TEST: done";
/// Followed by the length of `/proc/cmdline` in bytes, as stage 2 reads it
/// (`K1OS-TEST: cmdline bytes: 2048`, the newline included).
pub const STAGE2_CMDLINE_BYTES: &str = "K1OS-TEST: cmdline bytes: ";

/// Kernel command-line word that makes the test init write [`PERSISTED_FILE`].
pub const TEST_WRITE: &str = "k1os.test=write";
/// The file the test init writes at the root of the overlay.
pub const PERSISTED_FILE: &str = "persisted.txt";
/// Its content (one line, newline-terminated on disk).
pub const PERSISTED_CONTENT: &str = "K1OS persistence check 7f3a";
/// Printed after writing and syncing [`PERSISTED_FILE`].
pub const TEST_WROTE: &str = "K1OS-TEST: wrote /persisted.txt";
/// Printed (followed by the file's content) when [`PERSISTED_FILE`] exists.
pub const TEST_FOUND: &str = "K1OS-TEST: persisted file found: ";
/// Printed when [`PERSISTED_FILE`] does not exist.
pub const TEST_MISSING: &str = "K1OS-TEST: persisted file missing";

/// busybox applets the test root filesystem links in `/bin`.
const ROOTFS_APPLETS: &[&str] = &[
    "sh", "ash", "mount", "umount", "cat", "echo", "poweroff", "reboot", "halt", "sync", "ls",
    "mkdir", "rm", "grep", "sleep", "dmesg", "test", "[", "uname", "df", "ps", "sed", "tr", "head",
    "tail", "wc", "touch",
];

/// busybox applets the reference initramfs links in `/bin`.
const INITRAMFS_APPLETS: &[&str] = &[
    "sh",
    "mount",
    "umount",
    "mkdir",
    "cat",
    "echo",
    "sleep",
    "blkid",
    "switch_root",
    "poweroff",
    "reboot",
    "halt",
    "sync",
    "ls",
    "setsid",
    "cttyhack",
    "env",
    "test",
    "[",
    "losetup",
];

/// `build/test-images/`.
pub fn images_dir() -> PathBuf {
    paths::build_dir().join("test-images")
}

/// The static busybox of the host (Debian package `busybox-static`).
pub fn busybox() -> Result<PathBuf> {
    run::check_program("busybox")?;
    let path = run::which("busybox").context("busybox not found on PATH")?;
    let path = fs::canonicalize(&path).with_context(|| format!("resolving {}", path.display()))?;
    let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    use object::Object;
    let elf = object::File::parse(&*data)
        .with_context(|| format!("parsing {} as ELF", path.display()))?;
    if elf.section_by_name(".interp").is_some() || elf.section_by_name(".dynamic").is_some() {
        bail!(
            "{} is dynamically linked; the test images need a static busybox \
             (Debian package `busybox-static`)",
            path.display()
        );
    }
    Ok(path)
}

/// The test `/sbin/init` (a busybox shell script; see the `STAGE2_*` and
/// `TEST_*` markers).
pub fn test_init_script() -> String {
    let boot = contract::RUN_BOOT_FILE;
    format!(
        r#"#!/bin/sh
# K1OS boot-test stage 2: reports what stage 1 set up, then powers off.
export PATH=/bin:/sbin
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1
echo "{STAGE2_UP}"
if [ -f {boot} ]; then
    while read -r line; do echo "{STAGE2_BOOT_LINE}$line"; done < {boot}
else
    echo "{STAGE2_NO_BOOT_FILE}"
fi
while read -r dev dir type rest; do
    [ "$dir" = / ] && echo "{STAGE2_ROOT_LINE}$dev $dir $type $rest"
done < /proc/mounts
echo "{STAGE2_CMDLINE_BYTES}$(wc -c < /proc/cmdline)"
case " $(cat /proc/cmdline) " in
*" {TEST_WRITE} "*)
    echo "{PERSISTED_CONTENT}" > /{PERSISTED_FILE}
    sync
    echo "{TEST_WROTE}"
    ;;
*)
    if [ -f /{PERSISTED_FILE} ]; then
        echo "{TEST_FOUND}$(cat /{PERSISTED_FILE})"
    else
        echo "{TEST_MISSING}"
    fi
    ;;
esac
sync
echo "{STAGE2_DONE}"
poweroff -f
"#
    )
}

/// Writes the test root filesystem tree into `dir` (emptied first): busybox
/// and its applet links in `/bin`, the test `/sbin/init`, and the mount
/// points stage 1 moves mounts into.
pub fn test_rootfs(dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    for sub in [
        "bin", "sbin", "etc", "proc", "sys", "dev", "run", "tmp", "root", "usr/bin", "var",
    ] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    let bb = dir.join("bin/busybox");
    fs::copy(busybox()?, &bb).with_context(|| format!("copying busybox to {}", bb.display()))?;
    fs::set_permissions(&bb, fs::Permissions::from_mode(0o755))?;
    for applet in ROOTFS_APPLETS {
        let link = dir.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link)
            .with_context(|| format!("linking {}", link.display()))?;
    }
    let init = dir.join("sbin/init");
    fs::write(&init, test_init_script()).with_context(|| format!("writing {}", init.display()))?;
    fs::set_permissions(&init, fs::Permissions::from_mode(0o755))?;
    fs::write(dir.join("etc/hostname"), "k1os-test\n")?;
    Ok(())
}

/// `mksquashfs tree out` (zstd, owned by root, reproducible), with its
/// dm-verity hash tree appended, as `host-tools rootfs` makes images: a
/// test initramfs can trust it ([`crate::initramfs::verity_archive`]).
pub fn squashfs(tree: &Path, out: &Path) -> Result<crate::verity::Verity> {
    // A longer old image would leave bytes after the new one's data.
    let _ = fs::remove_file(out);
    Cmd::new("mksquashfs")
        .arg(tree)
        .arg(out)
        .args([
            "-noappend",
            "-all-root",
            "-comp",
            "zstd",
            "-no-progress",
            "-quiet",
        ])
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .run()
        .with_context(|| format!("making the squashfs {}", out.display()))?;
    crate::verity::append(out)
}

/// An ISO 9660 with volume ID `K1OS` (Rock Ridge names) holding `squashfs`
/// as the contract's image path (`/system.squashfs`). It boots nothing by
/// itself (the tests boot the kernel directly); attached as a disk it shows
/// the same ISO 9660 filesystem on the whole disk, like a hybrid ISO written
/// to a USB stick.
pub fn iso(squashfs: &Path, out: &Path) -> Result<()> {
    let label = contract::MEDIA_LABEL;
    let image = contract::DEFAULT_IMAGE;
    let sq = squashfs.to_str().context("squashfs path is not UTF-8")?;
    let _ = fs::remove_file(out);
    Cmd::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-r", "-V", label, "-o"])
        .arg(out)
        .args(["-graft-points", &format!("{image}={sq}")])
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH)
        .run()
        .with_context(|| format!("making the ISO {}", out.display()))
}

/// The test boot media, built once per process under `build/test-images/`.
#[derive(Clone, Debug)]
pub struct Media {
    /// The staging tree of the test root filesystem.
    pub rootfs: PathBuf,
    pub squashfs: PathBuf,
    /// The squashfs' dm-verity parameters (its tree is appended).
    pub verity: crate::verity::Verity,
    /// ISO 9660, volume ID `K1OS`, with `/system.squashfs`.
    pub iso: PathBuf,
}

/// Builds the test root filesystem, its squashfs and the ISO (the tests
/// make them once per process: `tests/common`).
pub fn media() -> Result<Media> {
    media_in(&images_dir(), |_| Ok(()))
}

/// [`media`] in `dir`, with `edit` run on the root filesystem's tree before
/// it is packed: a test's own variant (a stage 2 missing, not executable…).
pub fn media_in(dir: &Path, edit: impl FnOnce(&Path) -> Result<()>) -> Result<Media> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (rootfs, image) = (dir.join("rootfs"), dir.join("system.squashfs"));
    test_rootfs(&rootfs)?;
    edit(&rootfs).with_context(|| format!("changing the test tree {}", rootfs.display()))?;
    let verity = squashfs(&rootfs, &image)?;
    let m = Media {
        rootfs,
        squashfs: image,
        verity,
        iso: dir.join("k1os-test.iso"),
    };
    iso(&m.squashfs, &m.iso)?;
    Ok(m)
}

/// A raw file `size_mib` MiB holding an ext4 labelled `K1OS-DATA` (replaced
/// if it exists). No loop devices.
pub fn data_image(path: &Path, size_mib: u64) -> Result<()> {
    let _ = fs::remove_file(path);
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", contract::DATA_LABEL])
        .arg(path)
        .arg(format!("{size_mib}M"))
        .run()
        .with_context(|| format!("making the data image {}", path.display()))
}

/// An ext4 image file of `size_mib` MiB labelled `label`, holding the tree
/// `dir` (`mkfs.ext4 -d`: holes in sparse files stay holes, so a 1 GiB
/// sparse file fits a small image).
pub fn ext4_from_dir(path: &Path, size_mib: u64, label: &str, dir: &Path) -> Result<()> {
    let _ = fs::remove_file(path);
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", label, "-d"])
        .arg(dir)
        .arg(path)
        .arg(format!("{size_mib}M"))
        .run()
        .with_context(|| {
            format!(
                "making the ext4 image {} from {}",
                path.display(),
                dir.display()
            )
        })
}

/// A FAT image file of `size_mib` MiB labelled `label` (`mkfs.vfat`).
pub fn vfat_image(path: &Path, size_mib: u64, label: &str) -> Result<()> {
    let _ = fs::remove_file(path);
    Cmd::new("mkfs.vfat")
        .args(["-C", "-n", label])
        .arg(path)
        .arg((size_mib * 1024).to_string())
        .run()
        .with_context(|| format!("making the FAT image {}", path.display()))
}

/// Inverts `len` bytes of `path` at `offset` (each `b` becomes `!b`).
pub fn flip_bytes(path: &Path, offset: u64, len: usize) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut bytes = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut bytes)
        .with_context(|| format!("reading {len} bytes at {offset} of {}", path.display()))?;
    for b in &mut bytes {
        *b = !*b;
    }
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(&bytes)
        .with_context(|| format!("writing {len} bytes at {offset} of {}", path.display()))
}

/// The byte offset of the ext2/3/4 superblock in an image.
pub const EXT4_SUPERBLOCK: u64 = 1024;

/// Corrupts the superblock of the ext4 `image` the way a bad sector would,
/// keeping what identifies it (magic, label, UUID): `s_inodes_count` (its
/// first field) is inverted. The kernel refuses to mount it (a wrong
/// superblock checksum with `metadata_csum`, a wrong inode count without).
pub fn corrupt_ext4_superblock(image: &Path) -> Result<()> {
    flip_bytes(image, EXT4_SUPERBLOCK, 4)
}

/// The hex SHA-256 of a file's bytes: "is this disk unchanged?".
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Where a partition is inside a disk image, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionExtent {
    pub offset: u64,
    pub len: u64,
}

/// A GPT disk image `size_mib` MiB: partition 1 (8 MiB, empty, named
/// `spare`) and partition 2 (the rest, named `K1OS-DATA`) holding an ext4
/// labelled `K1OS-DATA`, made in place with `mkfs.ext4 -E offset=`.
/// Returns partition 2's extent.
pub fn gpt_data_disk(path: &Path, size_mib: u64) -> Result<PartitionExtent> {
    let _ = fs::remove_file(path);
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    file.set_len(size_mib * 1024 * 1024)?;
    drop(file);
    let label = contract::DATA_LABEL;
    Cmd::new("sgdisk")
        .args(["-n", "1:2048:+8M", "-t", "1:8300", "-c", "1:spare"])
        .args(["-n", "2:0:0", "-t", "2:8300", "-c", &format!("2:{label}")])
        .arg(path)
        .run()
        .with_context(|| format!("partitioning {}", path.display()))?;
    let part = partition_extent(path, 2)?;
    ext4_in_partition(path, 2, &part, label)?;
    Ok(part)
}

/// An ext4 labelled `label` filling partition `number` (at `part`) of the
/// disk image `disk`, written in place (`mkfs.ext4 -E offset=`: no loop device).
fn ext4_in_partition(disk: &Path, number: u32, part: &PartitionExtent, label: &str) -> Result<()> {
    Cmd::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-L",
            label,
            "-E",
            &format!("offset={}", part.offset),
        ])
        .arg(disk)
        .arg(format!("{}k", part.len / 1024))
        .run()
        .with_context(|| {
            format!(
                "making the ext4 in partition {number} of {}",
                disk.display()
            )
        })
}

/// A disk the hybrid ISO `iso` (`host-tools iso`: GPT, the ISO 9660
/// filesystem on the whole disk and on partition 1, the ESP after it) was
/// written to, `extra_mib` MiB larger than the ISO, with a new GPT partition
/// in that space holding an ext4 labelled `K1OS-DATA`: what a person gets
/// who writes the ISO to a stick and adds a data partition behind it. The
/// backup GPT moves to the new end of the disk (`sgdisk -e`), as partition
/// tools do. Returns the new partition's number and extent.
pub fn iso_disk_with_data_partition(
    iso: &Path,
    out: &Path,
    extra_mib: u64,
) -> Result<(u32, PartitionExtent)> {
    fs::copy(iso, out)
        .with_context(|| format!("copying {} to {}", iso.display(), out.display()))?;
    let file = fs::OpenOptions::new()
        .write(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    file.set_len(file.metadata()?.len() + extra_mib * 1024 * 1024)?;
    drop(file);
    let label = contract::DATA_LABEL;
    // `-e` first: the new space is usable only once the backup GPT is at
    // the end; `-n 0:0:0`: the first free number, from the first free
    // sector to the end.
    Cmd::new("sgdisk")
        .arg("-e")
        .arg(out)
        .run()
        .with_context(|| format!("moving the backup GPT of {} to its end", out.display()))?;
    Cmd::new("sgdisk")
        .args(["-n", "0:0:0", "-t", "0:8300", "-c", &format!("0:{label}")])
        .arg(out)
        .run()
        .with_context(|| format!("adding a data partition to {}", out.display()))?;
    let number = last_partition(out)?;
    let part = partition_extent(out, number)?;
    ext4_in_partition(out, number, &part, label)?;
    Ok((number, part))
}

/// The highest partition number of a GPT disk image (`sgdisk -p`).
fn last_partition(disk: &Path) -> Result<u32> {
    let table = Cmd::new("sgdisk").arg("-p").arg(disk).read()?;
    // The table's rows follow the `Number  Start (sector) …` header.
    table
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Number"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .max()
        .with_context(|| {
            format!(
                "`sgdisk -p {}` lists no partition:\n{table}",
                disk.display()
            )
        })
}

/// Partition `number`'s extent in a GPT disk image (`sgdisk -i`).
pub fn partition_extent(disk: &Path, number: u32) -> Result<PartitionExtent> {
    let info = Cmd::new("sgdisk")
        .arg("-i")
        .arg(number.to_string())
        .arg(disk)
        .read()?;
    let field = |name: &str| -> Result<u64> {
        let line = info
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| {
                format!(
                    "`sgdisk -i {number} {}` printed no {name:?}:\n{info}",
                    disk.display()
                )
            })?;
        let value = line[name.len()..].split_whitespace().next().unwrap_or("");
        value
            .parse()
            .with_context(|| format!("bad {name:?} in `{line}`"))
    };
    let first = field("First sector:")?;
    let last = field("Last sector:")?;
    if last < first {
        bail!(
            "partition {number} of {} is empty or missing:\n{info}",
            disk.display()
        );
    }
    Ok(PartitionExtent {
        offset: first * 512,
        len: (last - first + 1) * 512,
    })
}

/// Reads `/upper/<rel>` from an ext4 data image the guest may have left
/// uncleanly (`poweroff -f`): a copy of the image is `e2fsck -fy`'d (which
/// replays the journal) and read with `debugfs`. `None` if the file does not
/// exist. The image itself is not modified.
pub fn read_upper_file(image: &Path, rel: &str) -> Result<Option<Vec<u8>>> {
    let copy = sibling(image, "check");
    fs::copy(image, &copy)
        .with_context(|| format!("copying {} to {}", image.display(), copy.display()))?;
    let result = read_upper_file_of_copy(&copy, rel);
    let _ = fs::remove_file(&copy);
    result
}

/// Like [`read_upper_file`], for the ext4 in partition `number` of a GPT disk.
pub fn read_upper_file_in_partition(
    disk: &Path,
    number: u32,
    rel: &str,
) -> Result<Option<Vec<u8>>> {
    let part = partition_extent(disk, number)?;
    let copy = sibling(disk, &format!("p{number}.check"));
    copy_range(disk, part, &copy)?;
    let result = read_upper_file_of_copy(&copy, rel);
    let _ = fs::remove_file(&copy);
    result
}

fn read_upper_file_of_copy(copy: &Path, rel: &str) -> Result<Option<Vec<u8>>> {
    fsck(copy)?;
    let inside = format!(
        "/{}/{}",
        contract::DATA_UPPER_DIR,
        rel.trim_start_matches('/')
    );
    let out = sibling(copy, "out");
    let _ = fs::remove_file(&out);
    let out_str = out.to_str().context("path is not UTF-8")?;
    // debugfs reports a missing file on stderr and still exits 0; `dump`
    // then creates no output file, which is the reliable signal.
    Cmd::new("debugfs")
        .arg("-R")
        .arg(format!("dump {inside} {out_str}"))
        .arg(copy)
        .run()
        .with_context(|| format!("reading {inside} from {}", copy.display()))?;
    if !out.exists() {
        return Ok(None);
    }
    let data = fs::read(&out).with_context(|| format!("reading {}", out.display()))?;
    let _ = fs::remove_file(&out);
    Ok(Some(data))
}

/// `e2fsck -fy`: replays the journal and checks; exit status 0 (clean) and 1
/// (errors corrected, e.g. the orphan list of an unclean power-off) are fine.
pub fn fsck(image: &Path) -> Result<()> {
    Cmd::new("e2fsck")
        .arg("-fy")
        .arg(image)
        .accept_codes(&[0, 1])
        .run()
        .context("the data filesystem is damaged")
}

fn copy_range(disk: &Path, part: PartitionExtent, to: &Path) -> Result<()> {
    let mut src = fs::File::open(disk).with_context(|| format!("opening {}", disk.display()))?;
    src.seek(SeekFrom::Start(part.offset))?;
    let mut dst = fs::File::create(to).with_context(|| format!("creating {}", to.display()))?;
    let copied =
        std::io::copy(&mut Read::by_ref(&mut src).take(part.len), &mut dst).with_context(|| {
            format!(
                "copying partition bytes of {} to {}",
                disk.display(),
                to.display()
            )
        })?;
    if copied != part.len {
        bail!(
            "{} ends inside its partition ({copied} of {} bytes)",
            disk.display(),
            part.len
        );
    }
    dst.flush()?;
    Ok(())
}

/// `dir/name.ext` → `dir/name.ext.<suffix>`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// `ci/bench/reference-init.sh`: the classic busybox-script stage 1, a
/// benchmark fixture.
pub fn reference_init_script() -> PathBuf {
    paths::repo_root().join("ci/bench/reference-init.sh")
}

/// Packs the reference stage 1 into an uncompressed newc initramfs at `out`:
/// `/init` (the script), `/bin/busybox` + applet links, `/dev/console`
/// (char 5:1, so the kernel gives `/init` a console), and the mount points.
pub fn reference_initramfs(out: &Path) -> Result<()> {
    let script_path = reference_init_script();
    let script =
        fs::read(&script_path).with_context(|| format!("reading {}", script_path.display()))?;
    let bb_path = busybox()?;
    let bb = fs::read(&bb_path).with_context(|| format!("reading {}", bb_path.display()))?;
    let mtime: u32 = SOURCE_DATE_EPOCH.parse().expect("a number");
    let mut w: Vec<u8> = Vec::new();
    let mut ino = 1;
    let mut entry = |w: &mut Vec<u8>,
                     name: &str,
                     mode: u32,
                     data: &[u8],
                     rdev: Option<(u32, u32)>|
     -> Result<()> {
        let mut b = cpio::newc::Builder::new(name)
            .ino(ino)
            .mode(mode)
            .uid(0)
            .gid(0)
            .mtime(mtime)
            .nlink(1);
        if mode & 0o170000 == 0o040000 {
            b = b.nlink(2);
        }
        if let Some((major, minor)) = rdev {
            b = b.rdev_major(major).rdev_minor(minor);
        }
        ino += 1;
        let size = u32::try_from(data.len()).context("file too big for cpio")?;
        let mut writer = b.write(&mut *w, size);
        writer.write_all(data)?;
        writer.finish()?;
        Ok(())
    };
    const DIR: u32 = 0o040755;
    for d in ["bin", "dev", "proc", "sys", "run", "newroot", "tmp"] {
        entry(&mut w, d, DIR, b"", None)?;
    }
    entry(&mut w, "dev/console", 0o020600, b"", Some((5, 1)))?;
    entry(&mut w, "bin/busybox", 0o100755, &bb, None)?;
    for applet in INITRAMFS_APPLETS {
        entry(&mut w, &format!("bin/{applet}"), 0o120777, b"busybox", None)?;
    }
    entry(&mut w, "init", 0o100755, &script, None)?;
    cpio::newc::trailer(&mut w)?;
    if let Some(dir) = out.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    fs::write(out, &w).with_context(|| format!("writing {}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_script_uses_the_contract() {
        let s = test_init_script();
        assert!(s.contains("/run/k1os/boot"));
        assert!(s.contains(TEST_WRITE));
        assert!(s.starts_with("#!/bin/sh\n"));
    }

    /// Puts `/upper/<name>` into the ext4 at `offset` of `image` with `debugfs -w`.
    fn put_upper_file(image: &Path, offset: u64, name: &str, content: &str) {
        let src = image.with_file_name("src.txt");
        fs::write(&src, content).unwrap();
        let target = format!("{}?offset={offset}", image.display());
        for req in [
            format!("mkdir /{}", contract::DATA_UPPER_DIR),
            format!("write {} /upper/{name}", src.display()),
        ] {
            Cmd::new("debugfs")
                .args(["-w", "-R", &req, &target])
                .run()
                .unwrap();
        }
    }

    #[test]
    fn upper_file_of_a_data_image() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("data.img");
        data_image(&img, 16).unwrap();
        assert_eq!(read_upper_file(&img, PERSISTED_FILE).unwrap(), None);
        put_upper_file(&img, 0, PERSISTED_FILE, "hello\n");
        assert_eq!(
            read_upper_file(&img, PERSISTED_FILE).unwrap().as_deref(),
            Some(&b"hello\n"[..])
        );
        assert!(
            !sibling(&img, "check").exists(),
            "the checked copy is removed"
        );
    }

    #[test]
    fn upper_file_of_a_gpt_partition() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        let part = gpt_data_disk(&disk, 32).unwrap();
        assert_eq!(part, partition_extent(&disk, 2).unwrap());
        assert_eq!(part.offset % 512, 0);
        assert!(part.offset >= 9 * 1024 * 1024 && part.offset + part.len <= 32 * 1024 * 1024);
        assert_eq!(
            read_upper_file_in_partition(&disk, 2, PERSISTED_FILE).unwrap(),
            None
        );
        put_upper_file(&disk, part.offset, PERSISTED_FILE, "gpt\n");
        let got = read_upper_file_in_partition(&disk, 2, PERSISTED_FILE).unwrap();
        assert_eq!(got.as_deref(), Some(&b"gpt\n"[..]));
    }

    #[test]
    fn flipped_bytes_change_the_hash_and_flip_back() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, [0u8, 1, 2, 3, 0xff]).unwrap();
        let before = sha256_file(&f).unwrap();
        assert_eq!(before.len(), 64);
        flip_bytes(&f, 1, 3).unwrap();
        assert_eq!(fs::read(&f).unwrap(), [0, 0xfe, 0xfd, 0xfc, 0xff]);
        assert_ne!(sha256_file(&f).unwrap(), before);
        flip_bytes(&f, 1, 3).unwrap();
        assert_eq!(sha256_file(&f).unwrap(), before);
        let err = flip_bytes(&f, 4, 2).unwrap_err();
        assert!(
            format!("{err:#}").contains("reading 2 bytes at 4"),
            "{err:#}"
        );
    }

    #[test]
    fn ext4_from_a_tree_keeps_holes() {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        fs::create_dir_all(tree.join("upper")).unwrap();
        fs::write(tree.join("upper/a.txt"), "a\n").unwrap();
        fs::File::create(tree.join("big"))
            .unwrap()
            .set_len(1 << 30)
            .unwrap();
        let img = dir.path().join("fs.img");
        ext4_from_dir(&img, 16, "K1OS", &tree).unwrap();
        assert_eq!(fs::metadata(&img).unwrap().len(), 16 << 20);
        assert_eq!(
            read_upper_file(&img, "a.txt").unwrap().as_deref(),
            Some(&b"a\n"[..])
        );
        let stat = Cmd::new("debugfs")
            .args(["-R", "stat /big"])
            .arg(&img)
            .read()
            .unwrap();
        assert!(stat.contains("Size: 1073741824"), "{stat}");
    }

    #[test]
    fn vfat_image_has_its_label() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("fat.img");
        vfat_image(&img, 16, contract::DATA_LABEL).unwrap();
        let boot_sector = &fs::read(&img).unwrap()[..512];
        assert!(
            boot_sector
                .windows(contract::DATA_LABEL.len())
                .any(|w| w == contract::DATA_LABEL.as_bytes())
        );
    }

    #[test]
    fn a_data_partition_added_behind_a_gpt_disk() {
        let dir = tempfile::tempdir().unwrap();
        // Any GPT disk will do as the "ISO": the one with two partitions.
        let disk = dir.path().join("disk.img");
        let p2 = gpt_data_disk(&disk, 24).unwrap();
        let out = dir.path().join("grown.img");
        let (number, part) = iso_disk_with_data_partition(&disk, &out, 16).unwrap();
        assert_eq!(number, 3);
        assert_eq!(part, partition_extent(&out, 3).unwrap());
        assert!(part.offset >= p2.offset + p2.len, "{part:?} after {p2:?}");
        let size = fs::metadata(&out).unwrap().len();
        assert_eq!(size, (24 + 16) << 20);
        assert!(
            part.offset + part.len <= size && part.len >= 15 << 20,
            "{part:?}"
        );
        // The original's partitions are untouched (`sgdisk` rewrote only the
        // GPT headers and the protective MBR).
        let (a, b) = (fs::read(&disk).unwrap(), fs::read(&out).unwrap());
        let p2_bytes = p2.offset as usize..(p2.offset + p2.len) as usize;
        assert!(a[p2_bytes.clone()] == b[p2_bytes]);
        // A clean ext4 (e2fsck passes), empty.
        assert_eq!(read_upper_file_in_partition(&out, 3, "x").unwrap(), None);
    }

    #[test]
    fn sibling_appends() {
        assert_eq!(
            sibling(Path::new("/a/b.img"), "check"),
            PathBuf::from("/a/b.img.check")
        );
    }
}
