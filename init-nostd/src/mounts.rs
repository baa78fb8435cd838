//! Mounting: the virtual filesystems, the media, the image, the upper layer,
//! the overlay. Every failure names the step, the mount point and the errno.

use core::ffi::CStr;
use k1os_contract::probe::{FsKind, Probe};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::{MountFlags, mount};

use crate::error::{Context, Result};

/// Creates `path` (mode 0755) unless it exists.
pub fn make_dir(step: &'static str, path: &CStr) -> Result<()> {
    match rustix::fs::mkdir(path, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(crate::error::Error::sys(step, path.to_bytes(), e)),
    }
}

/// `/proc`, `/sys`, `/dev` (devtmpfs: the kernel makes the device nodes) and
/// `/run` (tmpfs: it becomes stage 2's `/run`, holding `/run/k1os`).
pub fn mount_early() -> Result<()> {
    const STEP: &str = "mount the virtual filesystems";
    let secure = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let table: [(&CStr, &CStr, MountFlags, Option<&CStr>); 4] = [
        (c"proc", c"/proc", secure, None),
        (c"sysfs", c"/sys", secure, None),
        (c"devtmpfs", c"/dev", MountFlags::NOSUID, Some(c"mode=0755")),
        (
            c"tmpfs",
            c"/run",
            MountFlags::NOSUID | MountFlags::NODEV,
            Some(c"mode=0755"),
        ),
    ];
    for (fstype, target, flags, data) in table {
        make_dir(STEP, target)?;
        mount(fstype, target, fstype, flags, data).step(STEP, target.to_bytes())?;
    }
    make_dir(STEP, c"/run/k1os")
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
pub fn fs_name(probe: Option<&Probe>) -> &'static str {
    match probe {
        Some(p) => fs_type(p.kind).to_str().unwrap_or("?"),
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
    make_dir(step, target)?;
    let flags = if read_only {
        MountFlags::RDONLY
    } else {
        MountFlags::empty()
    } | MountFlags::NOATIME;
    mount(device, target, fstype, flags, None).step(step, device.to_bytes())
}

/// A tmpfs at `target` with `options` (e.g. `size=50%,mode=0755`).
pub fn mount_tmpfs(step: &'static str, target: &CStr, options: &CStr) -> Result<()> {
    make_dir(step, target)?;
    mount(
        c"tmpfs",
        target,
        c"tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        options,
    )
    .step(step, target.to_bytes())
}

/// Makes `dir` inside a mounted upper filesystem, unless it exists. Never
/// removes or changes what is there.
pub fn ensure_dir_in(step: &'static str, path: &CStr) -> Result<()> {
    match rustix::fs::statat(rustix::fs::CWD, path, rustix::fs::AtFlags::empty()) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::Directory =>
        {
            Ok(())
        }
        Ok(_) => Err(crate::error::Error::msg(
            step,
            path.to_bytes(),
            "exists but is not a directory",
        )),
        Err(Errno::NOENT) => {
            rustix::fs::mkdir(path, Mode::from_raw_mode(0o755)).step(step, path.to_bytes())
        }
        Err(e) => Err(crate::error::Error::sys(step, path.to_bytes(), e)),
    }
}

/// Whether `path` exists (as anything).
pub fn exists(path: &CStr) -> bool {
    rustix::fs::statat(rustix::fs::CWD, path, rustix::fs::AtFlags::empty()).is_ok()
}

/// Opens a file read-only, for the image.
pub fn open_read(step: &'static str, path: &CStr) -> Result<rustix::fd::OwnedFd> {
    rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .step(step, path.to_bytes())
}
