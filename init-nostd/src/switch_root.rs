//! Handing over to stage 2: check it, move the virtual filesystems, empty the
//! initramfs, make the new root `/`, exec.
//!
//! `pivot_root(2)` does not work from the initramfs (its root is the kernel's
//! rootfs), so this is busybox `switch_root`'s sequence: delete the initramfs
//! contents (it is RAM that would otherwise stay allocated forever), then
//! `MS_MOVE` the new root over `/` and `chroot` into it.

use core::convert::Infallible;
use core::ffi::CStr;
use k1os_contract::contract::{self, cstr};
use k1os_contract::fmt::Bytes;
use linux_raw_sys::general::{RAMFS_MAGIC, TMPFS_MAGIC};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};

use crate::error::{Context, Error, Result};
use crate::text::{self, Buf, PATH_MAX};
use crate::{info, mounts, sys};

/// Mount points stage 1 moves into the new root, and where they go. They must
/// exist in the image: creating them through the overlay would write them to
/// the data partition.
const MOVED_MOUNTS: [(&CStr, &CStr); 4] = [
    (c"/dev", c"/newroot/dev"),
    (c"/proc", c"/newroot/proc"),
    (c"/sys", c"/newroot/sys"),
    (c"/run", c"/newroot/run"),
];
const _: () = {
    let mut i = 0;
    while i < MOVED_MOUNTS.len() {
        let (dir, target) = MOVED_MOUNTS[i];
        assert!(text::is_concat(
            target.to_bytes(),
            &[contract::NEW_ROOT.as_bytes(), dir.to_bytes()]
        ));
        i += 1;
    }
};
/// Directory depth the initramfs cleanup descends (the initramfs is shallow).
const MAX_DEPTH: u32 = 16;
/// The environment stage 2 starts with: the one the kernel gives `/init`,
/// without the command-line words it adds.
const STAGE2_ENV: [&CStr; 2] = [c"HOME=/", c"TERM=linux"];

/// Checks, before anything is destroyed, that `init` exists in the new root, is
/// a regular file and executable (symlinks resolved inside the new root, as
/// they will be after the switch), and that the mount points to move exist.
/// Returns `init` as a C string in `buf`, for [`switch_root`].
pub fn check_stage2<'a>(init: &[u8], buf: &'a mut Buf<PATH_MAX>) -> Result<&'a CStr> {
    const STEP: &str = "check stage 2 in the new root";
    let root = mounts::open(STEP, cstr::NEW_ROOT, OFlags::PATH | OFlags::DIRECTORY, 0)?;
    let relative = text::join(buf, &[b".", init]).step(STEP, init)?;
    let file = rustix::fs::openat2(
        root.as_fd(),
        relative,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    )
    .step(STEP, init)?;
    let st = rustix::fs::fstat(&file).step(STEP, init)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Error::msg(STEP, init, "is not a regular file"));
    }
    if st.st_mode & 0o111 == 0 {
        return Err(Error::msg(STEP, init, "is not executable"));
    }
    for &(dir, target) in &MOVED_MOUNTS {
        // `/newroot/dev` from the initramfs is `dev` from the new root's
        // directory: the same lookup.
        match mounts::stat(target) {
            Ok(st) if mounts::is_dir(&st) => {}
            Ok(_) => {
                return Err(Error::msg(
                    STEP,
                    dir.to_bytes(),
                    "is not a directory in the root image",
                ));
            }
            Err(e) => return Err(Error::sys(STEP, dir.to_bytes(), e)),
        }
    }
    // SAFETY: `relative` is `.` followed by `init` and a NUL: one byte in,
    // it is still a NUL-terminated string, inside the same buffer.
    Ok(unsafe { CStr::from_ptr(relative.as_ptr().add(1)) })
}

/// Moves `/dev`, `/proc`, `/sys`, `/run` (with `/run/k1os/*`) into the new root.
pub fn move_mounts() -> Result<()> {
    const STEP: &str = "move the virtual filesystems into the new root";
    for &(dir, target) in &MOVED_MOUNTS {
        rustix::mount::mount_move(dir, target).step(STEP, target.to_bytes())?;
    }
    crate::log::kmsg_under_new_root(true);
    Ok(())
}

/// Empties the initramfs, makes the new root the root and executes `init`
/// (as [`check_stage2`] returned it). Returns only on failure.
pub fn switch_root(init: &CStr) -> Result<Infallible> {
    const STEP: &str = "switch to the new root";
    let new_root = cstr::NEW_ROOT;
    let fs = rustix::fs::statfs(c"/").step(STEP, b"/")?;
    let magic = fs.f_type as u32;
    if magic != RAMFS_MAGIC && magic != TMPFS_MAGIC {
        return Err(Error::msg(
            STEP,
            b"/",
            "is not the initramfs (ramfs or tmpfs): refusing to delete it",
        ));
    }
    let root = mounts::open(STEP, c"/", OFlags::RDONLY | OFlags::DIRECTORY, 0)?;
    let root_dev = rustix::fs::fstat(&root).step(STEP, b"/")?.st_dev;
    delete_contents(root.as_fd(), root_dev, 0);
    drop(root);

    rustix::process::chdir(new_root).step(STEP, new_root.to_bytes())?;
    rustix::mount::mount_move(c".", c"/").step(STEP, new_root.to_bytes())?;
    rustix::process::chroot(c".").step(STEP, new_root.to_bytes())?;
    rustix::process::chdir(c"/").step(STEP, b"/")?;
    crate::log::kmsg_under_new_root(false);

    info!("exec {}", Bytes(init.to_bytes()));
    let argv = [init.as_ptr().cast::<u8>(), core::ptr::null()];
    let envp = [
        STAGE2_ENV[0].as_ptr().cast::<u8>(),
        STAGE2_ENV[1].as_ptr().cast(),
        core::ptr::null(),
    ];
    let errno = sys::execve(init, &argv, &envp);
    Err(Error::sys("execute stage 2", init.to_bytes(), errno))
}

/// Deletes everything below `dir` that is on device `dev`, without following
/// symlinks and without entering other filesystems (the new root, moved
/// mounts). Errors are skipped: what cannot be deleted only costs RAM.
fn delete_contents(dir: BorrowedFd<'_>, dev: u64, depth: u32) {
    crate::dir::walk(dir, &mut |name, file_type| {
        if matches!(name.to_bytes(), b"." | b"..") {
            return false;
        }
        if file_type != FileType::Directory {
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
            return false;
        }
        let Ok(st) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) else {
            return false;
        };
        if st.st_dev != dev || depth >= MAX_DEPTH {
            return false; // a mount point (the new root): not ours to empty
        }
        let child = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        );
        if let Ok(child) = child {
            delete_contents(child.as_fd(), dev, depth + 1);
        }
        let _ = rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR);
        false
    });
}
