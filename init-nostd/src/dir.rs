//! Reading a directory without an allocator: `getdents64` into a stack buffer.

use core::ffi::CStr;
use rustix::fd::BorrowedFd;
use rustix::fs::{FileType, RawDir};

/// Calls `each` with the name and type of every entry of directory `dir`, in
/// the kernel's order, until it returns `true`; returns whether it did. (One
/// directory walk for the three places that read a directory: device
/// discovery, the USB check, the initramfs cleanup.) An unreadable rest of
/// the directory ends the walk.
#[inline(never)]
pub fn walk(dir: BorrowedFd<'_>, each: &mut dyn FnMut(&CStr, FileType) -> bool) -> bool {
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut entries = RawDir::new(dir, &mut buf);
    while let Some(Ok(entry)) = entries.next() {
        if each(entry.file_name(), entry.file_type()) {
            return true;
        }
    }
    false
}
