//! Reading the small files warp trusts only so far — repository lists,
//! keys, stored indexes and signatures — with a size cap. (Writing them
//! goes through `fsutil::atomic_write`.)
use std::fs;
use std::io::Read;
use std::path::Path;

use crate::error::{Context, Error, Result};

/// Reads `path` if it exists, refusing more than `cap` bytes (a file that
/// should be small but is not is damage or an attack, not something to
/// load into memory).
pub fn read_capped(path: &Path, cap: u64) -> Result<Option<Vec<u8>>> {
    let f = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("reading {}", path.display())),
    };
    let mut bytes = Vec::new();
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .ctx(|| format!("reading {}", path.display()))?;
    if bytes.len() as u64 > cap {
        return Err(Error::failure(format!(
            "{}: larger than {cap} bytes",
            path.display()
        )));
    }
    Ok(Some(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("repositories");
        fs::write(&p, b"two\n").unwrap();
        assert_eq!(read_capped(&p, 4).unwrap().unwrap(), b"two\n");
        let e = read_capped(&p, 3).unwrap_err();
        assert!(
            e.msg.contains("repositories: larger than 3 bytes"),
            "{}",
            e.msg
        );
        assert!(read_capped(&d.path().join("none"), 3).unwrap().is_none());
    }
}
