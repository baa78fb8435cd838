//! Stage 1's error: which step failed, on what (device or path), and why (an
//! errno, or a sentence when no system call failed).
//!
//! Like C's `errno`, the details of the latest failure are kept in one static
//! place, and an [`Error`] value stands for "the latest failure". That keeps
//! `Result<T, Error>` as small as `Option<T>`: with the ~200 bytes of details
//! inside it, every `?` copied them, about 6 KiB of stage 1's 16 KiB budget.
//! It works because stage 1 has one error in flight at a time: every error
//! goes straight up to `fatal` or to a RAM-mode warning, which reports it,
//! before anything else can fail.

use core::cell::UnsafeCell;
use k1os_contract::errno;
use k1os_contract::fmt::Bytes;
use rustix::io::Errno;
use ufmt::{uDisplay, uWrite, uwrite};

/// Longest device name or path kept in an error.
const SUBJECT_MAX: usize = 160;

/// A failed step; its details are in [`LATEST`] (see the module's doc).
pub struct Error(());

pub type Result<T> = core::result::Result<T, Error>;

/// The details of the latest failure. All zeros is "none yet", so the static
/// takes no room in the binary.
struct Details {
    /// What stage 1 was doing: "mount the boot media", "attach the image to a loop device", …
    step: Option<&'static str>,
    /// The device or path it was doing it to (may be empty): `subject[..subject_len]`.
    subject: [u8; SUBJECT_MAX],
    subject_len: usize,
    /// The system call's error (0: none failed).
    errno: u16,
    /// Why, in words, when no system call failed (or to add to the errno).
    why: Option<&'static str>,
}

struct Latest(UnsafeCell<Details>);

// SAFETY: stage 1 is single-threaded (PID 1 starts no threads and installs no
// signal handlers), so the cell is never used from two places at once.
unsafe impl Sync for Latest {}

static LATEST: Latest = Latest(UnsafeCell::new(Details {
    step: None,
    subject: [0; SUBJECT_MAX],
    subject_len: 0,
    errno: 0,
    why: None,
}));

impl Error {
    /// A failed system call during `step` on `subject`.
    #[inline(never)]
    pub fn sys(step: &'static str, subject: &[u8], errno: Errno) -> Error {
        Error::record(step, subject, errno.raw_os_error() as u16, "")
    }

    /// A failure that is not a system call's: `why` says what is wrong.
    #[inline(never)]
    pub fn msg(step: &'static str, subject: &[u8], why: &'static str) -> Error {
        Error::record(step, subject, 0, why)
    }

    /// A check that failed before the system call that would fail the same
    /// way: `why` in words, and the errno that call would have given.
    pub fn check(step: &'static str, subject: &[u8], why: &'static str, errno: Errno) -> Error {
        Error::record(step, subject, errno.raw_os_error() as u16, why)
    }

    /// The latest failure said again as `step: subject: why (ERRNO)`, its
    /// errno kept: for a failure whose cause is clearer one level up.
    #[inline(never)]
    pub fn explain(self, step: &'static str, subject: &[u8], why: &'static str) -> Error {
        // SAFETY: as in `Error::record`.
        let errno = unsafe { (*LATEST.0.get()).errno };
        Error::record(step, subject, errno, why)
    }

    /// A failure with both: `errno`, and `why` in words.
    pub fn record(step: &'static str, subject: &[u8], errno: u16, why: &'static str) -> Error {
        // SAFETY: single-threaded (see `Latest`), and no reference into the
        // cell lives beyond the function that made it.
        let latest = unsafe { &mut *LATEST.0.get() };
        latest.step = Some(step);
        latest.subject_len = 0;
        for (kept, &b) in latest.subject.iter_mut().zip(subject) {
            *kept = b;
            latest.subject_len += 1;
        }
        latest.errno = errno;
        latest.why = Some(why);
        Error(())
    }
}

/// `step: subject: why (ENAME)`.
impl uDisplay for Error {
    fn fmt<W: uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> core::result::Result<(), W::Error> {
        // SAFETY: as in `Error::record`; formatting records no error.
        let latest = unsafe { &*LATEST.0.get() };
        f.write_str(latest.step.unwrap_or_default())?;
        let subject = latest.subject.get(..latest.subject_len).unwrap_or_default();
        if !subject.is_empty() {
            uwrite!(f, ": {}", Bytes(subject))?;
        }
        let why = latest.why.unwrap_or_default();
        if !why.is_empty() {
            uwrite!(f, ": {}", why)?;
        }
        if latest.errno != 0 {
            uwrite!(
                f,
                " ({})",
                ErrnoName(Errno::from_raw_os_error(i32::from(latest.errno)))
            )?;
        }
        Ok(())
    }
}

/// `ENOENT`, or `errno 1234` for one the table does not know.
pub struct ErrnoName(pub Errno);

impl uDisplay for ErrnoName {
    fn fmt<W: uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> core::result::Result<(), W::Error> {
        let n = self.0.raw_os_error();
        match errno::name(n) {
            Some(name) => f.write_str(name),
            // Errno values are positive: the same digits as the `i32`, with
            // the one integer formatter the rest of stage 1 uses.
            None => uwrite!(f, "errno {}", n as u64),
        }
    }
}

/// `.step("mount the boot media", path)?` on a rustix result.
pub trait Context<T> {
    fn step(self, step: &'static str, subject: &[u8]) -> Result<T>;
}

impl<T> Context<T> for core::result::Result<T, Errno> {
    fn step(self, step: &'static str, subject: &[u8]) -> Result<T> {
        self.map_err(|e| Error::sys(step, subject, e))
    }
}
