//! `warp rollback [TXID]`: back to the package set recorded before a
//! transaction, from the archive cache, as one ordinary transaction.
use std::collections::BTreeMap;
use warp_format::version::Constraint;

use crate::cli;
use crate::context::Ctx;
use crate::db::{self, Db, HistoryEntry, PkgRef};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::txn::{self, Change, Plan};

pub const HELP: &str = "\
warp rollback: back to the package set before a transaction

Usage: warp rollback [TXID]

Installs, removes, upgrades or downgrades packages so that the installed set
and the world (etc/warp/world) are again what they were just before
transaction TXID (`warp history` lists them; default: the last one). It is
one ordinary crash-safe transaction, built from the archives in
var/cache/warp/ (nothing is downloaded), and it is recorded in the history
itself: rolling back the rollback goes forward again.

Every archive needed is looked for and checked before anything is written:
if one is missing from the cache, nothing changes and the error names it.

With --dry-run: print what would change; change nothing.

Arguments:
  TXID   the transaction to undo, with every later one (default: the last)

Exit status:
  0  success (also when the set is already the one before TXID)
  1  failure (an archive missing from the cache, no such TXID, a damaged
     history or database, I/O)
  2  usage
  4  an archive in the cache does not match its recorded sha256 or manifest
  6  a conflict (a path now in the way of an older package)
  7  not enough free space
  8  another warp is running (see --wait)
";

/// The plan that takes the installed set `db` back to `entry.before` (and
/// the world back to `entry.world_before`). Every archive it needs is in the
/// cache and its manifest read, or the error names those missing.
pub(crate) fn plan(layout: &Layout, db: &Db, entry: &HistoryEntry) -> Result<Plan> {
    let target: BTreeMap<&str, &PkgRef> =
        entry.before.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut install = Vec::new();
    let mut set_auto = Vec::new();
    let mut missing = Vec::new();
    for (name, want) in &target {
        let current = db.packages.get(*name);
        if let Some(p) = current
            && p.sha256 == want.sha256
        {
            if p.auto != want.auto {
                set_auto.push((name.to_string(), want.auto));
            }
            continue;
        }
        let archive = layout.cached_archive(&want.sha256);
        if !archive.is_file() {
            missing.push(format!("{name} {} ({})", want.version, archive.display()));
            continue;
        }
        let manifest = txn::read_manifest(&archive)?;
        if manifest.name != want.name || manifest.version != want.version {
            return Err(Error::integrity(format!(
                "{}: holds {} {}, where {} {} was expected",
                archive.display(),
                manifest.name,
                manifest.version,
                want.name,
                want.version
            )));
        }
        // Entries written before `repo` was recorded: keep what is known.
        let repo = if want.repo.is_empty() {
            current.map_or_else(|| "cache".to_string(), |p| p.repo.clone())
        } else {
            want.repo.clone()
        };
        install.push(Change {
            manifest,
            archive,
            sha256: want.sha256.clone(),
            repo,
            auto: want.auto,
        });
    }
    if !missing.is_empty() {
        return Err(Error::failure(format!(
            "cannot roll back transaction {}: not in the archive cache: {}; nothing was changed",
            entry.txid,
            missing.join(", ")
        )));
    }
    let remove = db
        .packages
        .keys()
        .filter(|n| !target.contains_key(n.as_str()))
        .cloned()
        .collect();
    let mut world = Vec::new();
    for w in &entry.world_before {
        world.push(Constraint::parse(w).map_err(|e| {
            Error::failure(format!(
                "{}: world_before: {e}",
                db::history_path(layout, entry.txid).display()
            ))
        })?);
    }
    Ok(Plan {
        install,
        remove,
        set_auto,
        world,
        command: format!("rollback {}", entry.txid),
    })
}

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut txid: Option<u64> = None;
    while let Some(arg) = args.next().map_err(cli::usage("rollback"))? {
        match arg {
            lexopt::Arg::Value(v) if txid.is_none() => {
                let v = cli::text("rollback", v)?;
                txid = Some(v.parse().map_err(|_| {
                    Error::usage(format!(
                        "rollback: `{v}` is not a transaction number (warp history lists them)"
                    ))
                })?);
            }
            other => return Err(cli::usage("rollback")(other.unexpected())),
        }
    }
    let lock = cli::lock_and_recover(ctx)?;
    let history = db::history(&ctx.layout)?;
    let entry = match txid {
        None => history
            .last()
            .ok_or_else(|| Error::failure("rollback: no transaction yet, nothing to roll back"))?,
        Some(id) => history.iter().find(|e| e.txid == id).ok_or_else(|| {
            Error::failure(format!(
                "rollback: no transaction {id} in the history (warp history lists them)"
            ))
        })?,
    };
    let db = Db::load(&ctx.layout)?;
    let plan = plan(&ctx.layout, &db, entry)?;
    let world_now: Vec<String> = db::load_world(&ctx.layout)?
        .iter()
        .map(|c| c.to_string())
        .collect();
    if plan.install.is_empty()
        && plan.remove.is_empty()
        && plan.set_auto.is_empty()
        && world_now == entry.world_before
    {
        ctx.info(&format!(
            "rollback: the installed set is already the one before transaction {}",
            entry.txid
        ));
        return Ok(());
    }
    ctx.info(&format!(
        "rollback: back to the set before transaction {} ({})",
        entry.txid, entry.command
    ));
    let summary = txn::apply(ctx, &lock, &plan)?;
    if !ctx.dry_run {
        for l in &summary.changes {
            ctx.info(&format!("rollback: {l}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::root;
    use std::fs;

    fn rollback(r: &crate::testutil::Root, args: &[&str]) -> Result<()> {
        run(&r.ctx, &mut lexopt::Parser::from_args(args.iter().copied()))
    }

    #[test]
    fn rollback_goes_back_and_forth() {
        let r = root();
        let v1 = r.package(
            "hello",
            "1.0",
            &[
                ("usr/local/bin/hello", "v1"),
                ("usr/local/share/hello/a", "a"),
            ],
        );
        let v2 = r.package("hello", "2.0", &[("usr/local/bin/hello", "v2")]);
        let dep = r.package("libgreet", "1", &[("usr/local/lib/libgreet.so", "lib")]);
        r.apply(&[&v1], &[]).unwrap();
        let after_1 = r.files();
        let world_1 = r.read("etc/warp/world");
        r.apply(&[&v2, &dep], &[]).unwrap();
        let after_2 = r.files();

        // The plan undoing transaction 2: hello back to 1.0, libgreet out.
        let db = Db::load(&r.ctx.layout).unwrap();
        let hist = db::history(&r.ctx.layout).unwrap();
        let p = plan(&r.ctx.layout, &db, &hist[1]).unwrap();
        assert_eq!(p.install.len(), 1);
        assert_eq!(p.install[0].manifest.version, "1.0");
        assert_eq!(p.install[0].archive, v1.archive);
        assert_eq!(p.remove, ["libgreet"]);
        assert_eq!(p.command, "rollback 2");

        rollback(&r, &[]).unwrap();
        assert_eq!(r.files(), after_1);
        assert_eq!(r.read("etc/warp/world"), world_1);
        // Rolling back the rollback (transaction 3) goes forward again.
        rollback(&r, &[]).unwrap();
        assert_eq!(r.files(), after_2);
        // Back to before everything.
        rollback(&r, &["1"]).unwrap();
        let left: Vec<String> = r.files().into_keys().collect();
        assert_eq!(left, ["usr", "usr/local"]);
        assert_eq!(db::history(&r.ctx.layout).unwrap().len(), 5);
        // Already there: no transaction.
        rollback(&r, &["1"]).unwrap();
        assert_eq!(db::history(&r.ctx.layout).unwrap().len(), 5);
    }

    #[test]
    fn a_missing_archive_stops_it_before_anything_is_written() {
        let r = root();
        let v1 = r.package("hello", "1.0", &[("usr/local/bin/hello", "v1")]);
        let v2 = r.package("hello", "2.0", &[("usr/local/bin/hello", "v2")]);
        r.apply(&[&v1], &[]).unwrap();
        r.apply(&[&v2], &[]).unwrap();
        fs::remove_file(&v1.archive).unwrap();
        let before = r.listing();
        let err = rollback(&r, &[]).unwrap_err();
        assert!(
            err.msg.contains("not in the archive cache: hello 1.0 (")
                && err.msg.contains(&v1.sha256),
            "{err}"
        );
        assert_eq!(r.listing(), before);
        assert_eq!(
            rollback(&r, &["9"]).unwrap_err().code,
            crate::error::Code::Failure
        );
        assert_eq!(
            rollback(&r, &["x"]).unwrap_err().code,
            crate::error::Code::Usage
        );
    }
}
