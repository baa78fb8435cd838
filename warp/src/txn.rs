//! The transaction engine: one change of the installed set, crash-safe.
//!
//! [`apply`] takes a [`Plan`] whose archives are already downloaded and
//! verified (in `var/cache/warp/`) and
//!
//! 1. **checks everything before writing**: each archive's sha256 and
//!    manifest, path conflicts (with other packages, between the packages of
//!    the plan, with files no package owns — the image's or the user's —,
//!    a file where a directory is or the reverse, a symlink in the way),
//!    declared `conflicts`, and the free space;
//! 2. writes the journal (`staging`), creates the new directories and
//!    stages every file and symlink under a temporary name
//!    (`.warp-<txid>-<n>`) in its target's directory, hashing as it writes,
//!    then `syncfs`; any failure removes all of it again;
//! 3. sets the journal to `committing` — the commit point — and commits:
//!    renames (a replaced file is replaced atomically), unlinks, removal of
//!    emptied directories warp created, `syncfs`, then `installed.json`,
//!    `world` and the history entry, and deletes the journal.
//!
//! [`recover`] finishes (after the commit point) or undoes (before it) an
//! interrupted one; every command that changes or reads state runs it first,
//! under the lock. See [`crate::journal`].
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use warp_format::archive::{self, Sink};
use warp_format::manifest::{FileEntry, Kind, Manifest};
use warp_format::paths;
use warp_format::version::{self, Constraint};

use crate::context::Ctx;
use crate::crash;
use crate::db::{self, Db, HistoryEntry, Installed};
use crate::error::{Context, Error, Result};
use crate::fsutil::{self, Found};
use crate::journal::{self, Journal, NewDir, Staged, State};
use crate::layout::Layout;

/// A package to install (new, or replacing the installed one of that name;
/// the same version again reinstalls it, as `warp fix` does).
#[derive(Clone, Debug)]
pub struct Change {
    pub manifest: Manifest,
    /// The verified archive (normally `layout.cached_archive(sha256)`).
    pub archive: PathBuf,
    pub sha256: String,
    pub repo: String,
    pub auto: bool,
}

/// What a transaction does. Packages not named stay as they are.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub install: Vec<Change>,
    /// Names of installed packages to remove.
    pub remove: Vec<String>,
    /// Installed packages whose `auto` flag changes (`install` of a package
    /// that was a dependency makes it explicit).
    pub set_auto: Vec<(String, bool)>,
    /// `etc/warp/world` after the transaction.
    pub world: Vec<Constraint>,
    /// For the history (`install hello`).
    pub command: String,
}

/// What [`apply`] did (with `--dry-run`, what it would do; txid 0 when
/// nothing was written).
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub txid: u64,
    /// Names of the packages installed, upgraded or reinstalled.
    pub installed: Vec<String>,
    /// Names of the packages removed.
    pub removed: Vec<String>,
    /// One line per change (`upgrade hello 1.0 -> 1.1`, `remove old 2`).
    pub changes: Vec<String>,
}

/// Held while a command reads or changes state; released on drop.
pub struct Lock {
    /// `None` only for a dry run on a root where warp has never run (taking
    /// the lock would create `var/lib/warp`, and a dry run writes nothing).
    _file: Option<fs::File>,
    dry_run: bool,
}

/// Takes `var/lib/warp/lock` (flock). Without `ctx.wait`, another holder is
/// an error with [`Code::Locked`]; with it, warp says so and waits.
pub fn lock(ctx: &Ctx) -> Result<Lock> {
    let path = ctx.layout.lock();
    let state = ctx.layout.state();
    if ctx.dry_run && !state.is_dir() {
        return Ok(Lock {
            _file: None,
            dry_run: true,
        });
    }
    // warp's own directories exist from the first command on, so that what
    // a refused command leaves is exactly what was there (tests compare).
    for dir in [&state, &ctx.layout.partial()] {
        fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
    }
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .ctx(|| format!("opening the lock {}", path.display()))?;
    use rustix::fs::FlockOperation;
    match rustix::fs::flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            if !ctx.wait {
                return Err(Error::locked(format!(
                    "another warp is running (lock {}); try again later, or use --wait",
                    path.display()
                )));
            }
            ctx.info(&format!(
                "waiting for another warp to finish (lock {})",
                path.display()
            ));
            rustix::fs::flock(&file, FlockOperation::LockExclusive)
                .map_err(io::Error::from)
                .ctx(|| format!("locking {}", path.display()))?;
        }
        Err(e) => {
            return Err(io::Error::from(e)).ctx(|| format!("locking {}", path.display()));
        }
    }
    Ok(Lock {
        _file: Some(file),
        dry_run: ctx.dry_run,
    })
}

// ------------------------------------------------------------- archives

/// Opens a `.warp` archive as its decoded tar stream.
pub fn open_archive(path: &Path) -> Result<impl Read + use<>> {
    let f = fs::File::open(path).ctx(|| format!("opening archive {}", path.display()))?;
    ruzstd::decoding::StreamingDecoder::new(BufReader::with_capacity(1 << 16, f)).map_err(|e| {
        Error::integrity(format!(
            "{}: not a zstd-compressed archive ({e})",
            path.display()
        ))
    })
}

/// The manifest of the archive at `path`, checked.
pub fn read_manifest(path: &Path) -> Result<Manifest> {
    archive::read_manifest(open_archive(path)?).map_err(|e| archive_error(path, e))
}

fn archive_error(path: &Path, e: archive::Error) -> Error {
    // Reading the (decoded) archive fails only on a damaged archive: its
    // I/O errors are the decoder's.
    Error::integrity(format!("{}: {e}", path.display()))
}

/// The sha256 of a whole file, as lower-case hex.
pub fn file_sha256(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut f = fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
    io::copy(&mut f, &mut h).ctx(|| format!("reading {}", path.display()))?;
    Ok(warp_format::hex(&h.finalize()))
}

// ------------------------------------------------------------- planning

/// Everything [`apply`] will do, worked out and checked before it writes.
struct Prepared {
    journal: Journal,
    /// One line per package change, for the user.
    lines: Vec<String>,
    /// Files and symlinks to stage, and their bytes.
    files: usize,
    bytes: u64,
    /// Nothing changes (no package, no flag, the same world).
    noop: bool,
    summary: Summary,
}

fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::Dir => "a directory",
        Kind::File => "a file",
        Kind::Symlink => "a symlink",
    }
}

/// The directories above `path`, outermost first (`usr`, `usr/local`, …).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// What is on disk, asked once per path.
struct Disk<'a> {
    root: &'a Path,
    seen: HashMap<String, Found>,
}

impl Disk<'_> {
    fn at(&mut self, rel: &str) -> Result<Found> {
        if let Some(f) = self.seen.get(rel) {
            return Ok(*f);
        }
        let f = fsutil::found(&self.root.join(rel))?;
        self.seen.insert(rel.to_string(), f);
        Ok(f)
    }
}

/// The bytes a set of entries needs on disk: each file rounded up to 4 KiB
/// blocks, and a block for each entry (its inode, its directory entry).
fn space_needed(entries: &[&FileEntry]) -> u64 {
    entries
        .iter()
        .map(|f| f.size.div_ceil(4096) * 4096 + 4096)
        .sum()
}

/// Room kept free beyond the files: the journal, the database, the history.
const SPACE_MARGIN: u64 = 1 << 20;

#[cfg(test)]
thread_local! {
    /// Unit tests: the free space `prepare` sees.
    pub static TEST_FREE_BYTES: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
}

/// The free bytes where `root` is (or would be created).
pub fn free_space(root: &Path) -> Result<u64> {
    #[cfg(test)]
    if let Some(n) = TEST_FREE_BYTES.with(|c| c.get()) {
        return Ok(n);
    }
    #[cfg(feature = "crash-points")]
    if let Some(n) = std::env::var("WARP_TEST_FREE_BYTES")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        // Test builds only: "too little space" without filling a disk.
        return Ok(n);
    }
    // A root that does not exist yet (a fresh `--root`) is created on the
    // file system of its nearest existing ancestor.
    let mut at = root;
    while !at.exists() {
        match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => at = p,
            _ => break,
        }
    }
    fsutil::free_bytes(at)
}

fn prepare(ctx: &Ctx, plan: &Plan) -> Result<Prepared> {
    let layout = &ctx.layout;
    let root = layout.root();
    let old = Db::load(layout)?;
    let world_before: Vec<String> = db::load_world(layout)?
        .iter()
        .map(|c| c.to_string())
        .collect();
    let world_after: Vec<String> = plan.world.iter().map(|c| c.to_string()).collect();
    let txid = db::next_txid(layout)?;

    // The plan itself.
    let mut planned: BTreeSet<&str> = BTreeSet::new();
    for c in &plan.install {
        let m = &c.manifest;
        m.check()
            .map_err(|e| Error::integrity(format!("{}: {e}", c.archive.display())))?;
        if !planned.insert(&m.name) {
            return Err(Error::failure(format!(
                "{}: planned to be installed twice in one transaction",
                m.name
            )));
        }
    }
    let mut removing: BTreeSet<&str> = BTreeSet::new();
    for r in &plan.remove {
        if !old.packages.contains_key(r) {
            return Err(Error::failure(format!(
                "cannot remove {r}: it is not installed"
            )));
        }
        if planned.contains(r.as_str()) {
            return Err(Error::failure(format!(
                "{r}: planned to be both installed and removed"
            )));
        }
        removing.insert(r);
    }
    for (name, _) in &plan.set_auto {
        if !old.packages.contains_key(name) && !planned.contains(name.as_str()) {
            return Err(Error::failure(format!(
                "cannot mark {name}: it is not installed"
            )));
        }
    }

    // The archives: the bytes that were verified, holding the manifest the
    // plan was made from (the conflict checks below read that manifest).
    for c in &plan.install {
        let (name, ver) = (&c.manifest.name, &c.manifest.version);
        ctx.detail(&format!("checking {}", c.archive.display()));
        let sha = file_sha256(&c.archive)?;
        if sha != c.sha256 {
            return Err(Error::integrity(format!(
                "{}: sha256 {sha}, expected {} for {name} {ver} (the archive changed since it \
                 was verified; remove it from the cache and try again)",
                c.archive.display(),
                c.sha256
            )));
        }
        if read_manifest(&c.archive)? != c.manifest {
            return Err(Error::integrity(format!(
                "{}: its manifest is not the one planned for {name} {ver}",
                c.archive.display()
            )));
        }
    }

    // Who leaves, who stays, who comes.
    let leaving: BTreeSet<&str> = removing
        .iter()
        .copied()
        .chain(
            planned
                .iter()
                .copied()
                .filter(|n| old.packages.contains_key(*n)),
        )
        .collect();
    let kept: Vec<&Installed> = old
        .packages
        .values()
        .filter(|p| !leaving.contains(p.name.as_str()))
        .collect();
    let mut kept_paths: HashMap<&str, Vec<(&Manifest, Kind)>> = HashMap::new();
    for p in &kept {
        for f in &p.manifest.files {
            kept_paths
                .entry(&f.path)
                .or_default()
                .push((&p.manifest, f.kind));
        }
    }
    let mut new_paths: BTreeMap<&str, Vec<(&Manifest, &FileEntry)>> = BTreeMap::new();
    for c in &plan.install {
        for f in &c.manifest.files {
            new_paths.entry(&f.path).or_default().push((&c.manifest, f));
        }
    }

    let mut conflicts: Vec<String> = Vec::new();

    // Paths against the packages that stay, and between the new ones: a
    // directory may be shared, nothing else.
    for (path, wants) in &new_paths {
        for (m, f) in wants {
            for (om, okind) in kept_paths.get(path).into_iter().flatten() {
                if !(f.kind == Kind::Dir && *okind == Kind::Dir) {
                    conflicts.push(format!(
                        "`{path}`: {} {} has it ({}), {} {} wants it ({})",
                        om.name,
                        om.version,
                        kind_word(*okind),
                        m.name,
                        m.version,
                        kind_word(f.kind)
                    ));
                }
            }
        }
        if let [(a, fa), rest @ ..] = wants.as_slice()
            && let Some((b, fb)) = rest
                .iter()
                .find(|(_, fb)| !(fa.kind == Kind::Dir && fb.kind == Kind::Dir))
        {
            conflicts.push(format!(
                "`{path}`: both {} {} ({}) and {} {} ({}) want it",
                a.name,
                a.version,
                kind_word(fa.kind),
                b.name,
                b.version,
                kind_word(fb.kind)
            ));
        }
    }

    // Declared conflicts in the resulting set (pairs with a new package: an
    // old pair was there before and is not this transaction's doing).
    let mut result: BTreeMap<&str, (&Manifest, bool)> = BTreeMap::new();
    for p in &kept {
        result.insert(&p.name, (&p.manifest, false));
    }
    for c in &plan.install {
        result.insert(&c.manifest.name, (&c.manifest, true));
    }
    for (name, (m, is_new)) in &result {
        for decl in &m.conflicts {
            let Ok(con) = Constraint::parse(decl) else {
                continue; // checked with the manifest
            };
            if con.name == *name {
                continue;
            }
            if let Some((om, other_new)) = result.get(con.name.as_str())
                && (*is_new || *other_new)
                && con.allows(&om.version)
            {
                conflicts.push(format!(
                    "{} {} conflicts with {} {} (it declares `{decl}`)",
                    m.name, m.version, om.name, om.version
                ));
            }
        }
    }

    // The disk: never overwrite what no package owns, never write through
    // a symlink, never put a file where a directory is or the reverse.
    let mut old_file_owner: HashMap<&str, &Manifest> = HashMap::new();
    for p in old.packages.values() {
        for f in &p.manifest.files {
            if f.kind != Kind::Dir {
                old_file_owner.insert(&f.path, &p.manifest);
            }
        }
    }
    let mut disk = Disk {
        root,
        seen: HashMap::new(),
    };
    let mut mkdirs: BTreeMap<String, u32> = BTreeMap::new();
    let mut ancestors_checked: HashSet<&str> = HashSet::new();
    for (path, wants) in &new_paths {
        let (m, f) = wants[0];
        for a in ancestors(path) {
            if !ancestors_checked.insert(a) {
                continue;
            }
            match disk.at(a)? {
                Found::Dir => {}
                Found::Missing => {
                    let mode = match new_paths.get(a).map(|w| w[0].1) {
                        Some(e) if e.kind == Kind::Dir => e.mode,
                        _ => 0o755,
                    };
                    mkdirs.entry(a.to_string()).or_insert(mode);
                }
                Found::Symlink => conflicts.push(format!(
                    "`{a}` is a symlink on disk; warp never writes through a symlink \
                     ({} {} needs a directory there for `{path}`)",
                    m.name, m.version
                )),
                found => conflicts.push(format!(
                    "`{a}` is {} on disk, where {} {} needs a directory (for `{path}`)",
                    found.describe(),
                    m.name,
                    m.version
                )),
            }
        }
        match (f.kind, disk.at(path)?) {
            (Kind::Dir, Found::Dir) => {}
            (Kind::Dir, Found::Missing) => {
                mkdirs.insert(path.to_string(), f.mode);
            }
            (_, Found::Missing) => {}
            (Kind::File | Kind::Symlink, Found::File | Found::Symlink) => {
                match old_file_owner.get(path) {
                    // Replaced by rename: the file of a package that is
                    // upgraded, reinstalled or removed in this transaction.
                    Some(om) if leaving.contains(om.name.as_str()) => {}
                    // A package that stays owns it: reported above.
                    Some(_) => {}
                    None => conflicts.push(format!(
                        "`{path}` exists on disk and belongs to no package (the image's or \
                         yours); warp never overwrites it ({} {} wants it)",
                        m.name, m.version
                    )),
                }
            }
            (kind, found) => {
                let why = if found == Found::Symlink {
                    "; warp never writes through a symlink"
                } else {
                    ""
                };
                conflicts.push(format!(
                    "`{path}` is {} on disk, where {} {} wants {}{why}",
                    found.describe(),
                    m.name,
                    m.version,
                    kind_word(kind)
                ));
            }
        }
    }

    // What goes: files and symlinks of the leaving packages that the new
    // set does not have, and directories warp made that nobody lists now.
    let mut new_set: HashSet<&str> = HashSet::new();
    let mut new_set_dirs: HashSet<&str> = HashSet::new();
    for f in kept
        .iter()
        .flat_map(|p| &p.manifest.files)
        .chain(plan.install.iter().flat_map(|c| &c.manifest.files))
    {
        new_set.insert(&f.path);
        if f.kind == Kind::Dir {
            new_set_dirs.insert(&f.path);
        }
    }
    let mut unlinks: BTreeSet<String> = BTreeSet::new();
    for name in &leaving {
        let p = &old.packages[*name];
        for f in &p.manifest.files {
            if f.kind == Kind::Dir || new_set.contains(f.path.as_str()) {
                continue;
            }
            if let Some(a) = ancestors(&f.path).find(|a| disk.at(a).ok() == Some(Found::Symlink)) {
                conflicts.push(format!(
                    "`{a}` is a symlink on disk; warp never removes through a symlink \
                     ({} {}'s `{}`)",
                    p.name, p.version, f.path
                ));
                continue;
            }
            match disk.at(&f.path)? {
                Found::Missing => {}
                Found::File | Found::Symlink => {
                    unlinks.insert(f.path.clone());
                }
                found => ctx.warn(&format!(
                    "`{}` of {} {} is {} on disk now; left as it is",
                    f.path,
                    p.name,
                    p.version,
                    found.describe()
                )),
            }
        }
    }
    let mut rmdirs: Vec<String> = Vec::new();
    for d in old.created_dirs.iter().rev() {
        if new_set_dirs.contains(d.as_str()) || paths::is_shared_dir(d) {
            continue;
        }
        if ancestors(d).any(|a| disk.at(a).ok() == Some(Found::Symlink)) {
            continue;
        }
        rmdirs.push(d.clone());
    }

    if !conflicts.is_empty() {
        let n = conflicts.len();
        conflicts.truncate(20);
        let more = if n > 20 {
            format!("\n  … and {} more", n - 20)
        } else {
            String::new()
        };
        return Err(Error::conflict(format!(
            "the transaction conflicts, nothing was changed:\n  {}{more}",
            conflicts.join("\n  ")
        )));
    }

    // Free space, for everything staged (old files stay until the commit).
    let entries: Vec<&FileEntry> = plan
        .install
        .iter()
        .flat_map(|c| &c.manifest.files)
        .collect();
    let bytes: u64 = entries.iter().map(|f| f.size).sum();
    let files = entries.iter().filter(|f| f.kind != Kind::Dir).count();
    if !plan.install.is_empty() {
        let need = space_needed(&entries) + SPACE_MARGIN;
        let free = free_space(root)?;
        if need > free {
            return Err(Error::no_space(format!(
                "not enough free space under {}: the transaction needs {} ({bytes} bytes of \
                 files, with room for the database), {} is free; nothing was changed",
                root.display(),
                human(need),
                human(free)
            )));
        }
    }

    // The staged names.
    let mut staged = Vec::new();
    for f in &entries {
        if f.kind != Kind::Dir {
            let n = staged.len();
            staged.push(Staged {
                temp: journal::temp_name(&f.path, txid, n),
                path: f.path.clone(),
            });
        }
    }

    // The new database.
    let mut installed = old.clone();
    for r in &plan.remove {
        installed.packages.remove(r);
    }
    for c in &plan.install {
        let m = &c.manifest;
        installed.packages.insert(
            m.name.clone(),
            Installed {
                name: m.name.clone(),
                version: m.version.clone(),
                repo: c.repo.clone(),
                sha256: c.sha256.clone(),
                auto: c.auto,
                txid,
                manifest: m.clone(),
            },
        );
    }
    for (name, auto) in &plan.set_auto {
        if let Some(p) = installed.packages.get_mut(name) {
            p.auto = *auto;
        }
    }
    for d in &rmdirs {
        installed.created_dirs.remove(d);
    }
    for d in mkdirs.keys() {
        if !paths::is_shared_dir(d) {
            installed.created_dirs.insert(d.clone());
        }
    }

    // What the user is told.
    let mut lines = Vec::new();
    let mut summary = Summary::default();
    for c in &plan.install {
        let m = &c.manifest;
        lines.push(match old.packages.get(&m.name) {
            None => format!("install {} {}", m.name, m.version),
            Some(p) if p.version == m.version => format!("reinstall {} {}", m.name, m.version),
            Some(p) => {
                let verb = if version::compare(&m.version, &p.version).is_gt() {
                    "upgrade"
                } else {
                    "downgrade"
                };
                format!("{verb} {} {} -> {}", m.name, p.version, m.version)
            }
        });
        summary.installed.push(m.name.clone());
    }
    for r in &plan.remove {
        lines.push(format!("remove {r} {}", old.packages[r].version));
        summary.removed.push(r.clone());
    }
    for (name, auto) in &plan.set_auto {
        if let Some(p) = old.packages.get(name)
            && p.auto != *auto
            && !planned.contains(name.as_str())
        {
            let what = if *auto {
                "installed as a dependency"
            } else {
                "explicitly installed"
            };
            lines.push(format!("mark {name} as {what}"));
        }
    }

    let noop = plan.install.is_empty() && installed == old && world_after == world_before;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let history = HistoryEntry {
        txid,
        time,
        command: plan.command.clone(),
        before: old.refs(),
        after: installed.refs(),
        world_before,
        world_after: world_after.clone(),
    };
    summary.txid = txid;
    Ok(Prepared {
        journal: Journal {
            txid,
            state: State::Staging,
            mkdirs: mkdirs
                .into_iter()
                .map(|(path, mode)| NewDir { path, mode })
                .collect(),
            staged,
            unlinks: unlinks.into_iter().collect(),
            rmdirs,
            installed,
            world: world_after,
            history,
        },
        lines,
        files,
        bytes,
        noop,
        summary,
    })
}

/// `12.3 MiB`.
fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

// ------------------------------------------------------------- staging

/// Writes each file and symlink of an archive to its temporary name.
struct Stager<'a> {
    root: &'a Path,
    /// Target path → temporary path (relative to the root).
    temps: HashMap<&'a str, &'a str>,
    staged_one: bool,
    /// The error (with its path) that stopped staging; `unpack` only sees a
    /// plain I/O error.
    failed: Option<Error>,
    buf: Vec<u8>,
}

impl Stager<'_> {
    fn temp(&self, e: &FileEntry) -> io::Result<PathBuf> {
        match self.temps.get(e.path.as_str()) {
            Some(t) => Ok(self.root.join(t)),
            // Cannot happen: the names come from the same manifest.
            None => Err(io::Error::other(format!("`{}` was not planned", e.path))),
        }
    }

    fn fail(&mut self, what: String, e: io::Error) -> io::Error {
        // `ctx` on an error is always an error (and picks NoSpace for
        // ENOSPC); the fallback is never taken.
        let err = Err::<(), _>(e)
            .ctx(|| what)
            .err()
            .unwrap_or_else(|| Error::failure("staging failed"));
        let plain = io::Error::other(err.msg.clone());
        self.failed = Some(err);
        plain
    }

    fn staged(&mut self) {
        if !std::mem::replace(&mut self.staged_one, true) {
            crash::point("mid-stage");
        }
    }

    fn write_file(&mut self, temp: &Path, mode: u32, data: &mut dyn Read) -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temp)?;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // A read error is the archive's: unpack reports it.
                Err(e) => return Err(e),
            };
            f.write_all(&self.buf[..n])?;
        }
        // Explicitly, not through the umask.
        f.set_permissions(fs::Permissions::from_mode(mode))
    }
}

impl Sink for Stager<'_> {
    fn dir(&mut self, _entry: &FileEntry) -> io::Result<()> {
        // Created (with their modes) before the files.
        Ok(())
    }

    fn file(&mut self, entry: &FileEntry, data: &mut dyn Read) -> io::Result<()> {
        let temp = self.temp(entry)?;
        if let Err(e) = self.write_file(&temp, entry.mode, data) {
            return Err(self.fail(format!("writing {}", temp.display()), e));
        }
        self.staged();
        Ok(())
    }

    fn symlink(&mut self, entry: &FileEntry) -> io::Result<()> {
        let temp = self.temp(entry)?;
        if let Err(e) = std::os::unix::fs::symlink(&entry.target, &temp) {
            return Err(self.fail(format!("creating symlink {}", temp.display()), e));
        }
        self.staged();
        Ok(())
    }
}

fn stage(ctx: &Ctx, plan: &Plan, j: &Journal) -> Result<()> {
    let root = ctx.layout.root();
    for d in &j.mkdirs {
        let p = root.join(&d.path);
        ctx.detail(&format!("creating {}", p.display()));
        match fs::create_dir(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && p.is_dir() => {}
            Err(e) => return Err(e).ctx(|| format!("creating {}", p.display())),
        }
        fs::set_permissions(&p, fs::Permissions::from_mode(d.mode))
            .ctx(|| format!("setting the mode of {}", p.display()))?;
    }
    let mut sink = Stager {
        root,
        temps: j
            .staged
            .iter()
            .map(|s| (s.path.as_str(), s.temp.as_str()))
            .collect(),
        staged_one: false,
        failed: None,
        buf: vec![0; 1 << 17],
    };
    for c in &plan.install {
        let m = &c.manifest;
        ctx.detail(&format!(
            "staging {} {} from {}",
            m.name,
            m.version,
            c.archive.display()
        ));
        let r = open_archive(&c.archive)?;
        if let Err(e) = archive::unpack(r, m, &mut sink) {
            let err = sink
                .failed
                .take()
                .unwrap_or_else(|| archive_error(&c.archive, e));
            return Err(Error::new(
                err.code,
                format!("staging {} {}: {}", m.name, m.version, err.msg),
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------- apply

/// Runs `plan` as one crash-safe transaction (see the module doc). With
/// `ctx.dry_run`, checks everything, prints the plan and writes nothing.
pub fn apply(ctx: &Ctx, lock: &Lock, plan: &Plan) -> Result<Summary> {
    let layout = &ctx.layout;
    let prep = prepare(ctx, plan)?;
    let size = format!("{} files and symlinks, {}", prep.files, human(prep.bytes));
    let summary = Summary {
        changes: prep.lines,
        ..prep.summary
    };
    if ctx.dry_run || lock.dry_run {
        let mut text = String::new();
        for l in &summary.changes {
            text.push_str(l);
            text.push('\n');
        }
        crate::cli::out(&text)?;
        ctx.info(&format!(
            "dry run: the checks pass ({size} to write); nothing was changed"
        ));
        return Ok(Summary { txid: 0, ..summary });
    }
    if prep.noop {
        ctx.info("nothing to do");
        return Ok(Summary::default());
    }
    // The commands print the plan their own way; here only with -v.
    for l in &summary.changes {
        ctx.detail(l);
    }
    let mut j = prep.journal;
    ctx.detail(&format!("transaction {}: {size}", j.txid));
    j.save(layout)?;
    crash::point("after-journal-staging");
    if let Err(e) = stage(ctx, plan, &j).and_then(|()| fsutil::sync_roots(layout.root())) {
        return Err(undo(layout, &j, e));
    }
    crash::point("after-stage");
    j.state = State::Committing;
    if let Err(e) = j.save(layout) {
        return Err(undo(layout, &j, e));
    }
    crash::point("after-commit-point");
    j.commit(layout).map_err(|e| {
        Error::new(
            e.code,
            format!(
                "{}; transaction {} is committed: `warp recover` finishes it",
                e.msg, j.txid
            ),
        )
    })?;
    ctx.info(&format!("transaction {} done", j.txid));
    Ok(summary)
}

/// After a failure before the commit point: removes what was staged, so the
/// old state stands, and returns the error that stopped the transaction.
fn undo(layout: &Layout, j: &Journal, e: Error) -> Error {
    match j.undo_staging(layout) {
        Ok(()) => Error::new(e.code, format!("{}; nothing was changed", e.msg)),
        Err(e2) => Error::new(
            e.code,
            format!(
                "{}; removing the staged files failed too ({}): `warp recover` will retry",
                e.msg, e2.msg
            ),
        ),
    }
}

// ------------------------------------------------------------- recovery

/// Finishes (rolls forward) or undoes an interrupted transaction. `Some`
/// says what it did, `None` when there was nothing to do. With `--dry-run`
/// it only says what it would do.
pub fn recover(layout: &Layout, lock: &Lock) -> Result<Option<String>> {
    let Some(j) = Journal::load(layout)? else {
        if !lock.dry_run && layout.state().is_dir() {
            db::remove_stale_temps(layout)?;
        }
        return Ok(None);
    };
    let (done, would) = match j.state {
        State::Staging => ("rolled back", "would be rolled back"),
        State::Committing => ("completed", "would be completed"),
    };
    if lock.dry_run {
        return Ok(Some(format!(
            "an interrupted transaction {} {would} (dry run: nothing done)",
            j.txid
        )));
    }
    match j.state {
        State::Staging => j.undo_staging(layout)?,
        State::Committing => j.commit(layout)?,
    }
    db::remove_stale_temps(layout)?;
    Ok(Some(format!(
        "{done} an interrupted transaction {}",
        j.txid
    )))
}

/// Temporary files (`.warp-*`) under the package roots that no journal
/// accounts for: left by something other than an interrupted transaction
/// (which [`recover`] cleans up), reported by `verify` and `recover`.
pub fn stray_temps(layout: &Layout) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for r in paths::ROOTS {
        walk_temps(layout.root(), r, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk_temps(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    let dir = root.join(rel);
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if fsutil::is_missing(&e) => return Ok(()),
        Err(e) => return Err(e).ctx(|| format!("reading {}", dir.display())),
    };
    for e in entries {
        let e = e.ctx(|| format!("reading {}", dir.display()))?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        let path = format!("{rel}/{name}");
        if name.starts_with(journal::TEMP_PREFIX) {
            out.push(path);
            continue;
        }
        // Not through symlinks: only what is really under the roots.
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            walk_temps(root, &path, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
