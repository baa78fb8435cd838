//! Stage 1's error: which step failed, on what (device or path), and why (an
//! errno, or a sentence when no system call failed).

use heapless::Vec;
use k1os_contract::cmdline::Bytes;
use k1os_contract::errno;
use rustix::io::Errno;
use ufmt::{uDisplay, uWrite, uwrite};

/// Longest device name or path kept in an error.
const SUBJECT_MAX: usize = 160;

pub struct Error {
    /// What stage 1 was doing: "mount the boot media", "attach the image to a loop device", …
    pub step: &'static str,
    /// The device or path it was doing it to (may be empty).
    pub subject: Vec<u8, SUBJECT_MAX>,
    /// The system call's error, when one failed.
    pub errno: Option<Errno>,
    /// Why, in words, when no system call failed (or to add to the errno).
    pub why: &'static str,
}

pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// A failed system call during `step` on `subject`.
    #[inline(never)]
    pub fn sys(step: &'static str, subject: &[u8], errno: Errno) -> Error {
        Error::new(step, subject, Some(errno), "")
    }

    /// A failure that is not a system call's: `why` says what is wrong.
    #[inline(never)]
    pub fn msg(step: &'static str, subject: &[u8], why: &'static str) -> Error {
        Error::new(step, subject, None, why)
    }

    fn new(step: &'static str, subject: &[u8], errno: Option<Errno>, why: &'static str) -> Error {
        let mut kept = Vec::new();
        let _ = kept.extend_from_slice(subject.get(..SUBJECT_MAX).unwrap_or(subject));
        Error {
            step,
            subject: kept,
            errno,
            why,
        }
    }
}

/// `step: subject: why (ENAME)`.
impl uDisplay for Error {
    fn fmt<W: uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> core::result::Result<(), W::Error> {
        f.write_str(self.step)?;
        if !self.subject.is_empty() {
            uwrite!(f, ": {}", Bytes(&self.subject))?;
        }
        if !self.why.is_empty() {
            uwrite!(f, ": {}", self.why)?;
        }
        if let Some(e) = self.errno {
            uwrite!(f, " ({})", ErrnoName(e))?;
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
