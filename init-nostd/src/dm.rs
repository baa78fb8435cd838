//! The root image behind dm-verity (`docs/boot-contract.md`, "The verified
//! image"): the parameter line the initramfs trusts, and the verity device
//! over the image's loop device, made with three device-mapper ioctls on
//! `/dev/mapper/control`: `DM_DEV_CREATE`, `DM_TABLE_LOAD` (one `verity`
//! target) and `DM_DEV_SUSPEND` without the suspend flag, which resumes the
//! device: the loaded table goes live. rustix has no device-mapper API and
//! linux-raw-sys only the ioctl numbers, so the structures are
//! `<linux/dm-ioctl.h>`'s, written out here.

use core::ffi::CStr;
use core::mem::size_of;
use k1os_contract::cmdline::BootConfig;
use k1os_contract::contract::{self, cstr};
use k1os_contract::verity::{self, DIGEST_HEX, SALT_MAX_HEX};
use linux_raw_sys::ioctl::{DM_DEV_CREATE, DM_DEV_SUSPEND, DM_TABLE_LOAD};
use rustix::fd::{AsFd, BorrowedFd};
use rustix::fs::OFlags;
use rustix::io::Errno;

use crate::error::{Context, Error, Result};
use crate::text::{self, Buf, PATH_MAX, is_concat};
use crate::{mounts, sys};

/// The step every verity failure names.
pub const STEP: &str = "verify the root image";
/// Why, when the kernel refuses the image with the trusted parameters: a
/// table it cannot load (a smaller image: the kernel logs "Data device is
/// too small", `EINVAL`, or "Hash device is too small", `E2BIG`) or blocks
/// that fail their check when the image is mounted (any other image, a
/// damaged superblock: `EIO`).
pub const MISMATCH: &str = "not the image the initramfs trusts, or damaged";

/// Room for the trusted line: two numbers, `sha256`, the root hash, the
/// longest salt, the spaces and a newline; a longer file is refused.
pub const LINE_MAX: usize = 2 * 20 + 6 + DIGEST_HEX + SALT_MAX_HEX + 5;
// `1 <loop> <loop> 4096 4096 <line>` and its NUL fit a path buffer, the loop
// device's name up to 24 bytes (a longer one is refused, ENAMETOOLONG); the
// device's name fits the header.
const _: () = {
    assert!(2 + 24 + 1 + 24 + 11 + LINE_MAX < PATH_MAX);
    assert!(contract::VERITY_DEVICE.len() < 128);
};

/// `struct dm_ioctl`: every device-mapper ioctl's header.
#[repr(C)]
struct DmIoctl {
    version: [u32; 3],
    data_size: u32,
    data_start: u32,
    target_count: u32,
    open_count: i32,
    flags: u32,
    event_nr: u32,
    padding: u32,
    dev: u64,
    name: [u8; 128],
    uuid: [u8; 129],
    data: [u8; 7],
}

/// `struct dm_target_spec`: one target of a table, its parameters after it.
#[repr(C)]
struct TargetSpec {
    sector_start: u64,
    length: u64,
    status: i32,
    next: u32,
    target_type: [u8; 16],
}

/// What every call passes: the header, then (for `DM_TABLE_LOAD`) the one
/// target at `data_start` and its NUL-terminated table.
#[repr(C)]
struct Request {
    io: DmIoctl,
    target: TargetSpec,
    table: Buf<PATH_MAX>,
}

// The sizes of <linux/dm-ioctl.h> on x86_64.
const _: () = assert!(size_of::<DmIoctl>() == 312 && size_of::<TargetSpec>() == 40);

/// `DM_READONLY_FLAG`: a verity table must be read-only.
const DM_READONLY_FLAG: u32 = 1 << 0;
/// `DM_PERSISTENT_DEV_FLAG`: create the device with the minor in `dev`.
const DM_PERSISTENT_DEV_FLAG: u32 = 1 << 3;
/// The interface version stage 1 speaks: 4 (any minor the kernel has).
const DM_VERSION_MAJOR: u32 = 4;
/// The verity device's node: stage 1 asks for minor 0
/// (`DM_PERSISTENT_DEV_FLAG`), so it is always the same; the kernel names
/// device-mapper disks `dm-<minor>`.
pub const NODE: &CStr = c"/dev/dm-0";

/// The device to mount the image from and what the boot record says about
/// it: the verity device over `loop_device` ([`NODE`]) and the root hash
/// when the initramfs trusts an image ([`cstr::INITRAMFS_VERITY`]) and
/// `k1os.verity` is on; otherwise `loop_device` itself, `off` or `none`, and
/// a warning. Errors name `config.image`. A trusted line the kernel will not
/// take is an error: stage 1 never falls back to an unverified image then.
// Out of line: measured smaller.
#[inline(never)]
pub fn device<'a>(
    config: &BootConfig<'_>,
    loop_device: &'a CStr,
    line: &'a mut [u8; LINE_MAX],
) -> Result<(&'a CStr, &'a [u8])> {
    let path = cstr::INITRAMFS_VERITY;
    let line = match mounts::read_file(path, line) {
        _ if !config.verity => None,
        Err(Errno::NOENT) => None,
        other => Some(other.step(STEP, path.to_bytes())?),
    };
    let Some(line) = line else {
        let (verity, why): (&[u8], _) = match config.verity {
            false => (b"off", "k1os.verity=off"),
            true => (b"none", "the initramfs trusts no image"),
        };
        crate::warn!("the root image is not verified: {}", why);
        return Ok((loop_device, verity));
    };
    let Some((data_blocks, root_hash)) = verity::split_line(line).filter(|_| line.len() < LINE_MAX)
    else {
        return Err(Error::msg(STEP, path.to_bytes(), "not a verity line"));
    };

    let control = mounts::open(STEP, c"/dev/mapper/control", OFlags::RDWR, 0)?;
    let control = control.as_fd();
    // SAFETY: all-zero is a valid `Request`: integers, byte arrays and
    // `MaybeUninit` bytes. (So `dev` asks for minor 0.)
    let mut req: Request = unsafe { core::mem::zeroed() };
    let name = contract::VERITY_DEVICE.as_bytes();
    req.io.name[..name.len()].copy_from_slice(name);
    dm(control, DM_DEV_CREATE, &mut req, DM_PERSISTENT_DEV_FLAG).step(STEP, name)?;

    req.target.length = data_blocks * (verity::BLOCK_SIZE as u64 / 512);
    req.target.target_type = *b"verity\0\0\0\0\0\0\0\0\0\0";
    let device = loop_device.to_bytes();
    let parts: [&[u8]; 6] = [b"1 ", device, b" ", device, b" 4096 4096 ", line];
    text::join(&mut req.table, &parts).step(STEP, path.to_bytes())?;
    match dm(control, DM_TABLE_LOAD, &mut req, DM_READONLY_FLAG) {
        // "Data device is too small", "Hash device is too small"
        Err(e @ (Errno::INVAL | Errno::TOOBIG)) => Err(Error::record(
            STEP,
            config.image,
            e.raw_os_error() as u16,
            MISMATCH,
        )),
        other => other.step(STEP, name),
    }?;
    dm(control, DM_DEV_SUSPEND, &mut req, 0).step(STEP, name)?;
    Ok((NODE, root_hash))
}

// The table above spells out the version 1 hash and the block sizes, the
// warning the key.
const _: () = {
    assert!(verity::HASH_VERSION == 1 && verity::BLOCK_SIZE == 4096);
    assert!(is_concat(
        b"k1os.verity",
        &[contract::key::VERITY.as_bytes()]
    ));
};

/// One device-mapper ioctl with `req` (its header filled in here) and `flags`.
// Out of line: one copy for the three calls.
#[inline(never)]
fn dm(
    control: BorrowedFd<'_>,
    request: u32,
    req: &mut Request,
    flags: u32,
) -> core::result::Result<(), Errno> {
    req.io.version = [DM_VERSION_MAJOR, 0, 0];
    req.io.data_size = size_of::<Request>() as u32;
    req.io.data_start = size_of::<DmIoctl>() as u32;
    req.io.target_count = u32::from(request == DM_TABLE_LOAD);
    req.io.flags = flags;
    // The kernel wrote the device's number back; a lookup by name wants 0
    // there (and a create asks for minor 0 with it).
    req.io.dev = 0;
    // SAFETY: a device-mapper ioctl reads and writes a `struct dm_ioctl` of
    // `data_size` bytes, for DM_TABLE_LOAD followed at `data_start` by
    // `target_count` (1) `struct dm_target_spec` and its NUL-terminated
    // parameters (`text::join` wrote them with their NUL). `req` is that,
    // `data_size` bytes long, and lives through the call.
    unsafe { sys::ioctl(control, request, &raw mut *req as usize) }.map(drop)
}
