//! The transaction engine: one change of the installed set, crash-safe.
//!
//! INTERFACE (helper A implements; helper B calls). Bodies are stubs until A
//! fills them in.
//!
//! [`apply`] takes a [`Plan`] whose archives are already downloaded and
//! verified (in `var/cache/warp/`), checks everything (paths, conflicts with
//! other packages and with files no package owns, free space) before
//! writing, then stages, journals, commits and records. [`recover`] finishes
//! or undoes an interrupted one; every command that changes or reads state
//! runs it first (under the lock).
use std::path::PathBuf;
use warp_format::manifest::Manifest;
use warp_format::version::Constraint;

use crate::context::Ctx;
use crate::error::Result;
use crate::layout::Layout;

/// A package to install (new, or replacing the installed one of that name).
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

/// What [`apply`] did.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub txid: u64,
    pub installed: Vec<String>,
    pub removed: Vec<String>,
}

/// Held while a command reads or changes state; released on drop.
pub struct Lock {
    _file: std::fs::File,
}

/// Takes `var/lib/warp/lock` (flock). Without `ctx.wait`, another holder is
/// an error with [`crate::error::Code::Locked`].
pub fn lock(_ctx: &Ctx) -> Result<Lock> {
    unimplemented!("helper A")
}

/// Runs `plan` as one crash-safe transaction (see the module doc).
pub fn apply(_ctx: &Ctx, _lock: &Lock, _plan: &Plan) -> Result<Summary> {
    unimplemented!("helper A")
}

/// Finishes (rolls forward) or undoes an interrupted transaction. `Some`
/// says what it did, `None` when there was nothing to do.
pub fn recover(_layout: &Layout, _lock: &Lock) -> Result<Option<String>> {
    unimplemented!("helper A")
}
