//! Bytes built up on the stack (no allocator in stage 1): log lines, paths,
//! mount options, the boot record.
//!
//! One writer type for all of them, over a buffer the caller owns, so that
//! every `uDisplay` impl and every `uwrite!` helper is compiled once instead
//! of once per buffer size.

use core::ffi::CStr;
use core::mem::MaybeUninit;
use rustix::io::Errno;
use ufmt::uWrite;

/// Longest path stage 1 builds (`/run/k1os/media` + `k1os.image`, `.` + `init=`),
/// with its NUL.
pub const PATH_MAX: usize = 256;

/// A buffer for [`Text::new`]; it needs no initialisation.
pub type Buf<const N: usize> = [MaybeUninit<u8>; N];

/// A new, uninitialised [`Buf`].
pub const fn buf<const N: usize>() -> Buf<N> {
    [MaybeUninit::uninit(); N]
}

/// Bytes written into a caller's buffer. What does not fit is cut, and
/// remembered: a log line is still written, a path is refused.
pub struct Text<'a> {
    buf: &'a mut [MaybeUninit<u8>],
    /// `buf[..len]` has been written.
    len: usize,
    /// Why the text cannot be a path: the first NUL byte (`EINVAL`) or
    /// overflow (`ENAMETOOLONG`), whichever came first.
    error: Option<Errno>,
}

impl<'a> Text<'a> {
    // Out of line (here and in `into_c_str`): measured smaller.
    #[inline(never)]
    pub fn new(buf: &'a mut [MaybeUninit<u8>]) -> Self {
        Text {
            buf,
            len: 0,
            error: None,
        }
    }

    /// Appends `bytes`, as many as fit.
    // One copy of this loop for the whole binary: inlined, it is repeated at
    // every `uwrite!` piece.
    #[inline(never)]
    pub fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == 0 {
                self.error.get_or_insert(Errno::INVAL);
            }
            let Some(slot) = self.buf.get_mut(self.len) else {
                self.error.get_or_insert(Errno::NAMETOOLONG);
                return;
            };
            slot.write(b);
            self.len += 1;
        }
    }

    /// Removes the last byte (to make room for a line's newline).
    pub fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Whether every byte of the buffer is used.
    pub fn is_full(&self) -> bool {
        self.len == self.buf.len()
    }

    /// The bytes written, keeping the buffer's lifetime.
    pub fn into_bytes(self) -> &'a [u8] {
        // SAFETY: as in `bytes`.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast(), self.len) }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: `push` wrote `buf[..len]` (`len` never exceeds the buffer),
        // so these bytes are initialised.
        unsafe { core::slice::from_raw_parts(self.buf.as_ptr().cast(), self.len) }
    }

    /// The text as a C string (a NUL is appended): `ENAMETOOLONG` when it or
    /// its NUL did not fit, `EINVAL` when it holds a NUL byte.
    pub fn into_c_str(self) -> Result<&'a CStr, Errno> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let buf = self.buf;
        let Some(nul) = buf.get_mut(self.len) else {
            return Err(Errno::NAMETOOLONG);
        };
        nul.write(0);
        // SAFETY: `buf[..len]` is initialised and holds no NUL (`push` records
        // one as an error, checked above); `buf[len]` is the NUL just written.
        Ok(unsafe {
            CStr::from_bytes_with_nul_unchecked(core::slice::from_raw_parts(
                buf.as_ptr().cast(),
                self.len + 1,
            ))
        })
    }
}

impl uWrite for Text<'_> {
    type Error = core::convert::Infallible;
    fn write_str(&mut self, s: &str) -> Result<(), Self::Error> {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// The concatenation of `parts` as a C string in `buf` (see [`Text::into_c_str`]).
#[inline(never)]
pub fn join<'a>(buf: &'a mut Buf<PATH_MAX>, parts: &[&[u8]]) -> Result<&'a CStr, Errno> {
    let mut text = Text::new(buf);
    for part in parts {
        text.push(part);
    }
    text.into_c_str()
}

/// Whether `whole` is the concatenation of `parts`, at compile time: stage 1
/// keeps a few fixed paths and keys as constants or literals, checked against
/// the contract's parts they are made of.
pub const fn is_concat(whole: &[u8], parts: &[&[u8]]) -> bool {
    let mut at = 0;
    let mut p = 0;
    while p < parts.len() {
        let part = parts[p];
        let mut i = 0;
        while i < part.len() {
            if at >= whole.len() || whole[at] != part[i] {
                return false;
            }
            at += 1;
            i += 1;
        }
        p += 1;
    }
    at == whole.len()
}
