//! The local database: what is installed (`var/lib/warp/installed.json`),
//! what the user asked for (`etc/warp/world`) and the history of
//! transactions (`var/lib/warp/history/<txid>.json`). Every file is written
//! atomically (temporary file, fsync, rename, fsync of the directory).
//!
//! INTERFACE (helper A implements; helper B uses). Bodies are stubs until A
//! fills them in.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use warp_format::manifest::Manifest;
use warp_format::version::Constraint;

use crate::error::Result;
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
}

impl Db {
    /// Reads `installed.json` (empty when there is none).
    pub fn load(_layout: &Layout) -> Result<Db> {
        unimplemented!("helper A")
    }
    /// Which installed package owns the file, symlink or directory `path`.
    pub fn owners<'a>(&'a self, _path: &str) -> Vec<&'a Installed> {
        unimplemented!("helper A")
    }
}

/// `etc/warp/world`: the constraints the user asked for, one per line.
pub fn load_world(_layout: &Layout) -> Result<Vec<Constraint>> {
    unimplemented!("helper A")
}

/// A package in a history entry's sets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkgRef {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub auto: bool,
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

/// Every history entry, oldest first.
pub fn history(_layout: &Layout) -> Result<Vec<HistoryEntry>> {
    unimplemented!("helper A")
}
