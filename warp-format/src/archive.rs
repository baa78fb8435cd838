//! The `.warp` archive: a tar stream (compressed with zstd by the caller)
//! whose first member is [`manifest::PATH`](crate::manifest::PATH) and whose
//! other members are exactly the manifest's entries, in its order. Written
//! reproducibly (owner 0, one mtime, sorted entries); read with every entry
//! checked against the manifest — path, type, mode, size and sha256 — and
//! nothing unpacked by the tar crate itself (its `unpack_in` silently skips
//! or rewrites bad paths; here a bad entry refuses the whole package).
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::manifest::{self, FileEntry, Kind, Manifest};
use crate::paths;

/// Why an archive was refused: an I/O error, or a rule it breaks (the
/// message names the entry).
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    Bad(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io(e) => write!(f, "{e}"),
            Error::Bad(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

fn bad<T>(why: String) -> Result<T, Error> {
    Err(Error::Bad(why))
}

// ---------------------------------------------------------------- writing

/// The entries of a package's output tree `root`, sorted by path (so every
/// directory comes before what it holds): its files hashed, its symlinks'
/// targets read. Fails on what a package cannot hold (device nodes, FIFOs,
/// sockets, hard links, setuid bits) and on anything outside
/// [`paths::ROOTS`], naming the path.
pub fn scan(root: &Path) -> Result<Vec<FileEntry>, Error> {
    let mut out = Vec::new();
    scan_dir(root, "", &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    for e in &out {
        e.check().map_err(Error::Bad)?;
    }
    Ok(out)
}

fn scan_dir(root: &Path, rel: &str, out: &mut Vec<FileEntry>) -> Result<(), Error> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let mut names: Vec<String> = Vec::new();
    for e in fs::read_dir(&dir)? {
        let name = e?.file_name();
        let Some(name) = name.to_str() else {
            return bad(format!(
                "{}: a name that is not UTF-8: {name:?}",
                dir.display()
            ));
        };
        names.push(name.to_string());
    }
    names.sort();
    for name in names {
        let path = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        let full = root.join(&path);
        let meta = fs::symlink_metadata(&full)?;
        let mode = meta.permissions().mode() & 0o7777;
        let ft = meta.file_type();
        let entry = if ft.is_dir() {
            FileEntry {
                path: path.clone(),
                kind: Kind::Dir,
                mode,
                size: 0,
                sha256: String::new(),
                target: String::new(),
            }
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                return bad(format!("`{path}`: a hard link (packages hold plain files)"));
            }
            let mut h = Sha256::new();
            io::copy(&mut fs::File::open(&full)?, &mut h)?;
            FileEntry {
                path: path.clone(),
                kind: Kind::File,
                mode,
                size: meta.len(),
                sha256: crate::hex(&h.finalize()),
                target: String::new(),
            }
        } else if ft.is_symlink() {
            let target = fs::read_link(&full)?;
            let Some(target) = target.to_str() else {
                return bad(format!("`{path}`: a link target that is not UTF-8"));
            };
            FileEntry {
                path: path.clone(),
                kind: Kind::Symlink,
                mode: 0o777,
                size: 0,
                sha256: String::new(),
                target: target.to_string(),
            }
        } else {
            return bad(format!(
                "`{path}`: a device, FIFO or socket (packages hold files, directories and symlinks)"
            ));
        };
        // `usr` itself is listed (it is above the roots) but nothing else
        // outside them: scan only what can hold package files.
        let descend = entry.kind == Kind::Dir;
        out.push(entry);
        if descend {
            scan_dir(root, &path, out)?;
        }
    }
    Ok(())
}

fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(mtime);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// Writes the archive of `manifest` (whose entries come from `root`, as
/// [`scan`] found them) as an uncompressed tar stream to `out`, every
/// timestamp `mtime`. The same inputs give the same bytes.
pub fn write<W: Write>(out: W, manifest: &Manifest, root: &Path, mtime: u64) -> Result<W, Error> {
    manifest.check().map_err(Error::Bad)?;
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    let bytes = manifest.to_bytes();
    let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64, mtime);
    tar.append_data(&mut h, manifest::PATH, &bytes[..])?;
    for f in &manifest.files {
        match f.kind {
            Kind::Dir => {
                let mut h = header(tar::EntryType::Directory, f.mode, 0, mtime);
                tar.append_data(&mut h, &f.path, io::empty())?;
            }
            Kind::File => {
                let file = fs::File::open(root.join(&f.path))?;
                let mut h = header(tar::EntryType::Regular, f.mode, f.size, mtime);
                tar.append_data(&mut h, &f.path, file.take(f.size))?;
            }
            Kind::Symlink => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0, mtime);
                tar.append_link(&mut h, &f.path, &f.target)?;
            }
        }
    }
    Ok(tar.into_inner()?)
}

// ---------------------------------------------------------------- reading

/// Where [`unpack`] puts entries: warp stages them under temporary names;
/// `verify` only counts.
pub trait Sink {
    fn dir(&mut self, entry: &FileEntry) -> io::Result<()>;
    /// `data` yields the file's bytes (at most `entry.size`); the sink reads
    /// it to the end. The hash is checked after it returns.
    fn file(&mut self, entry: &FileEntry, data: &mut dyn Read) -> io::Result<()>;
    fn symlink(&mut self, entry: &FileEntry) -> io::Result<()>;
}

/// The manifest, read from the archive's first member (an uncompressed tar
/// stream) and checked.
pub fn read_manifest<R: Read>(r: R) -> Result<Manifest, Error> {
    let mut ar = tar::Archive::new(r);
    let mut entries = ar.entries()?;
    let Some(first) = entries.next() else {
        return bad("an empty archive (no manifest)".into());
    };
    read_manifest_entry(first?)
}

fn read_manifest_entry<R: Read>(mut e: tar::Entry<'_, R>) -> Result<Manifest, Error> {
    let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
    if path != manifest::PATH || e.header().entry_type() != tar::EntryType::Regular {
        return bad(format!(
            "the first member is `{path}`, not {}",
            manifest::PATH
        ));
    }
    if e.size() > manifest::MAX_SIZE {
        return bad(format!(
            "{} is larger than {} bytes",
            manifest::PATH,
            manifest::MAX_SIZE
        ));
    }
    let mut bytes = Vec::new();
    (&mut e).take(manifest::MAX_SIZE).read_to_end(&mut bytes)?;
    Manifest::parse(&bytes).map_err(Error::Bad)
}

/// Reads the whole archive (an uncompressed tar stream), checking that its
/// manifest is `expected` and that every member is the manifest's next entry
/// — same path, type, mode; a file's size and sha256; a symlink's target —
/// and hands each to `sink`. Hard links, devices, FIFOs, members not in the
/// manifest, missing members and trailing members are refused, naming the
/// entry.
pub fn unpack<R: Read>(r: R, expected: &Manifest, sink: &mut dyn Sink) -> Result<(), Error> {
    let mut ar = tar::Archive::new(r);
    let mut entries = ar.entries()?;
    let Some(first) = entries.next() else {
        return bad("an empty archive (no manifest)".into());
    };
    let m = read_manifest_entry(first?)?;
    if &m != expected {
        return bad(format!(
            "the archive's manifest is not the one expected for {} {}",
            expected.name, expected.version
        ));
    }
    let mut want = expected.files.iter();
    for e in entries {
        let mut e = e?;
        let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
        let Some(f) = want.next() else {
            return bad(format!("`{path}`: a member not in the manifest"));
        };
        if path != f.path {
            return bad(format!(
                "`{path}`: a member where the manifest has `{}`",
                f.path
            ));
        }
        let kind = match e.header().entry_type() {
            tar::EntryType::Regular => Kind::File,
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            tar::EntryType::Link => return bad(format!("`{path}`: a hard link (refused)")),
            t => {
                return bad(format!(
                    "`{path}`: a {t:?} member (device, FIFO or other; refused)"
                ));
            }
        };
        if kind != f.kind {
            return bad(format!(
                "`{path}`: a {kind:?} where the manifest has a {:?}",
                f.kind
            ));
        }
        let mode = e.header().mode()? & 0o7777;
        if kind != Kind::Symlink && mode != f.mode {
            return bad(format!(
                "`{path}`: mode {mode:o} where the manifest has {:o}",
                f.mode
            ));
        }
        match kind {
            Kind::Dir => sink.dir(f)?,
            Kind::Symlink => {
                let target = e
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned());
                if target.as_deref() != Some(f.target.as_str()) {
                    return bad(format!(
                        "`{path}`: link target {target:?} where the manifest has `{}`",
                        f.target
                    ));
                }
                sink.symlink(f)?;
            }
            Kind::File => {
                if e.size() != f.size {
                    return bad(format!(
                        "`{path}`: {} bytes where the manifest has {}",
                        e.size(),
                        f.size
                    ));
                }
                let mut hashing = Hashing {
                    inner: (&mut e).take(f.size),
                    hash: Sha256::new(),
                    n: 0,
                };
                sink.file(f, &mut hashing)?;
                io::copy(&mut hashing, &mut io::sink())?;
                let sha = crate::hex(&hashing.hash.finalize());
                if hashing.n != f.size || sha != f.sha256 {
                    return bad(format!(
                        "`{path}`: its content does not match the manifest's sha256"
                    ));
                }
            }
        }
    }
    if let Some(f) = want.next() {
        return bad(format!(
            "`{}`: in the manifest but not in the archive",
            f.path
        ));
    }
    // Paths were checked by the manifest; check again what reached the sink
    // came from the manifest (belt and braces for future edits).
    debug_assert!(
        expected
            .files
            .iter()
            .all(|f| paths::check(&f.path, f.kind == Kind::Dir).is_ok())
    );
    Ok(())
}

struct Hashing<R> {
    inner: R,
    hash: Sha256,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(Vec<String>);
    impl Sink for Count {
        fn dir(&mut self, e: &FileEntry) -> io::Result<()> {
            self.0.push(format!("d {}", e.path));
            Ok(())
        }
        fn file(&mut self, e: &FileEntry, data: &mut dyn Read) -> io::Result<()> {
            let mut s = String::new();
            data.read_to_string(&mut s)?;
            self.0.push(format!("f {} {s}", e.path));
            Ok(())
        }
        fn symlink(&mut self, e: &FileEntry) -> io::Result<()> {
            self.0.push(format!("l {} {}", e.path, e.target));
            Ok(())
        }
    }

    fn tree() -> (tempfile::TempDir, Manifest) {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("usr/local/bin");
        fs::create_dir_all(&bin).unwrap();
        fs::write(bin.join("hello"), "hi\n").unwrap();
        std::os::unix::fs::symlink("hello", bin.join("hi")).unwrap();
        for p in ["usr", "usr/local", "usr/local/bin"] {
            fs::set_permissions(d.path().join(p), fs::Permissions::from_mode(0o755)).unwrap();
        }
        fs::set_permissions(bin.join("hello"), fs::Permissions::from_mode(0o755)).unwrap();
        let files = scan(d.path()).unwrap();
        let m = Manifest {
            format: 1,
            name: "hello".into(),
            version: "1".into(),
            arch: "x86_64".into(),
            description: "d".into(),
            license: "MIT".into(),
            depends: vec![],
            conflicts: vec![],
            files,
        };
        (d, m)
    }

    #[test]
    fn write_read_reproducible() {
        let (d, m) = tree();
        let a = write(Vec::new(), &m, d.path(), 1).unwrap();
        let b = write(Vec::new(), &m, d.path(), 1).unwrap();
        assert_eq!(a, b);
        assert_eq!(read_manifest(&a[..]).unwrap(), m);
        let mut sink = Count(vec![]);
        unpack(&a[..], &m, &mut sink).unwrap();
        assert_eq!(
            sink.0,
            [
                "d usr",
                "d usr/local",
                "d usr/local/bin",
                "f usr/local/bin/hello hi\n",
                "l usr/local/bin/hi hello"
            ]
        );
    }

    #[test]
    fn tampered_content_refused() {
        let (d, m) = tree();
        let mut a = write(Vec::new(), &m, d.path(), 1).unwrap();
        let at = a.windows(3).position(|w| w == b"hi\n").unwrap();
        a[at] = b'H';
        let err = unpack(&a[..], &m, &mut Count(vec![])).unwrap_err();
        assert!(err.to_string().contains("usr/local/bin/hello"), "{err}");
    }

    #[test]
    fn scan_refuses_outside_and_hard_links() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("etc")).unwrap();
        fs::write(d.path().join("etc/x"), "").unwrap();
        assert!(scan(d.path()).unwrap_err().to_string().contains("etc"));
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("opt")).unwrap();
        fs::write(d.path().join("opt/a"), "").unwrap();
        fs::hard_link(d.path().join("opt/a"), d.path().join("opt/b")).unwrap();
        assert!(
            scan(d.path())
                .unwrap_err()
                .to_string()
                .contains("hard link")
        );
    }
}
