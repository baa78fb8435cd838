//! The local database: what is installed (`var/lib/warp/installed.json`),
//! what the user asked for (`etc/warp/world`) and the history of
//! transactions (`var/lib/warp/history/<txid>.json`). Every file is written
//! atomically (temporary file, fsync, rename, fsync of the directory); a
//! missing file is an empty database. Only the transaction engine
//! ([`crate::txn`]) writes them, as the last step of a commit.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use warp_format::manifest::Manifest;
use warp_format::version::Constraint;

use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::layout::Layout;

/// One installed package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    pub name: String,
    pub version: String,
    /// The repository it came from (`local` for `--allow-untrusted FILE`).
    pub repo: String,
    /// The archive's sha256: `var/cache/warp/<sha256>.warp` holds it.
    pub sha256: String,
    /// Installed only as a dependency (removed when nothing needs it).
    pub auto: bool,
    /// The transaction that installed it.
    pub txid: u64,
    /// Its manifest: every file with its hash, and its dependencies.
    pub manifest: Manifest,
}

/// `installed.json`: by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Db {
    pub packages: BTreeMap<String, Installed>,
    /// The directories warp created for packages (and so may remove once no
    /// installed package lists them and they are empty). A directory that
    /// was there before — the image's, the user's — is never removed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub created_dirs: BTreeSet<String>,
}

impl Db {
    /// Reads `installed.json` (empty when there is none). Every manifest in
    /// it is checked again (its paths are what removal deletes).
    pub fn load(layout: &Layout) -> Result<Db> {
        let path = layout.installed();
        let Some(bytes) = fsutil::read_optional(&path)? else {
            return Ok(Db::default());
        };
        let db: Db = serde_json::from_slice(&bytes).map_err(|e| fsutil::corrupt(&path, e))?;
        for (name, p) in &db.packages {
            if name != &p.name || p.manifest.name != p.name || p.manifest.version != p.version {
                return Err(Error::failure(format!(
                    "{}: the entry `{name}` holds {} {} with the manifest of {} {}; \
                     restore the file or remove it by hand",
                    path.display(),
                    p.name,
                    p.version,
                    p.manifest.name,
                    p.manifest.version
                )));
            }
            p.manifest.check().map_err(|e| {
                Error::failure(format!(
                    "{}: the manifest of {name} is not valid: {e}",
                    path.display()
                ))
            })?;
        }
        for d in &db.created_dirs {
            warp_format::paths::check(d, true)
                .map_err(|e| Error::failure(format!("{}: created_dirs: {e}", path.display())))?;
        }
        Ok(db)
    }

    /// Writes `installed.json` atomically.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        fsutil::atomic_write(&layout.installed(), &to_json(self))
    }

    /// Which installed packages list the file, symlink or directory `path`
    /// (a directory can be listed by several). For the commands that answer
    /// "who owns this"; the transaction engine indexes all paths at once.
    #[allow(dead_code)]
    pub fn owners<'a>(&'a self, path: &str) -> Vec<&'a Installed> {
        self.packages
            .values()
            .filter(|p| p.manifest.files.iter().any(|f| f.path == path))
            .collect()
    }

    /// The set as a history entry records it, sorted by name.
    pub fn refs(&self) -> Vec<PkgRef> {
        self.packages
            .values()
            .map(|p| PkgRef {
                name: p.name.clone(),
                version: p.version.clone(),
                sha256: p.sha256.clone(),
                auto: p.auto,
                repo: p.repo.clone(),
            })
            .collect()
    }
}

/// Pretty JSON with a final newline (readable by a person who must repair
/// it by hand).
pub fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail (string keys only).
    let mut b = serde_json::to_vec_pretty(value).unwrap_or_default();
    b.push(b'\n');
    b
}

/// `etc/warp/world`: the constraints the user asked for, one per line
/// (blank lines and `#` comments are skipped).
pub fn load_world(layout: &Layout) -> Result<Vec<Constraint>> {
    let path = layout.world();
    let Some(bytes) = fsutil::read_optional(&path)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::failure(format!("{}: not UTF-8 text", path.display())))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let c = Constraint::parse(line)
            .map_err(|e| Error::failure(format!("{}:{}: {e}", path.display(), n + 1)))?;
        out.push(c);
    }
    Ok(out)
}

/// Writes `etc/warp/world` atomically, one constraint per line.
pub fn save_world(layout: &Layout, world: &[String]) -> Result<()> {
    let mut text = String::new();
    for c in world {
        text.push_str(c);
        text.push('\n');
    }
    fsutil::atomic_write(&layout.world(), text.as_bytes())
}

/// A package in a history entry's sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkgRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub auto: bool,
    /// The repository it came from (so a rollback can record it again).
    #[serde(default)]
    pub repo: String,
}

/// `history/<txid>.json`: one finished transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub txid: u64,
    /// Seconds since the epoch.
    pub time: u64,
    /// The command line that made it (`install hello`).
    pub command: String,
    pub before: Vec<PkgRef>,
    pub after: Vec<PkgRef>,
    pub world_before: Vec<String>,
    pub world_after: Vec<String>,
}

/// The txids in `history/`, from the file names `<txid>.json`.
fn history_ids(layout: &Layout) -> Result<Vec<u64>> {
    let dir = layout.history();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if fsutil::is_missing(&e) => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("reading {}", dir.display())),
    };
    let mut ids = Vec::new();
    for e in entries {
        let e = e.ctx(|| format!("reading {}", dir.display()))?;
        let name = e.file_name();
        // Anything else (the `.N.json.tmp` of an interrupted write) is not
        // an entry.
        if let Some(id) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".json"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            ids.push(id);
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Every history entry, oldest first.
pub fn history(layout: &Layout) -> Result<Vec<HistoryEntry>> {
    let mut out = Vec::new();
    for id in history_ids(layout)? {
        let path = history_path(layout, id);
        let bytes = fs::read(&path).ctx(|| format!("reading {}", path.display()))?;
        let entry: HistoryEntry =
            serde_json::from_slice(&bytes).map_err(|e| fsutil::corrupt(&path, e))?;
        if entry.txid != id {
            return Err(Error::failure(format!(
                "{}: holds transaction {}, not {id}",
                path.display(),
                entry.txid
            )));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The txid of the next transaction: one more than the highest recorded.
pub fn next_txid(layout: &Layout) -> Result<u64> {
    Ok(history_ids(layout)?.last().map_or(1, |id| id + 1))
}

pub fn history_path(layout: &Layout, txid: u64) -> std::path::PathBuf {
    layout.history().join(format!("{txid}.json"))
}

/// Writes `history/<txid>.json` atomically.
pub fn write_history(layout: &Layout, entry: &HistoryEntry) -> Result<()> {
    fsutil::atomic_write(&history_path(layout, entry.txid), &to_json(entry))
}

/// Removes the temporary files an interrupted [`fsutil::atomic_write`] of a
/// database file left (their final files are intact: old or new).
pub fn remove_stale_temps(layout: &Layout) -> Result<()> {
    for p in [layout.installed(), layout.world(), layout.journal()] {
        fsutil::remove_file(&fsutil::atomic_temp(&p))?;
    }
    let dir = layout.history();
    if let Ok(entries) = fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".json.tmp") {
                fsutil::remove_file(&e.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_files_are_empty() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path());
        assert_eq!(Db::load(&l).unwrap(), Db::default());
        assert!(load_world(&l).unwrap().is_empty());
        assert!(history(&l).unwrap().is_empty());
        assert_eq!(next_txid(&l).unwrap(), 1);
    }

    #[test]
    fn corrupt_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path());
        fs::create_dir_all(l.state()).unwrap();
        fs::write(l.installed(), "{not json").unwrap();
        let e = Db::load(&l).unwrap_err();
        assert!(e.msg.contains("installed.json: corrupt"), "{e}");
        fs::create_dir_all(l.world().parent().unwrap()).unwrap();
        fs::write(l.world(), "hello\nBad Name\n").unwrap();
        let e = load_world(&l).unwrap_err();
        assert!(e.msg.contains("world:2:"), "{e}");
        fs::create_dir_all(l.history()).unwrap();
        fs::write(l.history().join("3.json"), "[]").unwrap();
        let e = history(&l).unwrap_err();
        assert!(e.msg.contains("3.json: corrupt"), "{e}");
    }

    #[test]
    fn owners_of_a_path() {
        let r = crate::testutil::root();
        let a = r.package("a", "1", &[("usr/local/bin/a", "a")]);
        let b = r.package("b", "1", &[("usr/local/bin/b", "b")]);
        r.apply(&[&a, &b], &[]).unwrap();
        let db = Db::load(&r.ctx.layout).unwrap();
        let names =
            |p: &str| -> Vec<String> { db.owners(p).iter().map(|i| i.name.clone()).collect() };
        assert_eq!(names("usr/local/bin/a"), ["a"]);
        assert_eq!(names("usr/local/bin"), ["a", "b"]);
        assert!(names("usr/local/bin/c").is_empty());
    }

    #[test]
    fn world_and_history_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path());
        save_world(&l, &["hello".into(), "tool>=2".into()]).unwrap();
        let w: Vec<String> = load_world(&l)
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(w, ["hello", "tool>=2"]);
        for txid in [2, 10, 1] {
            let e = HistoryEntry {
                txid,
                time: 0,
                command: "install hello".into(),
                before: vec![],
                after: vec![],
                world_before: vec![],
                world_after: w.clone(),
            };
            write_history(&l, &e).unwrap();
        }
        let ids: Vec<u64> = history(&l).unwrap().iter().map(|e| e.txid).collect();
        assert_eq!(ids, [1, 2, 10]);
        assert_eq!(next_txid(&l).unwrap(), 11);
        // An interrupted write's temporary file is not an entry, and goes.
        fs::write(l.history().join(".11.json.tmp"), "x").unwrap();
        assert_eq!(history(&l).unwrap().len(), 3);
        remove_stale_temps(&l).unwrap();
        assert!(!l.history().join(".11.json.tmp").exists());
    }
}
