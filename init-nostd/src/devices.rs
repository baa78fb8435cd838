//! Block device discovery without udev or blkid: names from `/sys/class/block`,
//! nodes from devtmpfs, filesystems from the superblocks (`probe`).
//!
//! Waiting for devices polls `/sys/class/block` every [`POLL_MS`] with a sleep
//! in between (no busy-spinning). A `NETLINK_KOBJECT_UEVENT` socket would wake
//! us up to one poll interval sooner, but needs more code, and a scan of
//! `/sys/class/block` costs microseconds; polling also cannot miss a device
//! that appeared between a scan and a subscription.

use heapless::Vec;
use k1os_contract::choose::Candidate;
use k1os_contract::probe::{self, Probe};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, Mode, OFlags, RawDir};

use crate::path::PathBuf;
use crate::{debug, log::Bytes, sys};

/// Most block devices stage 1 keeps track of.
pub const MAX_DEVICES: usize = 64;
/// Sleep between two scans of `/sys/class/block` while waiting.
pub const POLL_MS: u32 = 20;
/// Device discovery has settled when no new block device appeared for this long…
/// Short, because the kernel finishes its asynchronous probing (SCSI/ATA scans)
/// before it runs `/init`; what still arrives late is USB and NVMe.
const SETTLE_IDLE_MS: u64 = 200;
/// …or this long while USB storage is attached (usb-storage waits ~1 s before
/// it scans a stick, then SCSI discovery adds its disks).
const SETTLE_USB_MS: u64 = 2500;

const NAME_MAX: usize = 32;
type Name = heapless::Vec<u8, NAME_MAX>;

pub struct Device {
    /// Kernel name: `sr0`, `sda1`, `vdb`.
    pub name: Name,
    /// The disk of a partition (`sda` for `sda1`).
    pub parent: Option<Name>,
    /// The filesystem found on it, if any.
    pub probe: Option<Probe>,
}

impl Device {
    /// `/dev/<name>` (devtmpfs made it).
    pub fn node(&self) -> Result<PathBuf, rustix::io::Errno> {
        PathBuf::join(&[b"/dev/", &self.name])
    }
}

#[derive(Default)]
pub struct Devices {
    pub list: Vec<Device, MAX_DEVICES>,
    /// When the last new device was found (µs since start).
    last_new_us: u64,
}

impl Devices {
    /// Adds the block devices that appeared since the last scan; returns how many.
    /// Devices that hold no medium (size 0) or cannot be read are skipped now
    /// and looked at again by the next scan.
    pub fn scan(&mut self) -> usize {
        let Ok(dir) = rustix::fs::open(
            c"/sys/class/block",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return 0;
        };
        let mut added = 0;
        let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 2048];
        let mut entries = RawDir::new(&dir, &mut buf);
        while let Some(Ok(entry)) = entries.next() {
            let name = entry.file_name().to_bytes();
            if name.starts_with(b".")
                || is_virtual(name)
                || self.list.iter().any(|d| d.name == name)
            {
                continue;
            }
            if let Some(device) = examine(dir.as_fd(), name) {
                debug!(
                    "found /dev/{} ({})",
                    Bytes(name),
                    crate::mounts::fs_name(device.probe.as_ref())
                );
                if self.list.push(device).is_err() {
                    break;
                }
                added += 1;
            }
        }
        if added > 0 {
            self.last_new_us = crate::log::elapsed_us();
        }
        added
    }

    /// Whether discovery has settled: no new device for a short idle period
    /// (longer while USB storage is attached).
    pub fn settled(&self) -> bool {
        let idle_ms = if usb_storage_present() {
            SETTLE_USB_MS
        } else {
            SETTLE_IDLE_MS
        };
        crate::log::elapsed_us().saturating_sub(self.last_new_us) >= idle_ms * 1000
    }

    /// The devices as the pure choice logic sees them.
    pub fn candidates(&self) -> Vec<Candidate<'_>, MAX_DEVICES> {
        let mut out = Vec::new();
        for d in &self.list {
            let _ = out.push(Candidate {
                name: &d.name,
                parent: d.parent.as_deref(),
                probe: d.probe.as_ref(),
            });
        }
        out
    }
}

/// Block devices that never hold boot media or data: loop devices (the image
/// is attached to one of ours) and RAM disks.
fn is_virtual(name: &[u8]) -> bool {
    name.starts_with(b"loop") || name.starts_with(b"ram") || name.starts_with(b"zram")
}

/// Reads what stage 1 needs to know about `/sys/class/block/<name>`, or
/// `None` when the device is empty or unreadable.
fn examine(sys_block: rustix::fd::BorrowedFd<'_>, name: &[u8]) -> Option<Device> {
    let name_buf: Name = Vec::from_slice(name).ok()?;
    let size_path = PathBuf::join(&[name, b"/size"]).ok()?;
    let mut text = [0u8; 24];
    let size = read_at(sys_block, size_path.as_cstr(), &mut text).ok()?;
    if text[..size]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .all(|&b| b == b'0')
    {
        return None; // no medium (empty CD drive) or zero-size device
    }
    let parent = match PathBuf::join(&[name, b"/partition"]) {
        Ok(p) if rustix::fs::statat(sys_block, p.as_cstr(), AtFlags::empty()).is_ok() => {
            parent_of(sys_block, name)
        }
        _ => None,
    };
    let node = PathBuf::join(&[b"/dev/", name]).ok()?;
    let fd = rustix::fs::open(
        node.as_cstr(),
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    let mut sb = [0u8; probe::PROBE_LEN];
    let n = read_full(&fd, &mut sb).ok()?;
    Some(Device {
        name: name_buf,
        parent,
        probe: probe::probe(&sb[..n]),
    })
}

/// A partition's disk: `/sys/class/block/sda1` links to `…/block/sda/sda1`.
fn parent_of(sys_block: rustix::fd::BorrowedFd<'_>, name: &[u8]) -> Option<Name> {
    let mut link = [core::mem::MaybeUninit::<u8>::uninit(); 256];
    let (target, _) = rustix::fs::readlinkat_raw(sys_block, name, &mut link).ok()?;
    let mut parts = target.rsplit(|&b| b == b'/');
    parts.next()?; // the partition itself
    Vec::from_slice(parts.next()?).ok()
}

/// Reads a small file relative to `dir` into `buf`; returns the length.
fn read_at(
    dir: rustix::fd::BorrowedFd<'_>,
    path: &core::ffi::CStr,
    buf: &mut [u8],
) -> rustix::io::Result<usize> {
    let fd = rustix::fs::openat(dir, path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    rustix::io::read(&fd, buf)
}

/// Reads from the start of `fd` until `buf` is full or the device ends.
pub fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> rustix::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match rustix::io::pread(fd, &mut buf[done..], done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Whether a USB mass-storage interface is bound, i.e. a stick may still be
/// on its way to becoming a block device.
fn usb_storage_present() -> bool {
    let Ok(dir) = rustix::fs::open(
        c"/sys/bus/usb/drivers/usb-storage",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut buf = [core::mem::MaybeUninit::<u8>::uninit(); 1024];
    let mut entries = RawDir::new(&dir, &mut buf);
    // Bound interfaces are named like `1-1:1.0`.
    while let Some(Ok(entry)) = entries.next() {
        if entry.file_name().to_bytes().contains(&b':') {
            return true;
        }
    }
    false
}

/// Scans until `found` returns something or `deadline_us` passes, sleeping
/// [`POLL_MS`] between scans; `give_up` may end the wait early (settled discovery).
pub fn wait_for<T>(
    devices: &mut Devices,
    deadline_us: u64,
    mut found: impl FnMut(&Devices) -> Option<T>,
    give_up: impl Fn(&Devices) -> bool,
) -> Option<T> {
    loop {
        devices.scan();
        if let Some(t) = found(devices) {
            return Some(t);
        }
        if crate::log::elapsed_us() >= deadline_us || give_up(devices) {
            return None;
        }
        sys::sleep_ms(POLL_MS);
    }
}
