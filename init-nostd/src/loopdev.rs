//! Attaching the root image to a loop device, read-only.

use core::ffi::CStr;
use linux_raw_sys::loop_device as lo;
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::OFlags;
use rustix::io::Errno;
use ufmt::uwrite;

use crate::error::{Context, Error, Result};
use crate::text::{Buf, PATH_MAX, Text};
use crate::{mounts, sys};

const STEP: &str = "attach the image to a loop device";
const CONTROL: &[u8] = b"/dev/loop-control";
/// Another opener can take the free loop device between our two calls: retry.
const ATTEMPTS: u32 = 8;

/// Attaches `image` (an open, read-only file) to a free loop device, read-only
/// and auto-clearing (it detaches when its last user, the mount, goes away).
/// Returns `/dev/loopN` and the open device: keep it open until the image is
/// mounted, or auto-clear detaches the device as soon as it is closed.
///
/// `LOOP_CTL_GET_FREE` + `LOOP_CONFIGURE` (kernel ≥ 5.8, one atomic call), with
/// the older `LOOP_SET_FD` + `LOOP_SET_STATUS64` when the kernel says `EINVAL`.
pub fn attach<'a>(
    image: BorrowedFd<'_>,
    buf: &'a mut Buf<PATH_MAX>,
) -> Result<(&'a CStr, OwnedFd)> {
    let control = mounts::open(STEP, c"/dev/loop-control", OFlags::RDWR, 0)?;
    let mut last = Errno::BUSY;
    for _ in 0..ATTEMPTS {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument; the free index is the result.
        let index =
            unsafe { sys::ioctl(control.as_fd(), lo::LOOP_CTL_GET_FREE, 0) }.step(STEP, CONTROL)?;
        let node = node(buf, index)?;
        let device = mounts::open(STEP, node, OFlags::RDONLY, 0)?;
        match configure(device.as_fd(), image) {
            // `node` borrows `buf` only within one turn of the loop: make it again.
            Ok(()) => return Ok((self::node(buf, index)?, device)),
            Err(e @ (Errno::BUSY | Errno::AGAIN)) => last = e,
            Err(e) => return Err(Error::sys(STEP, node.to_bytes(), e)),
        }
    }
    Err(Error::sys(STEP, CONTROL, last))
}

/// `/dev/loop<index>` in `buf`.
// Out of line (here and in `configure`): measured smaller in stage 1.
#[inline(never)]
fn node(buf: &mut Buf<PATH_MAX>, index: usize) -> Result<&CStr> {
    let mut node = Text::new(buf);
    let _ = uwrite!(node, "/dev/loop{}", index as u32 as u64);
    // Always fits.
    node.into_c_str().step(STEP, b"/dev/loop")
}

/// Attaches `image` to the loop `device`, read-only and auto-clearing.
#[inline(never)]
fn configure(device: BorrowedFd<'_>, image: BorrowedFd<'_>) -> core::result::Result<(), Errno> {
    use rustix::fd::AsRawFd;
    // SAFETY: all-zero is a valid `loop_config` (plain integers and arrays).
    let mut config: lo::loop_config = unsafe { core::mem::zeroed() };
    config.fd = image.as_raw_fd() as u32;
    config.info.lo_flags = lo::LO_FLAGS_READ_ONLY as u32 | lo::LO_FLAGS_AUTOCLEAR as u32;
    // SAFETY: LOOP_CONFIGURE reads a `struct loop_config`, which `config` is and
    // which outlives the call.
    match unsafe { sys::ioctl(device, lo::LOOP_CONFIGURE, &raw const config as usize) } {
        Err(Errno::INVAL) => {}
        other => return other.map(drop),
    }
    // Kernels before 5.8: the device is read-only because `image` was opened read-only.
    // SAFETY: LOOP_SET_FD takes the backing file descriptor as an integer.
    unsafe { sys::ioctl(device, lo::LOOP_SET_FD, image.as_raw_fd() as usize) }?;
    // SAFETY: LOOP_SET_STATUS64 reads a `struct loop_info64`, which `config.info` is.
    unsafe {
        sys::ioctl(
            device,
            lo::LOOP_SET_STATUS64,
            &raw const config.info as usize,
        )
    }
    .map(drop)
}
