//! warp's one error type: a message that names the package, file or URL and
//! the reason, and the exit status that says what kind of failure it was
//! (documented in `warp --help` and docs/warp.md).
use std::fmt;
use std::io;

/// What kind of failure; its number is warp's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// Anything else (I/O, a broken database).
    Failure = 1,
    /// The command line is wrong.
    Usage = 2,
    /// A repository could not be reached or answered wrongly.
    Network = 3,
    /// A signature, hash, size, serial or archive check failed.
    Integrity = 4,
    /// Dependencies cannot be resolved (unknown package, unmet version).
    Resolution = 5,
    /// Two packages, or a package and the image, want the same path.
    Conflict = 6,
    /// Not enough free space (checked before writing, or ENOSPC).
    NoSpace = 7,
    /// Another warp holds the lock.
    Locked = 8,
}

#[derive(Debug)]
pub struct Error {
    pub code: Code,
    pub msg: String,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: Code, msg: impl Into<String>) -> Error {
        Error {
            code,
            msg: msg.into(),
        }
    }
    pub fn failure(msg: impl Into<String>) -> Error {
        Error::new(Code::Failure, msg)
    }
    pub fn usage(msg: impl Into<String>) -> Error {
        Error::new(Code::Usage, msg)
    }
    pub fn network(msg: impl Into<String>) -> Error {
        Error::new(Code::Network, msg)
    }
    pub fn integrity(msg: impl Into<String>) -> Error {
        Error::new(Code::Integrity, msg)
    }
    pub fn resolution(msg: impl Into<String>) -> Error {
        Error::new(Code::Resolution, msg)
    }
    pub fn conflict(msg: impl Into<String>) -> Error {
        Error::new(Code::Conflict, msg)
    }
    pub fn no_space(msg: impl Into<String>) -> Error {
        Error::new(Code::NoSpace, msg)
    }
    pub fn locked(msg: impl Into<String>) -> Error {
        Error::new(Code::Locked, msg)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

/// Adds what was being done to an I/O error: `writing /var/lib/warp/x: No
/// space left on device`. ENOSPC and EDQUOT become [`Code::NoSpace`].
pub trait Context<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let code = match e.raw_os_error() {
                Some(28) | Some(122) => Code::NoSpace, // ENOSPC, EDQUOT
                _ => Code::Failure,
            };
            Error::new(code, format!("{}: {e}", what()))
        })
    }
}
