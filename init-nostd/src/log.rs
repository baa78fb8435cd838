//! Stage 1's only output: `k1os-init: ` lines on the console and in `/dev/kmsg`.
//!
//! A line written to `/dev/kmsg` is echoed to the console by the kernel itself
//! when its level is below the console log level (and then it carries a printk
//! timestamp, which the benchmarks read). So a line goes to `/dev/kmsg`, and to
//! the console directly only when the kernel would not print it there — never
//! twice. `quiet` lowers the console level to 4: info lines then stay in the
//! kernel log only, warnings and errors still reach the screen.
//!
//! Each line opens `/dev/kmsg` anew: the kernel rate-limits every open
//! `/dev/kmsg` file to 10 lines per 5 s (`printk.devkmsg=ratelimit`, the
//! default) and silently drops the rest while reporting success — with one
//! descriptor, a boot with a few warnings would lose its last lines, the
//! `exec` marker among them.

use core::ffi::CStr;
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering::Relaxed};
use k1os_contract::contract::{self, LOG_PREFIX};
use rustix::fs::{Mode, OFlags};

use crate::sys;
use crate::text::{Buf, Text, is_concat};

/// Longest line; `/dev/kmsg` cuts at about 1 KiB anyway.
const LINE_MAX: usize = 480;
/// Console log level when `/proc/sys/kernel/printk` can't be read (kernel default).
const DEFAULT_CONSOLE_LEVEL: i32 = 7;

/// The kernel log.
const KMSG: &CStr = c"/dev/kmsg";
/// Where it is between moving `/dev` into the new root and the `chroot`.
const KMSG_IN_NEW_ROOT: &CStr = c"/newroot/dev/kmsg";
const _: () = assert!(is_concat(
    KMSG_IN_NEW_ROOT.to_bytes(),
    &[contract::NEW_ROOT.as_bytes(), KMSG.to_bytes()]
));

static KMSG_READY: AtomicBool = AtomicBool::new(false);
/// `/dev` has been moved into the new root: use [`KMSG_IN_NEW_ROOT`].
static KMSG_UNDER_NEW_ROOT: AtomicBool = AtomicBool::new(false);
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
#[inline(never)]
pub fn elapsed_us() -> u64 {
    sys::monotonic_us().saturating_sub(START_US.load(Relaxed))
}

/// Once `/dev` and `/proc` are mounted: use `/dev/kmsg` from now on and learn
/// the console log level. Before that, lines go to the console only.
pub fn open_kmsg() {
    KMSG_READY.store(true, Relaxed);
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

/// Follows `/dev` into the new root (`true` once moved, `false` after `chroot`).
pub fn kmsg_under_new_root(moved: bool) {
    KMSG_UNDER_NEW_ROOT.store(moved, Relaxed);
}

pub fn set_debug(on: bool) {
    DEBUG.store(on, Relaxed);
}

/// Room for one line: `<N>`, the text (cut at [`LINE_MAX`]), the newline.
pub const LINE_BUF: usize = LINE_MAX + 4;

/// One log line being written: `uwrite!(line.text, …)`, then [`Line::end`].
pub struct Line<'a> {
    pub text: Text<'a>,
    level: Level,
}

impl<'a> Line<'a> {
    /// Starts a `k1os-init: ` line at `level` in `buf`, with room in front
    /// for `<N>` so that the kmsg write is one record.
    #[inline(never)]
    pub fn new(buf: &'a mut Buf<LINE_BUF>, level: Level) -> Self {
        let mut text = Text::new(buf);
        text.push(&[b'<', b'0' + level as u8, b'>']);
        text.push(LOG_PREFIX.as_bytes());
        Line { text, level }
    }

    /// Writes the line: to `/dev/kmsg`, and to the console when the kernel
    /// will not echo it there. A debug line without `k1os.debug` goes nowhere.
    // `&mut self`: taken by value, the line would be copied at every call site.
    #[inline(never)]
    pub fn end(&mut self) {
        let level = self.level;
        if level == Level::Debug && !DEBUG.load(Relaxed) {
            return;
        }
        if self.text.is_full() {
            self.text.pop();
        }
        self.text.push(b"\n");
        let line = self.text.bytes();
        let console_level = CONSOLE_LEVEL.load(Relaxed);
        let kmsg = if KMSG_UNDER_NEW_ROOT.load(Relaxed) {
            KMSG_IN_NEW_ROOT
        } else {
            KMSG
        };
        let kmsg_ok = KMSG_READY.load(Relaxed)
            && rustix::fs::open(kmsg, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
                .is_ok_and(|fd| rustix::io::write(&fd, line).is_ok());
        let kernel_echoes = kmsg_ok && (level as i32) < console_level;
        let wanted_on_console = level <= Level::Warn || console_level > Level::Warn as i32;
        if !kernel_echoes && wanted_on_console {
            sys::write_raw(1, line.get(3..).unwrap_or_default());
        }
    }
}

/// A line at a level: `log_line!(Info, "…", args)`; use `info!`, `warn!`, `debug!`.
/// (A macro, not a function taking a closure: a generic function would be
/// compiled again for every call site.)
#[macro_export]
macro_rules! log_line {
    ($level:ident, $($arg:tt)*) => {{
        let mut buf = $crate::text::buf::<{ $crate::log::LINE_BUF }>();
        let mut line = $crate::log::Line::new(&mut buf, $crate::log::Level::$level);
        let _ = ufmt::uwrite!(line.text, $($arg)*);
        line.end();
    }};
}
/// `info!("…", args)`: an info line.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log_line!(Info, $($arg)*) };
}
/// `warn!`: a warning line (also shown with `quiet`).
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log_line!(Warn, $($arg)*) };
}
/// `debug!`: only with `k1os.debug`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log_line!(Debug, $($arg)*) };
}

/// Starts a phase's line: `k1os-init: <phase> (+<µs> us): `
/// ([`contract::phase::write_head`]), the detail to follow; returns it and the µs.
pub fn phase<'a>(buf: &'a mut Buf<LINE_BUF>, name: &str) -> (Line<'a>, u64) {
    let us = elapsed_us();
    let mut line = Line::new(buf, Level::Info);
    let _ = contract::phase::write_head(&mut line.text, name, us);
    (line, us)
}
