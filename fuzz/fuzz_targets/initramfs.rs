//! The initramfs writer (`host_tools::initramfs::write_newc`, compiled here
//! from its own file), read back with the `cpio` crate's reader.
//!
//! Asserts:
//! - entries listed twice are an error that names the path, never an archive;
//! - a name the kernel's unpacker cannot take as written (empty, with a NUL,
//!   or `TRAILER!!!`, which ends the archive) is an error naming the entry;
//! - otherwise every entry comes back equal and in path order: name, type and
//!   permission bits, owner 0, the mtime given, inode numbers 1, 2, …, link
//!   count, device numbers, a file's bytes, a symlink's target; then the
//!   trailer, and nothing after it but padding;
//! - the same entries in another order give the same bytes.
#![no_main]

use arbitrary::Arbitrary;
/// host-tools' `initramfs::newc`, the exact source (it is self-contained).
#[allow(dead_code)]
#[path = "../../host-tools/src/initramfs/newc.rs"]
mod initramfs;

use initramfs::{Entry, Kind};
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Paths that collide and nest often, and the name that ends a newc archive
/// (a length-10 string the fuzzer is unlikely to build by chance).
const PATHS: &[&str] = &[
    "dev",
    "dev/console",
    "init",
    "bin",
    "bin/sh",
    "a",
    "TRAILER!!!",
];

#[derive(Arbitrary, Debug)]
enum PathPick {
    Known(u8),
    Any(String),
}

#[derive(Arbitrary, Debug)]
enum KindIn {
    Dir,
    File(Vec<u8>),
    CharDev(u32, u32),
    Symlink(String),
}

#[derive(Arbitrary, Debug)]
struct EntryIn {
    path: PathPick,
    mode: u32,
    kind: KindIn,
}

#[derive(Arbitrary, Debug)]
struct Input {
    entries: Vec<EntryIn>,
    mtime: u32,
    /// Which rotation of the list to write the second time.
    rotate: u8,
}

fn entry(e: &EntryIn) -> Entry {
    let path = match &e.path {
        PathPick::Known(i) => PATHS[usize::from(*i) % PATHS.len()].to_string(),
        PathPick::Any(s) => s.clone(),
    };
    let kind = match &e.kind {
        KindIn::Dir => Kind::Dir,
        KindIn::File(data) => Kind::File(data.clone()),
        KindIn::CharDev(major, minor) => Kind::CharDev(*major, *minor),
        KindIn::Symlink(target) => Kind::Symlink(target.clone()),
    };
    Entry {
        path,
        mode: e.mode,
        kind,
    }
}

/// A name the kernel's cpio unpacker (init/initramfs.c) reads back as given.
fn name_ok(path: &str) -> bool {
    !path.is_empty() && !path.contains('\0') && path != "TRAILER!!!"
}

fuzz_target!(|input: Input| {
    let entries: Vec<Entry> = input.entries.iter().map(entry).collect();
    let mut sorted = entries.clone();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let duplicate = sorted.windows(2).find(|w| w[0].path == w[1].path);
    let bad_name = entries.iter().find(|e| !name_ok(&e.path));

    let result = initramfs::write_newc(entries.clone(), input.mtime);
    let archive = match (result, duplicate, bad_name) {
        (Ok(archive), None, None) => archive,
        (Ok(_), Some(d), _) => panic!("`{:?}` twice, but an archive was written", d[0].path),
        (Ok(_), _, Some(e)) => panic!("name {:?} was written", e.path),
        (Err(e), dup, bad) => {
            assert!(
                dup.is_some() || bad.is_some(),
                "refused good entries: {e:#}"
            );
            // The error names an offending entry: a duplicate, or a bad name
            // (shown escaped, since it may hold a NUL).
            let msg = format!("{e:#}");
            let names_dup =
                dup.is_some_and(|d| msg.contains(&format!("`{}` is listed twice", d[0].path)));
            let names_bad = entries
                .iter()
                .any(|e| !name_ok(&e.path) && msg.contains(&format!("{:?}", e.path)));
            assert!(
                names_dup || names_bad,
                "the error names no offending entry: {msg}"
            );
            return;
        }
    };

    let mut rest = &archive[..];
    for (i, want) in sorted.iter().enumerate() {
        let mut reader = cpio::newc::Reader::new(rest).expect("an entry's header");
        let e = reader.entry();
        assert!(!e.is_trailer(), "the archive ends before `{:?}`", want.path);
        let (type_bits, data, rdev, nlink) = match &want.kind {
            Kind::Dir => (0o040000, &[][..], (0, 0), 2),
            Kind::File(d) => (0o100000, &d[..], (0, 0), 1),
            Kind::CharDev(ma, mi) => (0o020000, &[][..], (*ma, *mi), 1),
            Kind::Symlink(t) => (0o120000, t.as_bytes(), (0, 0), 1),
        };
        assert_eq!(e.name(), want.path);
        assert_eq!(e.mode(), type_bits | (want.mode & 0o7777));
        assert_eq!((e.uid(), e.gid()), (0, 0));
        assert_eq!(e.mtime(), input.mtime);
        assert_eq!(e.ino(), i as u32 + 1);
        assert_eq!(e.nlink(), nlink);
        assert_eq!((e.rdev_major(), e.rdev_minor()), rdev);
        assert_eq!(e.file_size() as usize, data.len());
        let mut got = Vec::new();
        reader.read_to_end(&mut got).unwrap();
        assert_eq!(got, data, "content of `{}`", want.path);
        rest = reader.finish().expect("padding after an entry");
    }
    let trailer = cpio::newc::Reader::new(rest).expect("the trailer");
    assert!(trailer.entry().is_trailer(), "more entries than written");
    let after = trailer.finish().unwrap();
    assert!(after.iter().all(|&b| b == 0), "bytes after the trailer");

    let mut other = entries;
    let n = other.len().max(1);
    other.rotate_left(usize::from(input.rotate) % n);
    assert_eq!(
        initramfs::write_newc(other, input.mtime).unwrap(),
        archive,
        "the order of the list changed the bytes"
    );
});
