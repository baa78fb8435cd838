//! From a resolution to a transaction, shared by install, remove and
//! upgrade: print the plan, stop there for `--dry-run`, fetch and check
//! every archive, then hand everything to `txn::apply` at once.
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use warp_format::index::Entry;
use warp_format::manifest::Manifest;
use warp_format::version::{self, Constraint};

use crate::cli::{self, Sources};
use crate::context::Ctx;
use crate::db::Installed;
use crate::error::{Error, Result};
use crate::fetch;
use crate::progress::human_size;
use crate::resolve::{Available, Resolution};
use crate::txn::{self, Change, Lock, Plan};

/// The repository name of a package installed from a local file.
pub const LOCAL: &str = "local";

/// A local archive given to `install --allow-untrusted`, already in the
/// cache.
pub struct Local {
    pub archive: PathBuf,
    pub manifest: Manifest,
}

/// The plan, one line per change: `+` new, `^` upgrade, `v` downgrade,
/// `-` remove, `*` a flag change.
pub fn describe(res: &Resolution<'_>, installed: &BTreeMap<String, Installed>) -> String {
    let mut s = String::new();
    for p in &res.install {
        let e = &p.entry;
        let dep = if p.auto { ", dependency" } else { "" };
        let size = human_size(e.size);
        match &p.replaces {
            None => s.push_str(&format!("+ {} {} ({size}{dep})\n", e.name, e.version)),
            Some(old) => {
                let sign = if version::compare(&e.version, old).is_lt() {
                    'v'
                } else {
                    '^'
                };
                s.push_str(&format!(
                    "{sign} {} {old} -> {} ({size}{dep})\n",
                    e.name, e.version
                ));
            }
        }
    }
    for name in &res.remove {
        let version = installed
            .get(name)
            .map(|i| i.version.as_str())
            .unwrap_or("?");
        s.push_str(&format!("- {name} {version}\n"));
    }
    for (name, auto) in &res.set_auto {
        let what = if *auto {
            "now kept only as a dependency"
        } else {
            "now installed explicitly"
        };
        s.push_str(&format!("* {name}: {what}\n"));
    }
    let download: u64 = res.install.iter().map(|p| p.entry.size).sum();
    s.push_str(&format!(
        "{} to install or change, {} to remove; {} to download at most\n",
        res.install.len(),
        res.remove.len(),
        human_size(download)
    ));
    s
}

/// Runs the resolution: prints it, fetches, checks and applies. `world` is
/// the world after the transaction, `command` what the history records.
#[allow(clippy::too_many_arguments)]
pub fn execute(
    ctx: &Ctx,
    lock: &Lock,
    sources: &Sources,
    res: &Resolution<'_>,
    installed: &BTreeMap<String, Installed>,
    world: &[Constraint],
    command: String,
    local: Option<&Local>,
) -> Result<()> {
    let plan_text = describe(res, installed);
    if ctx.dry_run {
        cli::out(&plan_text)?;
        cli::outln(format_args!("dry run: nothing downloaded or changed"))?;
        return Ok(());
    }
    if !ctx.quiet {
        cli::out(&plan_text)?;
    }
    check_space_for_downloads(ctx, res)?;
    // Archives this command puts into the cache go again if it fails: a
    // refused transaction leaves the disk as it found it.
    let mut fetched = Vec::new();
    let result = fetch_and_apply(ctx, lock, sources, res, world, command, local, &mut fetched);
    if result.is_err() {
        for path in &fetched {
            let _ = fs::remove_file(path);
        }
    }
    result
}

/// Fetches and checks every archive of the plan (recording in `fetched`
/// those that were not in the cache yet), then applies it.
#[allow(clippy::too_many_arguments)]
fn fetch_and_apply(
    ctx: &Ctx,
    lock: &Lock,
    sources: &Sources,
    res: &Resolution<'_>,
    world: &[Constraint],
    command: String,
    local: Option<&Local>,
    fetched: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut install = Vec::new();
    for p in &res.install {
        let change = if p.repo == LOCAL {
            let local = local.ok_or_else(|| {
                Error::failure(format!(
                    "{}: the plan takes it from a local file, but none was given",
                    p.entry.id()
                ))
            })?;
            Change {
                manifest: local.manifest.clone(),
                archive: local.archive.clone(),
                sha256: p.entry.sha256.clone(),
                repo: LOCAL.into(),
                auto: p.auto,
            }
        } else {
            let repo = sources.repo(&p.repo).ok_or_else(|| {
                Error::failure(format!(
                    "{}: repository `{}` is no longer in the list",
                    p.entry.id(),
                    p.repo
                ))
            })?;
            let was_cached = ctx.layout.cached_archive(&p.entry.sha256).exists();
            let archive = fetch::archive(ctx, repo, &p.entry)?;
            if !was_cached {
                fetched.push(archive.clone());
            }
            let manifest = txn::read_manifest(&archive)?;
            fetch::check_manifest(&manifest, &p.entry, &archive)?;
            Change {
                manifest,
                archive,
                sha256: p.entry.sha256.clone(),
                repo: p.repo.clone(),
                auto: p.auto,
            }
        };
        install.push(change);
    }
    let plan = Plan {
        install,
        remove: res.remove.clone(),
        set_auto: res.set_auto.clone(),
        world: world.to_vec(),
        command,
    };
    // The engine reports what it did (`transaction N done`).
    txn::apply(ctx, lock, &plan)?;
    Ok(())
}

/// Before anything is downloaded: room for the archives not in the cache
/// yet and for the files they install (the engine checks the files again,
/// exactly, before it writes them).
fn check_space_for_downloads(ctx: &Ctx, res: &Resolution<'_>) -> Result<()> {
    let downloads: u64 = res
        .install
        .iter()
        .filter(|p| p.repo != LOCAL && !ctx.layout.cached_archive(&p.entry.sha256).exists())
        .map(|p| p.entry.size)
        .sum();
    let files: u64 = res.install.iter().map(|p| p.entry.installed_size).sum();
    let free = txn::free_space(ctx.layout.root())?;
    if downloads + files > free {
        let names: Vec<String> = res.install.iter().map(|p| p.entry.id()).collect();
        return Err(Error::no_space(format!(
            "not enough free space under {} for {}: {} to download and {} of files, {} is free; \
             nothing was downloaded or changed",
            ctx.layout.root().display(),
            names.join(", "),
            human_size(downloads),
            human_size(files),
            human_size(free)
        )));
    }
    Ok(())
}

/// The newest version of an installed package that the indexes offer and
/// the world allows, when it is newer than the installed one.
pub fn upgradable<'a>(
    installed: &Installed,
    available: &Available<'a>,
    world: &[Constraint],
) -> Option<&'a Entry> {
    let allowed = |v: &str| {
        world
            .iter()
            .filter(|c| c.name == installed.name)
            .all(|c| c.allows(v))
    };
    available
        .best(&installed.name, allowed)
        .map(|(_, e)| e)
        .filter(|e| version::compare(&e.version, &installed.version).is_gt())
}

/// The world with `new` added, replacing what it said about those names.
pub fn with(world: &[Constraint], new: &[Constraint]) -> Vec<Constraint> {
    let mut out: Vec<Constraint> = world
        .iter()
        .filter(|c| !new.iter().any(|n| n.name == c.name))
        .cloned()
        .collect();
    for n in new {
        if !out.iter().any(|c| c.name == n.name) {
            out.push(n.clone());
        }
    }
    out
}
