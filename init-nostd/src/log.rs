//! Stage 1's only output: `k1os-init: ` lines on the console and in `/dev/kmsg`.
//!
//! A line written to `/dev/kmsg` is echoed to the console by the kernel itself
//! when its level is below the console log level (and then it carries a printk
//! timestamp, which the benchmarks read). So a line goes to `/dev/kmsg`, and to
//! the console directly only when the kernel would not print it there — never
//! twice. `quiet` lowers the console level to 4: info lines then stay in the
//! kernel log only, warnings and errors still reach the screen.

use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use k1os_contract::contract::LOG_PREFIX;
use rustix::fd::{BorrowedFd, IntoRawFd};
use rustix::fs::{Mode, OFlags};
use ufmt::{uDisplay, uWrite, uwrite};

use crate::sys;

/// Longest line; `/dev/kmsg` cuts at about 1 KiB anyway.
const LINE_MAX: usize = 480;
/// Console log level when `/proc/sys/kernel/printk` can't be read (kernel default).
const DEFAULT_CONSOLE_LEVEL: i32 = 7;

static KMSG_FD: AtomicI32 = AtomicI32::new(-1);
static CONSOLE_LEVEL: AtomicI32 = AtomicI32::new(DEFAULT_CONSOLE_LEVEL);
static DEBUG: AtomicBool = AtomicBool::new(false);
static START_US: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 3,
    Warn = 4,
    Info = 6,
    Debug = 7,
}

/// Remembers when stage 1 started; phase times are relative to it.
pub fn start_clock() {
    START_US.store(sys::monotonic_us(), Relaxed);
}

/// Microseconds since [`start_clock`].
pub fn elapsed_us() -> u64 {
    sys::monotonic_us().saturating_sub(START_US.load(Relaxed))
}

/// Once `/dev` and `/proc` are mounted: open `/dev/kmsg` and learn the
/// console log level. Before that, lines go to the console only.
pub fn open_kmsg() {
    if let Ok(fd) = rustix::fs::open(
        c"/dev/kmsg",
        OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        KMSG_FD.store(fd.into_raw_fd(), Relaxed);
    }
    let mut buf = [0u8; 16];
    if let Ok(fd) = rustix::fs::open(
        c"/proc/sys/kernel/printk",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) && let Ok(n) = rustix::io::read(&fd, &mut buf)
    {
        let digits = buf[..n].iter().take_while(|b| b.is_ascii_digit());
        let level = digits.fold(0i32, |acc, d| acc * 10 + (d - b'0') as i32);
        CONSOLE_LEVEL.store(level, Relaxed);
    }
}

pub fn set_debug(on: bool) {
    DEBUG.store(on, Relaxed);
}

/// Closes `/dev/kmsg` before stage 2 runs (it is close-on-exec too).
pub fn close_kmsg() {
    let fd = KMSG_FD.swap(-1, Relaxed);
    if fd >= 0 {
        // SAFETY: `fd` came from `into_raw_fd` in `open_kmsg` and was swapped
        // out, so nothing else owns or uses it.
        drop(unsafe { <rustix::fd::OwnedFd as rustix::fd::FromRawFd>::from_raw_fd(fd) });
    }
}

/// Text built with `uwrite!` into a fixed buffer; what does not fit is cut
/// (never fail a boot over a log line).
pub struct Text<const N: usize>(pub heapless::Vec<u8, N>);

impl<const N: usize> Text<N> {
    pub const fn new() -> Self {
        Text(heapless::Vec::new())
    }
}

impl<const N: usize> uWrite for Text<N> {
    type Error = core::convert::Infallible;
    fn write_str(&mut self, s: &str) -> Result<(), Self::Error> {
        let room = N - self.0.len();
        let _ = self.0.extend_from_slice(&s.as_bytes()[..s.len().min(room)]);
        Ok(())
    }
}

/// One log line: room for `<N>` in front, so the kmsg write is one record.
pub type Line = Text<{ LINE_MAX + 4 }>;

/// Writes one `k1os-init: ` line at `level`, with `body` filling in the text.
pub fn emit(level: Level, body: impl FnOnce(&mut Line)) {
    if level == Level::Debug && !DEBUG.load(Relaxed) {
        return;
    }
    let mut line = Line::new();
    let _ = line.0.extend_from_slice(&[b'<', b'0' + level as u8, b'>']);
    let _ = line.write_str(LOG_PREFIX);
    body(&mut line);
    if line.0.is_full() {
        line.0.pop();
    }
    let _ = line.0.push(b'\n');
    let console_level = CONSOLE_LEVEL.load(Relaxed);
    let kmsg = KMSG_FD.load(Relaxed);
    let kmsg_ok = kmsg >= 0 && {
        // SAFETY: `kmsg` is the descriptor `open_kmsg` stored and only
        // `close_kmsg` closes, after which it reads as -1.
        let fd = unsafe { BorrowedFd::borrow_raw(kmsg) };
        rustix::io::write(fd, &line.0).is_ok()
    };
    let kernel_echoes = kmsg_ok && (level as i32) < console_level;
    let wanted_on_console = level <= Level::Warn || console_level > Level::Warn as i32;
    if !kernel_echoes && wanted_on_console {
        sys::write_raw(1, &line.0[3..]);
    }
}

/// `info!("…", args)`: an info line.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Info, |l| { let _ = ufmt::uwrite!(l, $($arg)*); }) };
}
/// `warn!`: a warning line (also shown with `quiet`).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Warn, |l| { let _ = ufmt::uwrite!(l, $($arg)*); }) };
}
/// `debug!`: only with `k1os.debug`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log::emit($crate::log::Level::Debug, |l| { let _ = ufmt::uwrite!(l, $($arg)*); }) };
}

/// Logs a phase: `k1os-init: <phase> (+<µs> us): <detail>`; returns the µs.
pub fn phase(name: &str, detail: impl FnOnce(&mut Line)) -> u64 {
    let us = elapsed_us();
    emit(Level::Info, |l| {
        let _ = uwrite!(l, "{} (+{} us): ", name, us);
        detail(l);
    });
    us
}

/// Bytes shown as text: paths, labels and command-line values are bytes;
/// anything that is not printable ASCII is shown as `?`.
pub struct Bytes<'a>(pub &'a [u8]);

impl uDisplay for Bytes<'_> {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        for &b in self.0 {
            let printable = b.is_ascii_graphic() || b == b' ';
            f.write_char(if printable { b as char } else { '?' })?;
        }
        Ok(())
    }
}
