//! Small file helpers for the configuration and the stored indexes: atomic
//! replacement and reading with a size cap.
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Context, Error, Result};

/// Replaces `path` with `bytes` so that a crash leaves the old or the new
/// content, never a mix: a temporary file in the same directory, fsync,
/// rename over `path`, fsync of the directory. The temporary name is fixed
/// (`.NAME.tmp`): callers hold warp's lock, so there is one writer, and a
/// temporary left by a crash is simply overwritten by the next write.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| Error::failure(format!("{}: no parent directory", path.display())))?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::failure(format!("{}: not a file name", path.display())))?;
    fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)
            .ctx(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .ctx(|| format!("writing {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("syncing {}", tmp.display()))?;
        fs::rename(&tmp, path).ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Makes a rename or unlink in `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing directory {}", dir.display()))
}

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
    fn atomic_and_capped() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("etc/warp/repositories");
        write_atomic(&p, b"one\n", 0o644).unwrap();
        write_atomic(&p, b"two\n", 0o644).unwrap();
        assert_eq!(read_capped(&p, 4).unwrap().unwrap(), b"two\n");
        assert!(read_capped(&p, 3).is_err());
        assert!(read_capped(&d.path().join("none"), 3).unwrap().is_none());
        let names: Vec<_> = fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["repositories"]);
    }
}
