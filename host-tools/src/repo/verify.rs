//! `repo verify`: a built repository checked the way warp will check it,
//! and more: the signature with the given key, the index, every archive's
//! size and sha256, its manifest against its index entry, and every member
//! read and hashed against the manifest. Every problem is reported.
use anyhow::{Result, bail};
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

use warp_format::archive::{self, Sink};
use warp_format::index::{self, Index};
use warp_format::manifest::FileEntry;
use warp_format::signify::{PublicKey, Signature};

use crate::hash::sha256_file;

/// What a repository that passed holds.
#[derive(Clone, Debug)]
pub struct Verified {
    pub serial: u64,
    pub packages: usize,
    /// Files, directories and symlinks in all its archives.
    pub entries: u64,
    /// The archives' total size.
    pub bytes: u64,
}

/// Checks the repository in `dir` against `key`; fails with the list of
/// every problem found, each naming its file.
pub fn verify(dir: &Path, key: &PublicKey) -> Result<Verified> {
    let mut problems: Vec<String> = Vec::new();
    let index_path = dir.join(index::INDEX_FILE);
    let bytes = match fs::read(&index_path) {
        Ok(b) => b,
        Err(e) => bail!(
            "{}: {e} (is {} a repository?)",
            index_path.display(),
            dir.display()
        ),
    };
    check_signature(dir, &bytes, key, &mut problems);
    let index = match Index::parse(&bytes) {
        Ok(i) => i,
        Err(e) => {
            problems.push(format!("{}: {e}", index::INDEX_FILE));
            return fail(dir, problems);
        }
    };
    let mut entries = 0;
    let mut total = 0;
    for e in &index.packages {
        match check_archive(dir, e) {
            Ok(n) => {
                entries += n;
                total += e.size;
            }
            Err(why) => problems.push(format!("{}: {why}", e.file)),
        }
    }
    let listed: BTreeSet<&str> = index.packages.iter().map(|e| e.file.as_str()).collect();
    let mut unlisted: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".warp") && !listed.contains(n.as_str()))
                .collect()
        })
        .unwrap_or_default();
    unlisted.sort();
    for name in unlisted {
        problems.push(format!("{name}: an archive the index does not list"));
    }
    if !problems.is_empty() {
        return fail(dir, problems);
    }
    Ok(Verified {
        serial: index.serial,
        packages: index.packages.len(),
        entries,
        bytes: total,
    })
}

fn fail<T>(dir: &Path, problems: Vec<String>) -> Result<T> {
    bail!(
        "the repository {} has {} problem(s):\n  {}",
        dir.display(),
        problems.len(),
        problems.join("\n  ")
    )
}

fn check_signature(dir: &Path, index: &[u8], key: &PublicKey, problems: &mut Vec<String>) {
    let name = index::SIGNATURE_FILE;
    let text = match fs::read(dir.join(name)) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            problems.push(format!("{name}: {e} (an unsigned repository)"));
            return;
        }
    };
    match Signature::parse(&text).and_then(|sig| key.verify(index, &sig)) {
        Ok(()) => {}
        Err(e) => problems.push(format!(
            "{name}: {e} (checked with key {}: index.json was changed after it was signed, or \
             signed with another key)",
            key.keynum
        )),
    }
}

/// One archive against its entry; the number of entries it holds, or why
/// not.
fn check_archive(dir: &Path, e: &index::Entry) -> Result<u64, String> {
    let path = dir.join(&e.file);
    let size = fs::metadata(&path).map_err(|err| format!("{err}"))?.len();
    if size != e.size {
        return Err(format!("{size} bytes, the index says {}", e.size));
    }
    let sha256 = sha256_file(&path).map_err(|err| format!("{err:#}"))?;
    if sha256 != e.sha256 {
        return Err(format!("sha256 {sha256}, the index says {}", e.sha256));
    }
    let open = || -> Result<zstd::stream::Decoder<'static, io::BufReader<fs::File>>, String> {
        let file = fs::File::open(&path).map_err(|err| err.to_string())?;
        zstd::stream::Decoder::new(file).map_err(|err| format!("not zstd: {err}"))
    };
    let m = archive::read_manifest(open()?).map_err(|err| format!("manifest: {err}"))?;
    let mut differ = Vec::new();
    if m.name != e.name {
        differ.push(format!("name `{}`", m.name));
    }
    if m.version != e.version {
        differ.push(format!("version `{}`", m.version));
    }
    if m.depends != e.depends {
        differ.push(format!("depends {:?}", m.depends));
    }
    if m.conflicts != e.conflicts {
        differ.push(format!("conflicts {:?}", m.conflicts));
    }
    if m.installed_size() != e.installed_size {
        differ.push(format!("installed size {}", m.installed_size()));
    }
    if !differ.is_empty() {
        return Err(format!(
            "its manifest has {} where the index has {} {}",
            differ.join(", "),
            e.name,
            e.version
        ));
    }
    let mut count = Count(0);
    archive::unpack(open()?, &m, &mut count).map_err(|err| format!("{err}"))?;
    Ok(count.0)
}

/// An unpacking that only counts (the archive reader hashes every file).
struct Count(u64);

impl Sink for Count {
    fn dir(&mut self, _: &FileEntry) -> io::Result<()> {
        self.0 += 1;
        Ok(())
    }
    fn file(&mut self, _: &FileEntry, data: &mut dyn Read) -> io::Result<()> {
        self.0 += 1;
        io::copy(data, &mut io::sink()).map(|_| ())
    }
    fn symlink(&mut self, _: &FileEntry) -> io::Result<()> {
        self.0 += 1;
        Ok(())
    }
}
