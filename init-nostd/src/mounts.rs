//! Mounting: the virtual filesystems, the media, the image, the upper layer,
//! the overlay. Every failure names the step, the mount point and the errno.

use core::ffi::CStr;
use k1os_contract::contract::cstr;
use k1os_contract::probe::{FsKind, Probe};
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountFlags;

use crate::error::{Context, Error, Result};

/// `mount(2)` (one copy for the whole binary).
#[inline(never)]
pub fn mount(
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: MountFlags,
    data: Option<&CStr>,
) -> rustix::io::Result<()> {
    rustix::mount::mount(source, target, fstype, flags, data)
}

/// Creates `path` (mode 0755) unless it exists.
#[inline(never)]
pub fn make_dir(step: &'static str, path: &CStr) -> Result<()> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(Error::sys(step, path.to_bytes(), e)),
    }
}

/// `/proc`, `/sys`, `/dev` (devtmpfs: the kernel makes the device nodes) and
/// `/run` (tmpfs: it becomes stage 2's `/run`, holding `/run/k1os`).
pub fn mount_early() -> Result<()> {
    const STEP: &str = "mount the virtual filesystems";
    const SECURE: MountFlags = MountFlags::NOSUID
        .union(MountFlags::NODEV)
        .union(MountFlags::NOEXEC);
    const TABLE: [(&CStr, &CStr, MountFlags, Option<&CStr>); 4] = [
        (c"proc", c"/proc", SECURE, None),
        (c"sysfs", c"/sys", SECURE, None),
        (c"devtmpfs", c"/dev", MountFlags::NOSUID, Some(c"mode=0755")),
        (
            c"tmpfs",
            c"/run",
            MountFlags::NOSUID.union(MountFlags::NODEV),
            Some(c"mode=0755"),
        ),
    ];
    for &(fstype, target, flags, data) in &TABLE {
        mount_at(STEP, fstype, target, fstype, flags, data, Named::Target)?;
    }
    make_dir(STEP, cstr::RUN_DIR)
}

/// The kernel's name of a probed filesystem, for `mount(2)`.
pub fn fs_type(kind: FsKind) -> &'static CStr {
    match kind {
        FsKind::Iso9660 => c"iso9660",
        FsKind::Ext4 => c"ext4",
        FsKind::Squashfs => c"squashfs",
        FsKind::Vfat => c"vfat",
    }
}

/// For messages: the filesystem type, or `no filesystem`.
// Out of line: measured smaller.
#[inline(never)]
pub fn fs_name(probe: Option<&Probe>) -> &'static str {
    match probe {
        Some(p) => p.kind.as_str(),
        None => "no filesystem",
    }
}

/// Mounts `device` (of type `fstype`) at `target`, read-only or not.
pub fn mount_device(
    step: &'static str,
    device: &CStr,
    target: &CStr,
    fstype: &CStr,
    read_only: bool,
) -> Result<()> {
    let flags = if read_only {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    } | MountFlags::NOATIME;
    mount_at(step, device, target, fstype, flags, None, Named::Source)
}

/// A tmpfs at `target` with `options` (e.g. `size=50%,mode=0755`).
pub fn mount_tmpfs(step: &'static str, target: &CStr, options: &CStr) -> Result<()> {
    let flags = MountFlags::NOSUID | MountFlags::NODEV;
    mount_at(
        step,
        c"tmpfs",
        target,
        c"tmpfs",
        flags,
        Some(options),
        Named::Target,
    )
}

/// Which argument of a mount a failure names.
#[derive(Clone, Copy)]
pub enum Named {
    /// The device (or filesystem name).
    Source,
    /// The mount point.
    Target,
    /// The options (mount(2)'s `data` argument).
    Options,
}

/// Makes `target` and mounts `source` (of type `fstype`) on it; a failure
/// names the step and the argument `named` says.
#[inline(never)]
pub fn mount_at(
    step: &'static str,
    source: &CStr,
    target: &CStr,
    fstype: &CStr,
    flags: MountFlags,
    data: Option<&CStr>,
    named: Named,
) -> Result<()> {
    make_dir(step, target)?;
    let subject = match (named, data) {
        (Named::Source, _) => source,
        (Named::Options, Some(options)) => options,
        _ => target,
    };
    mount(source, target, fstype, flags, data).step(step, subject.to_bytes())
}

/// `stat` of `path` (symlinks followed).
pub fn stat(path: &CStr) -> rustix::io::Result<rustix::fs::Stat> {
    rustix::fs::statat(rustix::fs::CWD, path, AtFlags::empty())
}

/// Whether `st` is a directory.
pub fn is_dir(st: &rustix::fs::Stat) -> bool {
    FileType::from_raw_mode(st.st_mode) == FileType::Directory
}

/// Makes `dir` inside a mounted upper filesystem, unless it exists. Never
/// removes or changes what is there.
pub fn ensure_dir_in(step: &'static str, path: &CStr) -> Result<()> {
    match stat(path) {
        Ok(st) if is_dir(&st) => Ok(()),
        Ok(_) => Err(Error::msg(
            step,
            path.to_bytes(),
            "exists but is not a directory",
        )),
        Err(Errno::NOENT) => {
            rustix::fs::mkdir(path, Mode::from_raw_mode(0o755)).step(step, path.to_bytes())
        }
        Err(e) => Err(Error::sys(step, path.to_bytes(), e)),
    }
}

/// Whether `path` exists (as anything).
pub fn exists(path: &CStr) -> bool {
    stat(path).is_ok()
}

/// Reads the small file `path` (one `read`: `/proc` files and the
/// initramfs's own) into `buf`: the bytes read.
#[inline(never)]
pub fn read_file<'a>(path: &CStr, buf: &'a mut [u8]) -> rustix::io::Result<&'a [u8]> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let n = rustix::io::read(&fd, &mut *buf)?;
    Ok(buf.get(..n).unwrap_or_default())
}

/// Opens `path` (close-on-exec); a failure names `step` and `path`.
#[inline(never)]
pub fn open(
    step: &'static str,
    path: &CStr,
    flags: OFlags,
    mode: u32,
) -> Result<rustix::fd::OwnedFd> {
    rustix::fs::open(path, flags | OFlags::CLOEXEC, Mode::from_raw_mode(mode))
        .step(step, path.to_bytes())
}
