//! `warp recover`: finishes or undoes an interrupted transaction (every
//! other command does this first too; stage 2 runs it at boot).
use crate::cli;
use crate::context::Ctx;
use crate::error::Result;
use crate::txn;

pub const HELP: &str = "\
warp recover: finish or undo an interrupted transaction

Usage: warp recover

Reads the journal (var/lib/warp/journal.json) an interrupted transaction
left. Before its commit point (state `staging`) the transaction is undone:
its temporary files (`.warp-*`) and the empty directories it created are
removed, and the old package set stands. After it (state `committing`) it is
finished: every new file was already written and synced, so the remaining
renames, removals and database writes are done, and the new set stands.
Prints what it did, or `nothing to recover` (not with -q: then it prints
only what it did). Every other warp command does this first; stage 2 runs
`warp -q recover` at boot, before the services start. A journal that cannot be read is an
error naming it: warp never guesses what to delete.

Temporary files that no journal accounts for are reported (not deleted).

With --dry-run: say what would be done; change nothing.

Exit status:
  0  success (recovered, or nothing to recover)
  1  failure (a damaged journal or database, I/O: the message names the file)
  2  usage
  7  no space left to finish
  8  another warp is running (see --wait)
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    if let Some(arg) = args.next().map_err(cli::usage("recover"))? {
        return Err(cli::usage("recover")(arg.unexpected()));
    }
    let lock = txn::lock(ctx)?;
    let what = txn::recover(&ctx.layout, &lock)?;
    for t in txn::stray_temps(&ctx.layout)? {
        ctx.warn(&format!(
            "{t}: a temporary file no transaction accounts for; delete it by hand"
        ));
    }
    match what {
        Some(what) => cli::outln(format_args!("{what}")),
        None if ctx.quiet => Ok(()),
        None => cli::outln(format_args!("nothing to recover")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::journal::{Journal, State};
    use crate::testutil::root;

    #[test]
    fn recover_finishes_a_committed_removal() {
        let r = root();
        let h = r.package("hello", "1.0", &[("usr/local/bin/hello", "hi")]);
        r.apply(&[&h], &[]).unwrap();
        // A journal as a removal leaves it at its commit point.
        let mut j = Journal::load(&r.ctx.layout).unwrap();
        assert!(j.is_none());
        let hist = crate::db::history(&r.ctx.layout).unwrap();
        let mut entry = hist[0].clone();
        entry.txid = 2;
        entry.before = entry.after.clone();
        entry.after.clear();
        j = Some(Journal {
            txid: 2,
            state: State::Committing,
            mkdirs: vec![],
            staged: vec![],
            unlinks: vec!["usr/local/bin/hello".into()],
            rmdirs: vec!["usr/local/bin".into()],
            installed: Db::default(),
            world: vec![],
            history: entry,
        });
        j.as_ref().unwrap().save(&r.ctx.layout).unwrap();
        run(&r.ctx, &mut lexopt::Parser::from_args(Vec::<String>::new())).unwrap();
        assert!(!r.path("usr/local/bin").exists());
        assert!(Db::load(&r.ctx.layout).unwrap().packages.is_empty());
        assert!(!r.ctx.layout.journal().exists());
        run(&r.ctx, &mut lexopt::Parser::from_args(Vec::<String>::new())).unwrap();
        assert_eq!(
            run(&r.ctx, &mut lexopt::Parser::from_args(["x"]))
                .unwrap_err()
                .code,
            crate::error::Code::Usage
        );
    }
}
