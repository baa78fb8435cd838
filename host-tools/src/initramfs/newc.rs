//! The newc (SVR4 "new ASCII") cpio writer of the initramfs: sorted,
//! owners 0, one mtime, so the same entries give the same bytes.
//!
//! Self-contained on purpose (std, `anyhow` and `cpio` only): the fuzz
//! target `fuzz/fuzz_targets/initramfs.rs` compiles this file on its own, so
//! fuzzing it does not build the whole of host-tools.
use anyhow::{Context, Result, ensure};
use std::io::Write;

/// What an archive entry is.
#[derive(Clone, Debug)]
pub enum Kind {
    Dir,
    File(Vec<u8>),
    /// A character device node (`/dev/console` is 5:1).
    CharDev(u32, u32),
    Symlink(String),
}

/// One entry of a newc archive, by path relative to the archive root.
#[derive(Clone, Debug)]
pub struct Entry {
    pub path: String,
    pub mode: u32,
    pub kind: Kind,
}

impl Entry {
    pub fn dir(path: &str) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o755,
            kind: Kind::Dir,
        }
    }
    pub fn file(path: &str, mode: u32, data: Vec<u8>) -> Entry {
        Entry {
            path: path.into(),
            mode,
            kind: Kind::File(data),
        }
    }
    pub fn char_dev(path: &str, mode: u32, major: u32, minor: u32) -> Entry {
        Entry {
            path: path.into(),
            mode,
            kind: Kind::CharDev(major, minor),
        }
    }
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry {
            path: path.into(),
            mode: 0o777,
            kind: Kind::Symlink(target.into()),
        }
    }
}

/// The name that ends a newc archive: the kernel stops unpacking there.
const TRAILER: &str = "TRAILER!!!";

/// Writes a newc archive of `entries`: sorted by path (so the order never
/// depends on how they were listed), uid/gid 0, every mtime `mtime`, inode
/// numbers in order. Same entries, same bytes. A path listed twice, or one
/// the kernel would not unpack as written, is an error naming it.
pub fn write_newc(mut entries: Vec<Entry>, mtime: u32) -> Result<Vec<u8>> {
    // Names are NUL-terminated in the archive: one with a NUL would be cut
    // short there (and "a\0" read back as "a"); an empty one is silently
    // skipped by the kernel; `TRAILER!!!` would end the archive early.
    for entry in &entries {
        let why = if entry.path.is_empty() {
            "an empty path"
        } else if entry.path.contains('\0') {
            "a NUL in the path (the name would end there)"
        } else if entry.path == TRAILER {
            "the name that ends a newc archive (nothing after it would be unpacked)"
        } else {
            continue;
        };
        anyhow::bail!("initramfs entry {:?}: {why}", entry.path);
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    for pair in entries.windows(2) {
        ensure!(
            pair[0].path != pair[1].path,
            "initramfs entry `{}` is listed twice",
            pair[0].path
        );
    }
    let mut out = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let (type_bits, data, rdev): (u32, &[u8], (u32, u32)) = match &entry.kind {
            Kind::Dir => (0o040000, &[], (0, 0)),
            Kind::File(data) => (0o100000, data, (0, 0)),
            Kind::CharDev(major, minor) => (0o020000, &[], (*major, *minor)),
            Kind::Symlink(target) => (0o120000, target.as_bytes(), (0, 0)),
        };
        let size = u32::try_from(data.len())
            .with_context(|| format!("{} is larger than 4 GiB", entry.path))?;
        let nlink = if matches!(entry.kind, Kind::Dir) {
            2
        } else {
            1
        };
        let mut writer = cpio::newc::Builder::new(&entry.path)
            .ino(i as u32 + 1)
            .mode(type_bits | (entry.mode & 0o7777))
            .uid(0)
            .gid(0)
            .nlink(nlink)
            .mtime(mtime)
            .rdev_major(rdev.0)
            .rdev_minor(rdev.1)
            .write(&mut out, size);
        // A short write followed by finish() would silently corrupt the archive.
        writer.write_all(data)?;
        writer.finish()?;
    }
    // Writes the `TRAILER!!!` entry.
    cpio::newc::trailer(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        vec![
            Entry::file("init", 0o755, b"\x7fELF".to_vec()),
            Entry::dir("dev"),
            Entry::char_dev("dev/console", 0o600, 5, 1),
        ]
    }

    #[test]
    fn archive_is_sorted_and_reproducible() {
        let a = write_newc(sample(), 1234).unwrap();
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(a, write_newc(reversed, 1234).unwrap());
        let mut names = Vec::new();
        let mut rest = &a[..];
        loop {
            let reader = cpio::newc::Reader::new(rest).unwrap();
            if reader.entry().is_trailer() {
                break;
            }
            let e = reader.entry();
            names.push((
                e.name().to_string(),
                e.mode(),
                e.uid(),
                e.mtime(),
                e.rdev_major(),
                e.rdev_minor(),
            ));
            rest = reader.finish().unwrap();
        }
        assert_eq!(
            names,
            vec![
                ("dev".to_string(), 0o040755, 0, 1234, 0, 0),
                ("dev/console".to_string(), 0o020600, 0, 1234, 5, 1),
                ("init".to_string(), 0o100755, 0, 1234, 0, 0),
            ]
        );
    }

    /// Found by the fuzz target (fuzz/fuzz_targets/initramfs.rs): an empty
    /// name and names with a NUL were written, and "\0" read back as "".
    #[test]
    fn names_the_kernel_would_misread_are_an_error() {
        for (path, why) in [
            ("", "an empty path"),
            ("\0", "a NUL in the path"),
            ("<\0", "a NUL in the path"),
            ("dev\0/console", "a NUL in the path"),
            ("TRAILER!!!", "the name that ends a newc archive"),
        ] {
            let mut e = sample();
            e.push(Entry::file(path, 0o644, b"x".to_vec()));
            let err = write_newc(e, 0).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{path:?}")) && err.contains(why),
                "{err}"
            );
        }
        // Names that merely look odd are fine.
        let mut e = sample();
        e.push(Entry::file("TRAILER!!!x", 0o644, vec![]));
        e.push(Entry::file(" ", 0o644, vec![]));
        write_newc(e, 0).unwrap();
    }

    #[test]
    fn duplicate_entries_are_an_error() {
        let mut e = sample();
        e.push(Entry::dir("dev"));
        let err = write_newc(e, 0).unwrap_err().to_string();
        assert!(err.contains("`dev` is listed twice"), "{err}");
    }
}
