//! `var/lib/warp/journal.json`: everything a transaction will do, written
//! before it touches a package file, so that an interruption at any point
//! can be finished or undone by [`crate::txn::recover`].
//!
//! - `staging`: written before the first directory or temporary file is
//!   made. Recovery deletes the temporary files and the (empty) directories
//!   the transaction made: the old state stands.
//! - `committing`: written once every new file is staged and synced; this
//!   write is the commit point. Recovery redoes the commit (every step can
//!   be done twice): renames whose temporary file is still there, unlinks,
//!   removal of empty directories, then the database files.
//!
//! Every path in it is relative to the root and checked again when it is
//! read, so a damaged journal cannot make warp touch anything outside
//! `usr/local` and `opt`.
use serde::{Deserialize, Serialize};
use std::fs;
use warp_format::paths;

use crate::crash;
use crate::db::{self, Db, HistoryEntry};
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::layout::Layout;

/// The prefix of every temporary name a transaction stages under.
pub const TEMP_PREFIX: &str = ".warp-";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Staging,
    Committing,
}

/// A directory the transaction creates, with its mode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDir {
    pub path: String,
    pub mode: u32,
}

/// A file or symlink staged under `temp` (in `path`'s own directory), to be
/// renamed onto `path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    pub temp: String,
    pub path: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Journal {
    pub txid: u64,
    pub state: State,
    /// Directories to create, parents first.
    pub mkdirs: Vec<NewDir>,
    pub staged: Vec<Staged>,
    /// Files and symlinks of removed packages (and of old versions) that no
    /// package of the new set has.
    pub unlinks: Vec<String>,
    /// Directories warp created that no package of the new set lists,
    /// deepest first; removed only when empty.
    pub rmdirs: Vec<String>,
    /// The new `installed.json`, `world` and history entry.
    pub installed: Db,
    pub world: Vec<String>,
    pub history: HistoryEntry,
}

/// The temporary name of the `n`th staged entry of transaction `txid`, in
/// the directory of `path`.
pub fn temp_name(path: &str, txid: u64, n: usize) -> String {
    let name = format!("{TEMP_PREFIX}{txid}-{n}");
    match paths::parent(path) {
        "" => name,
        dir => format!("{dir}/{name}"),
    }
}

impl Journal {
    /// The journal on disk; `None` when there is none. A journal that cannot
    /// be read, or that names a path warp would never write, is an error
    /// naming the file: recovery never guesses.
    pub fn load(layout: &Layout) -> Result<Option<Journal>> {
        let path = layout.journal();
        let Some(bytes) = fsutil::read_optional(&path)? else {
            return Ok(None);
        };
        let j: Journal = serde_json::from_slice(&bytes).map_err(|e| fsutil::corrupt(&path, e))?;
        j.check()
            .map_err(|e| Error::failure(format!("{}: {e}; recover by hand", path.display())))?;
        Ok(Some(j))
    }

    fn check(&self) -> std::result::Result<(), String> {
        for d in self.mkdirs.iter().map(|d| &d.path).chain(&self.rmdirs) {
            paths::check(d, true)?;
        }
        for s in &self.staged {
            paths::check(&s.path, false)?;
            paths::check(&s.temp, false)?;
            let name = s.temp.rsplit('/').next().unwrap_or_default();
            if !name.starts_with(TEMP_PREFIX) || paths::parent(&s.temp) != paths::parent(&s.path) {
                return Err(format!(
                    "`{}` is not a temporary name beside `{}`",
                    s.temp, s.path
                ));
            }
        }
        for u in &self.unlinks {
            paths::check(u, false)?;
        }
        // What becomes installed.json: the same checks as when it is read.
        for (name, p) in &self.installed.packages {
            if name != &p.name || p.manifest.name != p.name {
                return Err(format!("installed: the entry `{name}` holds {}", p.name));
            }
            p.manifest.check()?;
        }
        for d in &self.installed.created_dirs {
            paths::check(d, true)?;
        }
        Ok(())
    }

    /// Writes the journal atomically.
    pub fn save(&self, layout: &Layout) -> Result<()> {
        fsutil::atomic_write(&layout.journal(), &db::to_json(self))
    }

    fn delete(layout: &Layout) -> Result<()> {
        fsutil::remove_file(&layout.journal())?;
        fsutil::fsync_dir(&layout.state())
    }

    /// Undoes an unfinished staging: removes the temporary files, then the
    /// directories the transaction created (deepest first, only if empty),
    /// then the journal. Nothing a package owned was touched before the
    /// commit point, so the old state stands.
    pub fn undo_staging(&self, layout: &Layout) -> Result<()> {
        let root = layout.root();
        for s in &self.staged {
            fsutil::remove_file(&root.join(&s.temp))?;
        }
        for d in self.mkdirs.iter().rev() {
            fsutil::remove_empty_dir(&root.join(&d.path))?;
        }
        fsutil::sync_roots(root)?;
        Journal::delete(layout)
    }

    /// Carries out the commit from the journal (in `committing` state); safe
    /// to run again after an interruption at any step.
    pub fn commit(&self, layout: &Layout) -> Result<()> {
        let root = layout.root();
        let mut first = true;
        let mut step_done = || {
            if std::mem::take(&mut first) {
                crash::point("mid-commit");
            }
        };
        // A rename replaces the old file atomically: the path holds the old
        // or the new content, never neither. A temporary file that is gone
        // was renamed by an earlier, interrupted run.
        for s in &self.staged {
            let temp = root.join(&s.temp);
            if fsutil::found(&temp)? == fsutil::Found::Missing {
                continue;
            }
            let target = root.join(&s.path);
            fs::rename(&temp, &target)
                .ctx(|| format!("renaming {} to {}", temp.display(), target.display()))?;
            step_done();
        }
        for u in &self.unlinks {
            if fsutil::remove_file(&root.join(u))? {
                step_done();
            }
        }
        for d in &self.rmdirs {
            fsutil::remove_empty_dir(&root.join(d))?;
        }
        fsutil::sync_roots(root)?;
        crash::point("before-db");
        self.installed.save(layout)?;
        db::save_world(layout, &self.world)?;
        db::write_history(layout, &self.history)?;
        crash::point("after-db");
        Journal::delete(layout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_sit_beside_their_target() {
        assert_eq!(
            temp_name("usr/local/bin/x", 3, 0),
            "usr/local/bin/.warp-3-0"
        );
        assert_eq!(temp_name("opt", 1, 2), ".warp-1-2");
    }

    fn journal() -> Journal {
        Journal {
            txid: 1,
            state: State::Staging,
            mkdirs: vec![],
            staged: vec![],
            unlinks: vec![],
            rmdirs: vec![],
            installed: Db::default(),
            world: vec![],
            history: HistoryEntry {
                txid: 1,
                time: 0,
                command: String::new(),
                before: vec![],
                after: vec![],
                world_before: vec![],
                world_after: vec![],
            },
        }
    }

    #[test]
    fn a_journal_naming_paths_outside_the_roots_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let l = Layout::new(d.path());
        let mut j = journal();
        j.unlinks.push("etc/passwd".into());
        j.save(&l).unwrap();
        let e = Journal::load(&l).unwrap_err();
        assert!(
            e.msg.contains("journal.json") && e.msg.contains("etc/passwd"),
            "{e}"
        );
        let mut j = journal();
        j.staged.push(Staged {
            temp: "usr/local/bin/important".into(),
            path: "usr/local/bin/x".into(),
        });
        j.save(&l).unwrap();
        assert!(Journal::load(&l).is_err());
        fs::write(l.journal(), "{\"txid\":").unwrap();
        let e = Journal::load(&l).unwrap_err();
        assert!(e.msg.contains("journal.json: corrupt"), "{e}");
        // Still there: never deleted on guesswork.
        assert!(l.journal().exists());
    }
}
