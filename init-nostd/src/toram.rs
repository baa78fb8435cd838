//! `k1os.toram`: the image copied into RAM, so the boot media can be removed.

use core::ffi::CStr;
use k1os_contract::contract::cstr;
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::mount::UnmountFlags;
use ufmt::uwrite;

use crate::error::{Context, Error, Result};
use crate::layout::TORAM_IMAGE;
use crate::mounts;
use crate::text::{self, Text};

/// Bytes of RAM left free beyond the image when copying it (the refusal
/// below says "16 MiB").
const TORAM_MARGIN: u64 = 16 << 20;
const _: () = assert!(TORAM_MARGIN == 16 * 1024 * 1024);

/// Copies the image into a tmpfs of its size at `/run/k1os/toram` and
/// releases the media. Returns the copy's path.
pub fn copy_to_ram(image: &CStr) -> Result<&'static CStr> {
    const STEP: &str = "copy the image to RAM";
    let source = mounts::open(STEP, image, OFlags::RDONLY, 0)?;
    let size = rustix::fs::fstat(&source)
        .step(STEP, image.to_bytes())?
        .st_size as u64;
    let info = rustix::system::sysinfo();
    let free = info.freeram as u64 * u64::from(info.mem_unit.max(1));
    if size + TORAM_MARGIN > free {
        // Before anything is copied; ENOSPC alone would read like a full media.
        return Err(Error::check(
            STEP,
            image.to_bytes(),
            "larger than the free RAM less 16 MiB",
            Errno::NOSPC,
        ));
    }
    let mut options_buf = text::buf::<32>();
    let mut options = Text::new(&mut options_buf);
    let size_kib = (size / 1024 + 1024) as u32;
    let _ = uwrite!(options, "mode=0755,size={}k", u64::from(size_kib));
    let options = options.into_c_str().step(STEP, image.to_bytes())?;
    mounts::mount_tmpfs(STEP, cstr::RUN_TORAM, options)?;
    let copy = TORAM_IMAGE;
    let target = mounts::open(
        STEP,
        copy,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
        0o444,
    )?;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = rustix::io::read(&source, &mut buf).step(STEP, image.to_bytes())?;
        if n == 0 {
            break;
        }
        let mut done = 0;
        while let Some(rest) = buf.get(done..n)
            && !rest.is_empty()
        {
            done += rustix::io::write(&target, rest).step(STEP, copy.to_bytes())?;
        }
    }
    drop(source);
    let _ = rustix::mount::unmount(cstr::RUN_MEDIA, UnmountFlags::DETACH);
    Ok(copy)
}
