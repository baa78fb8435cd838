//! The file-system steps the engine repeats: replacing a small file
//! atomically, making a directory entry durable, flushing a whole file
//! system, and looking at a path without following a symlink.
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Context, Error, Result};

/// What is at a path, not following a symlink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Missing,
    Dir,
    File,
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

impl Found {
    pub fn describe(self) -> &'static str {
        match self {
            Found::Missing => "nothing",
            Found::Dir => "a directory",
            Found::File => "a file",
            Found::Symlink => "a symlink",
            Found::Other => "a device, FIFO or socket",
        }
    }
}

/// `lstat`: what is at `path` (a missing path, or one under a missing or
/// non-directory parent, is [`Found::Missing`]).
pub fn found(path: &Path) -> Result<Found> {
    match fs::symlink_metadata(path) {
        Ok(m) => {
            let t = m.file_type();
            Ok(if t.is_symlink() {
                Found::Symlink
            } else if t.is_dir() {
                Found::Dir
            } else if t.is_file() {
                Found::File
            } else {
                Found::Other
            })
        }
        Err(e) if is_missing(&e) => Ok(Found::Missing),
        Err(e) => Err(e).ctx(|| format!("looking at {}", path.display())),
    }
}

/// ENOENT, or ENOTDIR (a component of the path is not a directory, so the
/// path cannot exist either).
pub fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20)
}

/// The temporary name [`atomic_write`] uses beside `path`. Not `.warp-*`:
/// those are the transaction's staged package files.
pub fn atomic_temp(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the
/// new content: a temporary file in the same directory, fsync, rename,
/// fsync of the directory. Creates the directory when needed.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    let tmp = atomic_temp(path);
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&tmp);
        return Err(e).ctx(|| format!("writing {}", tmp.display()));
    }
    fs::rename(&tmp, path).ctx(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    fsync_dir(dir)
}

/// Makes the entries of `dir` (a rename, a new or removed name) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("syncing directory {}", dir.display()))
}

/// Removes a file or symlink; a missing one is fine (so every step can be
/// redone by recovery). `true` when something was removed.
pub fn remove_file(path: &Path) -> Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if is_missing(&e) => Ok(false),
        Err(e) => Err(e).ctx(|| format!("removing {}", path.display())),
    }
}

/// Removes an empty directory; a missing one, or one that still holds
/// something (a user's file, another package's), is left without error.
/// `true` when it was removed.
pub fn remove_empty_dir(path: &Path) -> Result<bool> {
    match fs::remove_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if is_missing(&e) => Ok(false),
        // ENOTEMPTY (39), EEXIST (17, some file systems say so for a
        // non-empty directory).
        Err(e) if matches!(e.raw_os_error(), Some(39) | Some(17)) => Ok(false),
        Err(e) => Err(e).ctx(|| format!("removing directory {}", path.display())),
    }
}

/// Reads a whole file; `None` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e).ctx(|| format!("reading {}", path.display())),
    }
}

/// Flushes every file system that package files under `root` live on:
/// the root's, and those of `usr/local` and `opt` when they are other mounts
/// (a rename is only durable once its file system is synced).
pub fn sync_roots(root: &Path) -> Result<()> {
    let mut devices = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    for r in warp_format::paths::ROOTS {
        dirs.push(root.join(r));
    }
    for dir in dirs {
        let Ok(meta) = fs::metadata(&dir) else {
            continue;
        };
        if devices.contains(&meta.dev()) {
            continue;
        }
        devices.push(meta.dev());
        let d = fs::File::open(&dir).ctx(|| format!("opening {}", dir.display()))?;
        rustix::fs::syncfs(&d)
            .map_err(io::Error::from)
            .ctx(|| format!("syncing the file system of {}", dir.display()))?;
    }
    Ok(())
}

/// Bytes available to an unprivileged writer on the file system of `path`.
pub fn free_bytes(path: &Path) -> Result<u64> {
    let st = rustix::fs::statvfs(path)
        .map_err(io::Error::from)
        .ctx(|| format!("statvfs {}", path.display()))?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A JSON parse error that names the file and says what to do.
pub fn corrupt(path: &Path, e: serde_json::Error) -> Error {
    Error::failure(format!(
        "{}: corrupt ({e}); warp will not guess its content: restore it or remove it by hand",
        path.display()
    ))
}
