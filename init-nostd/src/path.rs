//! NUL-terminated paths built on the stack (no allocator in stage 1).

use core::ffi::CStr;
use rustix::io::Errno;

/// Longest path stage 1 builds (`/run/k1os/media` + `k1os.image`, `/newroot` + `init=`).
const PATH_MAX: usize = 256;

pub struct PathBuf {
    /// The path's bytes followed by one NUL.
    buf: heapless::Vec<u8, PATH_MAX>,
}

impl PathBuf {
    /// The concatenation of `parts`; `ENAMETOOLONG` when it does not fit,
    /// `EINVAL` when a part holds a NUL byte.
    pub fn join(parts: &[&[u8]]) -> Result<PathBuf, Errno> {
        let mut buf = heapless::Vec::new();
        for part in parts {
            if part.contains(&0) {
                return Err(Errno::INVAL);
            }
            buf.extend_from_slice(part)
                .map_err(|_| Errno::NAMETOOLONG)?;
        }
        buf.push(0).map_err(|_| Errno::NAMETOOLONG)?;
        Ok(PathBuf { buf })
    }

    pub fn as_cstr(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.buf).unwrap_or_default()
    }

    /// The path without its NUL, for messages.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.buf.len() - 1]
    }
}
