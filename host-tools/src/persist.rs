//! `./k1os make-persist`: the persistent data filesystem stage 1 looks
//! for — ext4 labelled `K1OS-DATA` (`docs/boot-contract.md`, "The data
//! partition") — as an image file for QEMU (`build/persist.img`, raw or
//! qcow2) or on a real device (a USB stick, a disk or a partition).
//!
//! Files: refused when the file exists, unless `--force`; made under a
//! temporary name and renamed, so a failure never leaves half an image.
//!
//! Block devices: refused when the device, one of its partitions or a holder
//! (device mapper, RAID) is in use — mounted (`/proc/self/mountinfo`, by
//! device number, so symlinks and other names don't fool it) or a swap
//! area — or cannot be opened exclusively for writing (busy, or not root);
//! otherwise what is on it is shown (`lsblk`, and the filesystem and label
//! as stage 1's probe sees them) and the user must type `yes` on a terminal
//! (`--yes` skips the question; without a terminal `--yes` is required).
//! Then `wipefs -a` (so no old partition table or filesystem signature
//! survives to confuse a probe) and `mkfs.ext4` over the whole device.
//!
//! A path under `/dev` that is not a block device is refused rather than
//! made into an image file (a typo in `/dev/sdX` or `/dev/disk/by-id/…` would
//! otherwise fill RAM); `/dev/shm` is ordinary storage and allowed.
//!
//! Stage 1 creates `/upper` and `/work` on first use; the filesystem is made empty.
use anyhow::{Context, Result, anyhow, bail, ensure};
use std::fs;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use k1os_contract::contract;

use crate::run::Cmd;
use crate::{paths, ui};

/// The size of a new image unless `--size` says otherwise.
pub const DEFAULT_SIZE: &str = "2G";
/// Smaller than this, ext4 with a journal is not worth it.
pub const MIN_SIZE: u64 = 16 * 1024 * 1024;

/// The image format of a data image file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImageFormat {
    /// A plain (sparse) disk image: QEMU, `dd` to a device, loop mounts
    Raw,
    /// QEMU's copy-on-write format (made with `qemu-img convert`)
    Qcow2,
}

impl ImageFormat {
    /// As the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
        }
    }

    /// What a file name says: `.qcow2` is qcow2, `.img`/`.raw` raw, anything
    /// else nothing.
    pub fn from_extension(path: &Path) -> Option<ImageFormat> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "qcow2" => Some(ImageFormat::Qcow2),
            "img" | "raw" => Some(ImageFormat::Raw),
            _ => None,
        }
    }
}

/// `build/persist.img` (raw) or `build/persist.qcow2`.
pub fn default_path(format: ImageFormat) -> PathBuf {
    paths::build_dir().join(match format {
        ImageFormat::Raw => "persist.img",
        ImageFormat::Qcow2 => "persist.qcow2",
    })
}

/// What to make.
#[derive(Clone, Debug)]
pub struct Options {
    /// An image file, or a block device (`/dev/sdX`, `/dev/sdX2`).
    pub target: PathBuf,
    /// `2G`, `512M`; `None` = [`DEFAULT_SIZE`] for a file, the whole device for a device.
    pub size: Option<String>,
    pub format: ImageFormat,
    /// Replace an existing image file.
    pub force: bool,
    /// Don't ask before erasing a block device.
    pub yes: bool,
}

/// Makes the data filesystem on `opts.target`.
pub fn make(opts: &Options) -> Result<()> {
    match fs::metadata(&opts.target) {
        Ok(meta) if meta.file_type().is_block_device() => make_on_device(opts, meta.rdev()),
        Ok(meta) if !meta.is_file() => bail!(
            "{} exists and is neither a regular file nor a block device",
            opts.target.display()
        ),
        Ok(_) if !opts.force => bail!(
            "{} already exists: pass --force to replace it (everything stored in it is lost)",
            opts.target.display()
        ),
        _ if is_device_path(&opts.target) => bail!(
            "{} is not a block device (or does not exist): list the devices with `lsblk`",
            opts.target.display()
        ),
        _ => make_image(opts),
    }
}

/// Whether `path` is where device nodes live: `/dev` and its subdirectories
/// (`/dev/disk/by-id/…`, `/dev/mapper/…`), except `/dev/shm`, which is
/// ordinary (tmpfs) storage.
fn is_device_path(path: &Path) -> bool {
    path.starts_with("/dev") && !path.starts_with("/dev/shm")
}

/// `2G`, `512M`, `64MiB`, `1048576` (bytes): binary units (2G = 2 GiB), whole
/// numbers. Every error is one line saying what is expected.
pub fn parse_size(text: &str) -> Result<u64> {
    const EXPECTED: &str = "expected a whole number with K, M, G or T (binary: 2G = 2 GiB), \
                            like 512M or 2G";
    let t = text.trim();
    let digits = t.chars().take_while(|c| c.is_ascii_digit()).count();
    let (number, unit) = t.split_at(digits);
    if number.is_empty() {
        bail!("size `{text}`: {EXPECTED}");
    }
    if unit.starts_with(['.', ',']) {
        bail!("size `{text}`: whole numbers only; use a smaller unit (1536M, not 1.5G)");
    }
    let n: u64 = number
        .parse()
        .map_err(|_| anyhow!("size `{text}` is too large"))?;
    let shift = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => bail!("size `{text}`: unknown unit `{unit}`; {EXPECTED}"),
    };
    n.checked_mul(1 << shift)
        .with_context(|| format!("size `{text}` is too large"))
}

fn make_image(opts: &Options) -> Result<()> {
    let size = parse_size(opts.size.as_deref().unwrap_or(DEFAULT_SIZE))?;
    ensure!(
        size >= MIN_SIZE,
        "a data image needs at least {}",
        ui::human_size(MIN_SIZE)
    );
    let target = &opts.target;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let step = ui::Step::start(format!(
        "ext4 labelled {} in {} ({}, {})",
        contract::DATA_LABEL,
        target.display(),
        ui::human_size(size),
        opts.format.name()
    ));
    let raw = hidden_sibling(target, "raw.partial");
    let result = (|| -> Result<()> {
        let _ = fs::remove_file(&raw);
        // The file is made under a hidden name: a failure names the directory.
        let file = fs::File::create(&raw).with_context(|| {
            let dir = target.parent().filter(|d| !d.as_os_str().is_empty());
            format!(
                "cannot create the image in {}",
                dir.unwrap_or(Path::new(".")).display()
            )
        })?;
        file.set_len(size)
            .with_context(|| format!("sizing {}", raw.display()))?;
        drop(file);
        mkfs(&raw)?;
        let partial = hidden_sibling(target, "partial");
        match opts.format {
            ImageFormat::Raw => fs::rename(&raw, &partial)?,
            ImageFormat::Qcow2 => {
                Cmd::new("qemu-img")
                    .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
                    .arg(&raw)
                    .arg(&partial)
                    .run()?;
                fs::remove_file(&raw)?;
            }
        }
        fs::rename(&partial, target)
            .with_context(|| format!("renaming {} to {}", partial.display(), target.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&raw);
        let _ = fs::remove_file(hidden_sibling(target, "partial"));
    }
    result?;
    let used = fs::metadata(target).map(|m| m.blocks() * 512).unwrap_or(0);
    step.done(&format!("done ({} on the host disk)", ui::human_size(used)));
    Ok(())
}

fn mkfs(target: &Path) -> Result<()> {
    // -m 0: no blocks reserved for root, it is all user data; -F: a file, or
    // a device the user confirmed.
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0", "-L", contract::DATA_LABEL])
        .arg(target)
        .run()
        .with_context(|| format!("making the ext4 filesystem on {}", target.display()))
}

fn make_on_device(opts: &Options, rdev: u64) -> Result<()> {
    let dev = &opts.target;
    ensure!(
        opts.size.is_none(),
        "--size does not apply to a block device: the filesystem fills {}",
        dev.display()
    );
    ensure!(
        opts.format == ImageFormat::Raw,
        "--format qcow2 is for image files, not for the block device {}",
        dev.display()
    );
    // Nobody can answer the question: say so now, not after the listing.
    ensure!(
        opts.yes || std::io::stdin().is_terminal(),
        "stdin is not a terminal, so nobody can confirm erasing {}: pass --yes to erase it \
         without asking",
        dev.display()
    );
    let device =
        Device::from_rdev(rdev).with_context(|| format!("identifying {}", dev.display()))?;
    let usage = device.usage()?;
    if !usage.is_empty() {
        bail!(
            "{} ({}) is in use, refusing to touch it:\n  - {}\nunmount it (and its partitions) first",
            dev.display(),
            device.name,
            usage.join("\n  - ")
        );
    }
    let contents = open_exclusive(dev)?;
    ui::step(&format!("{} ({}) holds:", dev.display(), device.name));
    match Cmd::new("lsblk")
        .args(["-o", "NAME,SIZE,TYPE,FSTYPE,LABEL,MODEL"])
        .arg(dev)
        .read()
    {
        Ok(listing) => eprint!("{listing}"),
        Err(_) => eprintln!("    {} bytes", device.size_bytes()),
    }
    eprintln!("{} itself: {contents}", dev.display());
    if !opts.yes
        && !confirm(&format!(
            "Erase everything on {} and make an ext4 labelled {}?",
            dev.display(),
            contract::DATA_LABEL
        ))?
    {
        bail!("nothing done: {} was left as it was", dev.display());
    }
    let step = ui::Step::start(format!(
        "ext4 labelled {} on {}",
        contract::DATA_LABEL,
        dev.display()
    ));
    Cmd::new("wipefs").arg("-a").arg(dev).run()?;
    mkfs(dev)?;
    Cmd::new("sync").run()?;
    step.done("done");
    Ok(())
}

/// Opens `dev` for writing, exclusively, and closes it again: refuses up
/// front, before any question, what `wipefs`/`mkfs` would fail on after it —
/// no permission (not root), or a device the kernel says is busy (mounted,
/// or held by a device mapper, RAID or another program). Returns what is on
/// it, as stage 1's probe sees it.
fn open_exclusive(dev: &Path) -> Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    /// Linux's `O_EXCL`: on a block device, "fail with EBUSY when in use".
    const O_EXCL: i32 = 0o200;
    const EBUSY: i32 = 16;
    let mut file = match fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(O_EXCL)
        .open(dev)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "host-tools".into());
            bail!(
                "cannot open {} for writing ({e}): run it as root, e.g. `sudo {exe} make-persist {}`",
                dev.display(),
                dev.display()
            )
        }
        Err(e) if e.raw_os_error() == Some(EBUSY) => bail!(
            "{} is busy (mounted, or held by another program): unmount it or stop that program first",
            dev.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("opening {}", dev.display())),
    };
    let mut head = vec![0u8; k1os_contract::probe::PROBE_LEN];
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(e).with_context(|| format!("reading {}", dev.display())),
        }
    }
    Ok(describe(&head[..filled]))
}

/// `ext4 labelled K1OS-DATA`, `no filesystem K1OS recognises`: what stage 1's
/// probe makes of the first bytes of a device.
fn describe(head: &[u8]) -> String {
    match k1os_contract::probe::probe(head) {
        Some(found) => {
            let label = String::from_utf8_lossy(found.label()).into_owned();
            let kind = found.kind.as_str();
            if label.is_empty() {
                format!("{kind}, no label")
            } else {
                format!("{kind} labelled {label}")
            }
        }
        None => "no filesystem K1OS recognises (ISO 9660, ext2/3/4, squashfs, FAT)".into(),
    }
}

/// Asks on the terminal; only `yes` agrees.
fn confirm(question: &str) -> Result<bool> {
    eprint!("{question} Type `yes` to continue: ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer)? == 0 {
        // End of input: end the prompt's line before the error.
        eprintln!();
    }
    Ok(answer.trim() == "yes")
}

/// A block device as the kernel knows it.
#[derive(Clone, Debug)]
pub struct Device {
    /// `sdb`, `sdb1`, `nvme0n1p2`.
    pub name: String,
    pub major: u32,
    pub minor: u32,
    /// `/sys/class/block/<name>`.
    pub sys: PathBuf,
}

/// glibc's `major()`/`minor()` of a `dev_t`.
pub fn split_dev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major as u32, minor as u32)
}

impl Device {
    pub fn from_rdev(rdev: u64) -> Result<Device> {
        let (major, minor) = split_dev(rdev);
        let link = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
        let sys =
            fs::canonicalize(&link).with_context(|| format!("resolving {}", link.display()))?;
        let name = sys
            .file_name()
            .context("a sysfs device has a name")?
            .to_string_lossy()
            .into_owned();
        Ok(Device {
            name,
            major,
            minor,
            sys,
        })
    }

    pub fn size_bytes(&self) -> u64 {
        fs::read_to_string(self.sys.join("size"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 512
    }

    /// The device and, for a disk, its partitions: `(name, "MAJ:MIN")`.
    fn with_partitions(&self) -> Vec<(String, String)> {
        let mut all = vec![(self.name.clone(), format!("{}:{}", self.major, self.minor))];
        if let Ok(entries) = fs::read_dir(&self.sys) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.join("partition").is_file()
                    && let Ok(dev) = fs::read_to_string(path.join("dev"))
                {
                    all.push((
                        entry.file_name().to_string_lossy().into_owned(),
                        dev.trim().to_string(),
                    ));
                }
            }
        }
        all
    }

    /// Why the device cannot be erased now: mounts, swap, holders. Empty = free.
    pub fn usage(&self) -> Result<Vec<String>> {
        let mountinfo =
            fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
        let mounts = parse_mountinfo(&mountinfo);
        let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
        let mut usage = Vec::new();
        for (name, dev) in self.with_partitions() {
            for (mdev, mount_point) in &mounts {
                if *mdev == dev {
                    usage.push(format!("{name} is mounted on {mount_point}"));
                }
            }
            for line in swaps.lines().skip(1) {
                let Some(path) = line.split_whitespace().next() else {
                    continue;
                };
                if let Ok(meta) = fs::metadata(path)
                    && meta.file_type().is_block_device()
                    && {
                        let (a, b) = split_dev(meta.rdev());
                        format!("{a}:{b}")
                    } == dev
                {
                    usage.push(format!("{name} is a swap area in use ({path})"));
                }
            }
            let holders = Path::new("/sys/class/block").join(&name).join("holders");
            if let Ok(entries) = fs::read_dir(&holders) {
                for holder in entries.flatten() {
                    usage.push(format!(
                        "{name} is held by {}",
                        holder.file_name().to_string_lossy()
                    ));
                }
            }
        }
        Ok(usage)
    }
}

/// `(MAJ:MIN, mount point)` of every mount in a mountinfo text (octal
/// escapes in the mount point left as they are).
pub fn parse_mountinfo(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let dev = fields.nth(2)?;
            let _root = fields.next()?;
            let mount_point = fields.next()?;
            Some((dev.to_string(), mount_point.to_string()))
        })
        .collect()
}

/// `dir/name.ext` → `dir/.name.ext.<suffix>`: a hidden temporary beside the
/// target, renamed onto it when complete.
fn hidden_sibling(path: &Path, suffix: &str) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("1k").unwrap(), 1024);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "G", "2X", "1.5G", "-1M", "99999999999T", "banana"] {
            let err = parse_size(bad).unwrap_err();
            assert_eq!(err.chain().count(), 1, "one line: {err:#}");
        }
        assert!(
            parse_size("1.5G")
                .unwrap_err()
                .to_string()
                .contains("1536M")
        );
        assert!(
            parse_size("banana")
                .unwrap_err()
                .to_string()
                .contains("2G = 2 GiB")
        );
    }

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                    30 22 8:17 / /media/my\\040stick rw - vfat /dev/sdb1 rw\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![
                ("254:0".into(), "/".into()),
                ("8:17".into(), "/media/my\\040stick".into())
            ]
        );
    }

    #[test]
    fn dev_t_halves() {
        assert_eq!(split_dev(0x0811), (8, 17));
        assert_eq!(split_dev((259 << 8) | 3), (259, 3));
        // Large minors use the high bits (major 8, minor 256).
        assert_eq!(split_dev(0x0010_0800), (8, 256));
    }

    fn label_of(path: &Path) -> Vec<u8> {
        let data = fs::read(path).unwrap();
        let probe =
            k1os_contract::probe::probe(&data[..64 * 1024]).expect("a recognised filesystem");
        probe.label().to_vec()
    }

    #[test]
    fn image_file_is_ext4_labelled_and_never_overwritten_silently() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub/persist.img");
        let opts = Options {
            target: target.clone(),
            size: Some("32M".into()),
            format: ImageFormat::Raw,
            force: false,
            yes: false,
        };
        make(&opts).unwrap();
        assert_eq!(fs::metadata(&target).unwrap().len(), 32 << 20);
        assert_eq!(label_of(&target), contract::DATA_LABEL.as_bytes());
        let before = fs::read(&target).unwrap();
        let err = make(&opts).unwrap_err().to_string();
        assert!(
            err.contains("already exists") && err.contains("--force"),
            "{err}"
        );
        assert_eq!(
            fs::read(&target).unwrap(),
            before,
            "untouched without --force"
        );
        make(&Options {
            force: true,
            size: Some("16M".into()),
            ..opts.clone()
        })
        .unwrap();
        assert_eq!(fs::metadata(&target).unwrap().len(), 16 << 20);
        let leftovers: Vec<_> = fs::read_dir(target.parent().unwrap())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers, vec![std::ffi::OsString::from("persist.img")]);
        let err = make(&Options {
            size: Some("1M".into()),
            target: dir.path().join("tiny.img"),
            ..opts
        })
        .unwrap_err();
        assert!(err.to_string().contains("at least"), "{err}");
    }

    #[test]
    fn a_missing_dev_path_is_not_created_as_a_file() {
        let opts = Options {
            target: "/dev/k1os-no-such-disk".into(),
            size: None,
            format: ImageFormat::Raw,
            force: false,
            yes: true,
        };
        let err = make(&opts).unwrap_err().to_string();
        assert!(err.contains("not a block device"), "{err}");
        assert!(!Path::new("/dev/k1os-no-such-disk").exists());
    }

    #[test]
    fn the_dev_guard_spares_dev_shm() {
        assert!(is_device_path(Path::new("/dev/sdz")));
        assert!(is_device_path(Path::new("/dev/disk/by-id/usb-stick")));
        assert!(!is_device_path(Path::new("/dev/shm/x.img")));
        assert!(!is_device_path(Path::new("/devices/x.img")));
        assert!(!is_device_path(Path::new("build/persist.img")));
    }

    #[test]
    fn formats_from_extensions() {
        let of = |p: &str| ImageFormat::from_extension(Path::new(p));
        assert_eq!(of("a.qcow2"), Some(ImageFormat::Qcow2));
        assert_eq!(of("a.IMG"), Some(ImageFormat::Raw));
        assert_eq!(of("a.raw"), Some(ImageFormat::Raw));
        assert_eq!(of("a.disk"), None);
        assert_eq!(of("a"), None);
    }
}
