//! warp's archive reader (`warp_format::archive::read_manifest` and
//! `unpack`), two ways; the input's first byte picks one.
//!
//! **Raw** (even first byte): the rest is a tar stream, any bytes. When
//! `read_manifest` accepts it, the manifest passes `check`; when `unpack`
//! accepts it against that manifest, the sink saw exactly the manifest's
//! entries in order, and each file's bytes have the manifest's size and
//! sha256. Against any other manifest, `unpack` refuses it.
//!
//! **Built** (odd first byte): the rest describes members (paths, types,
//! modes, contents, link targets), each honest or told to lie in one way —
//! a wrong size, sha256, mode, type or path in the manifest, a different
//! link target in the archive, left out of the archive, or in the archive
//! but not in the manifest — plus hard links, FIFOs and device nodes. The
//! target writes the manifest and a tar stream byte by byte (GNU headers,
//! long names as `././@LongLink` members; no tar library rewriting paths),
//! then asserts:
//! - `read_manifest` gives back that manifest exactly when it passes `check`,
//!   and otherwise refuses it with `check`'s own message;
//! - `unpack` succeeds exactly when the archive's members are the manifest's
//!   entries — same path, type, mode (not for symlinks), size and sha256,
//!   link target; no hard links, devices or FIFOs; nothing missing or extra
//!   — and then hands the sink exactly those entries and bytes.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::io::{self, Read};
use warp_format::archive::{self, Sink};
use warp_format::manifest::{self, FileEntry, Kind, Manifest};

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    if how & 1 == 0 {
        raw(rest);
    } else if let Ok(built) = Built::arbitrary_take_rest(Unstructured::new(rest)) {
        check_built(&built);
    }
});

/// What `unpack` handed over, in order; a file with its bytes.
#[derive(Default)]
struct Recorder(Vec<(FileEntry, Vec<u8>)>);

impl Sink for Recorder {
    fn dir(&mut self, entry: &FileEntry) -> io::Result<()> {
        self.0.push((entry.clone(), Vec::new()));
        Ok(())
    }
    fn file(&mut self, entry: &FileEntry, data: &mut dyn Read) -> io::Result<()> {
        let mut bytes = Vec::new();
        data.read_to_end(&mut bytes)?;
        assert!(
            bytes.len() as u64 <= entry.size,
            "the sink got more than the size"
        );
        self.0.push((entry.clone(), bytes));
        Ok(())
    }
    fn symlink(&mut self, entry: &FileEntry) -> io::Result<()> {
        self.0.push((entry.clone(), Vec::new()));
        Ok(())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An accepted unpack handed the sink exactly the manifest's entries, files
/// with their size and hash.
fn check_recorded(m: &Manifest, rec: &Recorder) {
    assert_eq!(rec.0.len(), m.files.len(), "entries handed to the sink");
    for (f, (got, bytes)) in m.files.iter().zip(&rec.0) {
        assert_eq!(got, f);
        if f.kind == Kind::File {
            assert_eq!(bytes.len() as u64, f.size, "`{}`: size", f.path);
            assert_eq!(sha256_hex(bytes), f.sha256, "`{}`: sha256", f.path);
        }
    }
}

fn raw(bytes: &[u8]) {
    let Ok(m) = archive::read_manifest(bytes) else {
        return;
    };
    m.check()
        .expect("read_manifest returned a manifest that fails check");
    let mut rec = Recorder::default();
    if archive::unpack(bytes, &m, &mut rec).is_ok() {
        check_recorded(&m, &rec);
    }
    let mut other = m.clone();
    other.description.push('!');
    assert!(
        archive::unpack(bytes, &other, &mut Recorder::default()).is_err(),
        "unpack accepted an archive whose manifest is not the expected one"
    );
}

// ------------------------------------------------------------------ built

#[derive(Arbitrary, Debug)]
enum PathPick {
    /// `usr/local/<name>` or `opt/<name>`.
    Root {
        opt: bool,
        name: String,
    },
    /// `<path of an earlier member>/<name>`.
    Below {
        member: u8,
        name: String,
    },
    Any(String),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum MemberKind {
    Dir,
    File,
    Symlink,
    HardLink,
    Fifo,
    CharDev,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq)]
enum Lie {
    None,
    /// The manifest's size is one more.
    Size,
    /// The manifest's sha256 is another content's.
    Sha,
    /// The archive's mode differs.
    Mode,
    /// The archive's member is of another type.
    Kind,
    /// The archive's path differs.
    Path,
    /// The archive's link target differs.
    Target,
    /// In the manifest, not in the archive.
    Omit,
    /// In the archive, not in the manifest.
    Extra,
}

#[derive(Arbitrary, Debug)]
struct Member {
    path: PathPick,
    kind: MemberKind,
    mode: u16,
    data: Vec<u8>,
    target: String,
    lie: Lie,
}

#[derive(Arbitrary, Debug)]
struct Built {
    members: Vec<Member>,
    /// A directory member before the manifest.
    manifest_not_first: bool,
}

/// One member of the tar stream as this target writes it.
#[derive(Clone, Debug)]
struct TarMember {
    kind: MemberKind,
    path: String,
    mode: u32,
    data: Vec<u8>,
    link: String,
}

/// No NUL: tar names are C strings, and the manifest refuses NUL anyway.
fn clean(s: &str) -> String {
    s.replace('\0', "_")
}

fn check_built(b: &Built) {
    let mut paths: Vec<String> = Vec::new();
    let mut files = Vec::new();
    let mut members = Vec::new();
    for m in b.members.iter().take(24) {
        let path = clean(&match &m.path {
            PathPick::Root { opt, name } => {
                format!("{}/{name}", if *opt { "opt" } else { "usr/local" })
            }
            PathPick::Below { member, name } => match paths.len() {
                0 => format!("usr/local/{name}"),
                n => format!("{}/{name}", paths[usize::from(*member) % n]),
            },
            PathPick::Any(p) => p.clone(),
        });
        paths.push(path.clone());
        let mode = u32::from(m.mode) & 0o777;
        let target = clean(&m.target);
        let (kind, data, link) = match m.kind {
            MemberKind::Dir => (Kind::Dir, vec![], String::new()),
            MemberKind::File => (Kind::File, m.data.clone(), String::new()),
            MemberKind::Symlink => (Kind::Symlink, vec![], target.clone()),
            // Claimed to be files; the archive holds something else.
            MemberKind::HardLink => (Kind::File, vec![], target.clone()),
            MemberKind::Fifo | MemberKind::CharDev => (Kind::File, vec![], String::new()),
        };
        let mut entry = FileEntry {
            path: path.clone(),
            kind,
            mode,
            size: data.len() as u64,
            sha256: if kind == Kind::File {
                sha256_hex(&data)
            } else {
                String::new()
            },
            target: if kind == Kind::Symlink {
                link.clone()
            } else {
                String::new()
            },
        };
        let mut member = TarMember {
            kind: m.kind,
            path,
            mode,
            data,
            link,
        };
        match m.lie {
            Lie::None | Lie::Omit | Lie::Extra => {}
            Lie::Size => entry.size += 1,
            Lie::Sha => entry.sha256 = sha256_hex(b"something else"),
            Lie::Mode => member.mode ^= 0o100,
            Lie::Kind => {
                member.kind = match member.kind {
                    MemberKind::Dir => MemberKind::File,
                    MemberKind::File => MemberKind::Symlink,
                    _ => MemberKind::Dir,
                }
            }
            Lie::Path => member.path.push('x'),
            Lie::Target => member.link.push('x'),
        }
        if m.lie != Lie::Extra {
            files.push(entry);
        }
        if m.lie != Lie::Omit {
            members.push(member);
        }
    }
    let manifest = Manifest {
        format: manifest::FORMAT,
        name: "fuzz".into(),
        version: "1.0".into(),
        arch: manifest::ARCH.into(),
        description: "built by the warp_archive fuzz target".into(),
        license: "Apache-2.0".into(),
        depends: vec![],
        conflicts: vec![],
        files,
    };

    let mut tar = Vec::new();
    if b.manifest_not_first {
        write_member(&mut tar, &dir_member("usr/local"));
    }
    write_member(
        &mut tar,
        &TarMember {
            kind: MemberKind::File,
            path: manifest::PATH.into(),
            mode: 0o644,
            data: manifest.to_bytes(),
            link: String::new(),
        },
    );
    for m in &members {
        write_member(&mut tar, m);
    }
    tar.extend_from_slice(&[0; 1024]);

    let read = archive::read_manifest(&tar[..]);
    let checked = manifest.check();
    match (&read, &checked, b.manifest_not_first) {
        (Err(_), _, true) => {}
        (Ok(_), _, true) => panic!("a manifest that is not the first member was read"),
        (Ok(m), Ok(()), false) => assert_eq!(m, &manifest),
        (Err(archive::Error::Bad(msg)), Err(why), false) => assert_eq!(msg, why),
        (read, checked, false) => panic!("read_manifest: {read:?}, check: {checked:?}"),
    }

    let mut rec = Recorder::default();
    let unpacked = archive::unpack(&tar[..], &manifest, &mut rec);
    let want_ok = !b.manifest_not_first
        && checked.is_ok()
        && members.len() == manifest.files.len()
        && members
            .iter()
            .zip(&manifest.files)
            .all(|(m, f)| matches(m, f));
    match (&unpacked, want_ok) {
        (Ok(()), true) => check_recorded(&manifest, &rec),
        (Err(_), false) => {}
        (Ok(()), false) => panic!("unpack accepted an archive that is not its manifest"),
        (Err(e), true) => panic!("unpack refused an honest archive: {e}"),
    }
}

fn dir_member(path: &str) -> TarMember {
    TarMember {
        kind: MemberKind::Dir,
        path: path.into(),
        mode: 0o755,
        data: vec![],
        link: String::new(),
    }
}

/// Whether archive member `m` is manifest entry `f`, by the rules of the
/// format (docs/warp.md): path, type, mode (not for a symlink), a file's size
/// and sha256, a symlink's target; only directories, files and symlinks.
fn matches(m: &TarMember, f: &FileEntry) -> bool {
    let kind = match m.kind {
        MemberKind::Dir => Kind::Dir,
        MemberKind::File => Kind::File,
        MemberKind::Symlink => Kind::Symlink,
        MemberKind::HardLink | MemberKind::Fifo | MemberKind::CharDev => return false,
    };
    m.path == f.path
        && kind == f.kind
        && (kind == Kind::Symlink || m.mode == f.mode)
        && match kind {
            Kind::File => m.data.len() as u64 == f.size && sha256_hex(&m.data) == f.sha256,
            Kind::Symlink => m.link == f.target,
            Kind::Dir => true,
        }
}

/// One member as GNU tar writes it: a 512-byte header (a long path or link
/// target first as its own `././@LongLink` member), then the data padded to
/// 512 bytes.
fn write_member(out: &mut Vec<u8>, m: &TarMember) {
    use tar::EntryType;
    let (entry_type, size) = match m.kind {
        MemberKind::Dir => (EntryType::Directory, 0),
        MemberKind::File => (EntryType::Regular, m.data.len()),
        MemberKind::Symlink => (EntryType::Symlink, 0),
        MemberKind::HardLink => (EntryType::Link, 0),
        MemberKind::Fifo => (EntryType::Fifo, 0),
        MemberKind::CharDev => (EntryType::Char, 0),
    };
    let path = m.path.as_bytes();
    let link = m.link.as_bytes();
    if path.len() > 100 {
        long_link(out, EntryType::GNULongName, path);
    }
    if link.len() > 100 {
        long_link(out, EntryType::GNULongLink, link);
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(entry_type);
    h.set_mode(m.mode);
    h.set_size(size as u64);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    let old = h.as_old_mut();
    let n = path.len().min(100);
    old.name[..n].copy_from_slice(&path[..n]);
    let n = link.len().min(100);
    old.linkname[..n].copy_from_slice(&link[..n]);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    if matches!(m.kind, MemberKind::File) {
        out.extend_from_slice(&m.data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
}

fn long_link(out: &mut Vec<u8>, entry_type: tar::EntryType, name: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(entry_type);
    h.set_size(name.len() as u64 + 1);
    h.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(name);
    out.push(0);
    out.resize(out.len().div_ceil(512) * 512, 0);
}
