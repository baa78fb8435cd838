//! Block device discovery without udev or blkid: names from `/sys/class/block`,
//! nodes from devtmpfs, filesystems from the superblocks (`probe`).
//!
//! Waiting for devices polls `/sys/class/block` every [`POLL_MS`] with a sleep
//! in between (no busy-spinning). A `NETLINK_KOBJECT_UEVENT` socket would wake
//! us up to one poll interval sooner, but needs more code, and a scan of
//! `/sys/class/block` costs microseconds; polling also cannot miss a device
//! that appeared between a scan and a subscription.

use core::ffi::CStr;
use heapless::Vec;
use k1os_contract::choose::{Candidate, Name};
use k1os_contract::fmt::Bytes;
use k1os_contract::{probe, settle};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::text::{self, Buf, PATH_MAX};
use crate::{debug, dir, log, mounts, sys};

/// Most block devices stage 1 keeps track of.
pub const MAX_DEVICES: usize = 64;
/// Sleep between two scans of `/sys/class/block` while waiting.
pub const POLL_MS: u32 = 20;
/// `/dev/<name>` (devtmpfs made it) in `buf`.
pub fn node<'a>(buf: &'a mut Buf<PATH_MAX>, name: &Name) -> Result<&'a CStr, Errno> {
    text::join(buf, &[b"/dev/", name.as_bytes()])
}

/// The block devices found so far, in the order they appeared: the list
/// [`choose`](k1os_contract::choose) picks from (so choosing copies nothing).
#[derive(Default)]
pub struct Devices {
    pub list: Vec<Candidate, MAX_DEVICES>,
    /// When the last new device was found (µs since start).
    last_new_us: u64,
}

impl Devices {
    /// Adds the block devices that appeared since the last scan. Devices that
    /// hold no medium (size 0) or cannot be read are skipped now and looked at
    /// again by the next scan.
    // Out of line (here and below): measured smaller in stage 1.
    #[inline(never)]
    fn scan(&mut self) {
        let Ok(dir) = rustix::fs::open(c"/sys/class/block", DIR_FLAGS, Mode::empty()) else {
            return;
        };
        let mut added = false;
        dir::walk(dir.as_fd(), &mut |name, _| {
            let bytes = name.to_bytes();
            if bytes.starts_with(b".")
                || is_virtual(bytes)
                || self.list.iter().any(|d| d.name.as_bytes() == bytes)
            {
                return false;
            }
            let Some(device) = examine(&dir, name) else {
                return false;
            };
            debug!(
                "found /dev/{} ({})",
                Bytes(bytes),
                mounts::fs_name(device.probe.as_ref())
            );
            if self.list.push(device).is_err() {
                return true; // full
            }
            added = true;
            false
        });
        if added {
            self.last_new_us = log::elapsed_us();
        }
    }

    /// Whether discovery has settled (`settle::settled`): no new device
    /// for a short idle period, and every USB storage interface has its disks.
    #[inline(never)]
    pub fn settled(&self) -> bool {
        let idle_ms = log::elapsed_us().saturating_sub(self.last_new_us) / 1000;
        settle::settled(idle_ms, usb_storage_pending)
    }

    /// Scans until `done` says so or `deadline_us` passes, sleeping
    /// [`POLL_MS`] between scans; with `until_settled`, also ends once device
    /// discovery has settled. Returns what `done` said last.
    pub fn wait_for(
        &mut self,
        deadline_us: u64,
        until_settled: bool,
        done: &mut dyn FnMut(&Devices) -> bool,
    ) -> bool {
        loop {
            self.scan();
            if done(self) {
                return true;
            }
            if log::elapsed_us() >= deadline_us || (until_settled && self.settled()) {
                return false;
            }
            sys::sleep_ms(POLL_MS);
        }
    }
}

/// Block devices that never hold boot media or data: loop devices (the image
/// is attached to one of ours) and RAM disks.
fn is_virtual(name: &[u8]) -> bool {
    name.starts_with(b"loop") || name.starts_with(b"ram") || name.starts_with(b"zram")
}

/// Reads what stage 1 needs to know about `/sys/class/block/<name>`, or
/// `None` when the device is empty or unreadable.
#[inline(never)]
fn examine(sys_block: &OwnedFd, name: &CStr) -> Option<Candidate> {
    let device_name = Name::new(name.to_bytes())?;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let sys_dir = rustix::fs::openat(sys_block, name, flags, Mode::empty()).ok()?;
    let size_file = rustix::fs::openat(
        &sys_dir,
        c"size",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut size = [0u8; 24];
    let n = rustix::io::read(size_file, &mut size).ok()?;
    if size
        .iter()
        .take(n)
        .take_while(|b| b.is_ascii_digit())
        .all(|&b| b == b'0')
    {
        return None; // no medium (empty CD drive) or zero-size device
    }
    let parent = match rustix::fs::statat(&sys_dir, c"partition", AtFlags::empty()) {
        Ok(_) => parent_of(sys_block.as_fd(), name),
        Err(_) => None,
    };
    let mut path = text::buf();
    let node = node(&mut path, &device_name).ok()?;
    let fd = rustix::fs::open(
        node,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let mut sb = [0u8; probe::PROBE_LEN];
    let n = read_full(&fd, &mut sb).ok()?;
    Some(Candidate {
        name: device_name,
        parent,
        probe: probe::probe_block(&sb, n),
    })
}

/// A partition's disk: `/sys/class/block/sda1` links to `…/block/sda/sda1`.
fn parent_of(sys_block: BorrowedFd<'_>, name: &CStr) -> Option<Name> {
    let mut link = [0u8; 256];
    let n = rustix::fs::readlinkat_raw(sys_block, name, &mut link[..]).ok()?;
    let target = link.get(..n)?;
    let dir = target.get(..target.iter().rposition(|&b| b == b'/')?)?;
    let start = dir.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    Name::new(dir.get(start..)?)
}

/// Reads from the start of `fd` until `buf` is full or the device ends.
fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> rustix::io::Result<usize> {
    let mut done = 0;
    while let Some(rest) = buf.get_mut(done..)
        && !rest.is_empty()
    {
        match rustix::io::pread(fd, rest, done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// The USB storage drivers: usb-storage (Bulk-Only) and uas (USB Attached SCSI).
const USB_STORAGE_DRIVERS: [&CStr; 2] = [
    c"/sys/bus/usb/drivers/usb-storage",
    c"/sys/bus/usb/drivers/uas",
];

/// Whether USB storage is still on its way to becoming block devices: an
/// interface bound to usb-storage or uas whose SCSI host has no SCSI device
/// yet, or a SCSI device without its block device. usb-storage scans a stick
/// `usb-storage.delay_use` seconds after binding it; then sd attaches the
/// disk (the same walk for uas, which scans at once). The hub driver
/// enumerates the ports one device after the other: with a `delay_use` of 1 s
/// a second stick plugged in before power-on is bound long before the first
/// one is a disk; with 0 it may be bound only after, within the quiet period
/// that follows the first stick's partitions (tens of ms later under TCG).
fn usb_storage_pending() -> bool {
    USB_STORAGE_DRIVERS.iter().any(|driver| {
        rustix::fs::open(*driver, DIR_FLAGS, Mode::empty())
            .is_ok_and(|dir| !scsi_complete(dir.as_fd(), 0))
    })
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// Whether everything below `dir` (at `level` of `settle::SCSI_PATH_LEVELS`) has reached a
/// block device: at the last level, whether the SCSI device has `block`;
/// above it, whether every followed entry is complete and (below the driver,
/// where no interface is fine) there is at least one. An entry that vanished
/// (a stick pulled out) counts as complete.
fn scsi_complete(dir: BorrowedFd<'_>, level: usize) -> bool {
    if level == settle::SCSI_PATH_LEVELS {
        return rustix::fs::statat(dir, c"block", AtFlags::empty()).is_ok();
    }
    let mut found = level == 0;
    let pending = dir::walk(dir, &mut |name, _| {
        if !settle::follows(level, name.to_bytes()) {
            return false;
        }
        found = true;
        rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty())
            .is_ok_and(|sub| !scsi_complete(sub.as_fd(), level + 1))
    });
    found && !pending
}
