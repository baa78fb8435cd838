//! `warp fix [PKG…]`: reinstalls the packages whose files differ, from the
//! archive cache, as one ordinary transaction.
use crate::cli;
use crate::cmd::verify;
use crate::context::Ctx;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::txn::{self, Change, Plan};

pub const HELP: &str = "\
warp fix: restore changed or missing files from the archive cache

Usage: warp fix [PKG…]

Checks each installed package (or each PKG) as `warp verify` does, and
reinstalls every package with a changed, missing or wrong-typed entry from
its archive in var/cache/warp/, in one crash-safe transaction: all of that
package's files are written again (a changed configuration file under
/usr/local/etc too). Nothing is downloaded. If an archive is no longer in
the cache, nothing is changed and the error names it (remove the package
and install it again to fetch it).

Temporary files (`.warp-*`) that no transaction accounts for are reported,
not deleted.

With --dry-run: say which packages would be reinstalled; change nothing.

Arguments:
  PKG…   only these installed packages (default: every one)

Exit status:
  0  nothing to fix, or fixed
  1  failure (an archive missing from the cache, a damaged database, I/O)
  2  usage
  4  an archive in the cache does not match its recorded sha256 or manifest
  6  a path is now in the way (a directory where a file was, a symlink in
     the path, …): move it away first
  7  not enough free space
  8  another warp is running (see --wait)
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let names = verify::package_names("fix", args)?;
    let lock = cli::lock_and_recover(ctx)?;
    let db = Db::load(&ctx.layout)?;
    let mut install = Vec::new();
    let mut missing = Vec::new();
    for p in verify::select(&db, &names)? {
        let diffs = verify::differences(ctx.layout.root(), p)?;
        if diffs.is_empty() {
            continue;
        }
        ctx.info(&format!(
            "{} {}: {} entr{} to restore",
            p.name,
            p.version,
            diffs.len(),
            if diffs.len() == 1 { "y" } else { "ies" }
        ));
        for d in &diffs {
            ctx.detail(d);
        }
        let archive = ctx.layout.cached_archive(&p.sha256);
        if !archive.is_file() {
            missing.push(format!("{} {} ({})", p.name, p.version, archive.display()));
            continue;
        }
        install.push(Change {
            manifest: p.manifest.clone(),
            archive,
            sha256: p.sha256.clone(),
            repo: p.repo.clone(),
            auto: p.auto,
        });
    }
    for t in txn::stray_temps(&ctx.layout)? {
        ctx.warn(&format!(
            "{t}: a temporary file no transaction accounts for; delete it by hand"
        ));
    }
    if !missing.is_empty() {
        return Err(Error::failure(format!(
            "fix: not in the archive cache: {}; nothing was changed (remove the package and \
             install it again to fetch its archive)",
            missing.join(", ")
        )));
    }
    if install.is_empty() {
        ctx.info("fix: every installed file matches; nothing to do");
        return Ok(());
    }
    let command = if names.is_empty() {
        "fix".to_string()
    } else {
        format!("fix {}", names.join(" "))
    };
    let plan = Plan {
        install,
        remove: Vec::new(),
        set_auto: Vec::new(),
        world: db::load_world(&ctx.layout)?,
        command,
    };
    let summary = txn::apply(ctx, &lock, &plan)?;
    if !ctx.dry_run {
        for l in &summary.changes {
            ctx.info(&format!("fix: {l}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use crate::testutil::root;
    use std::fs;

    #[test]
    fn fix_restores_changed_and_missing_entries() {
        let r = root();
        let h = r.package(
            "hello",
            "1.0",
            &[
                ("usr/local/bin/hello", "hi\n"),
                ("usr/local/bin/hi", "->hello"),
                ("usr/local/share/hello/README", "read me"),
            ],
        );
        let other = r.package("other", "1", &[("opt/other/x", "x")]);
        r.apply(&[&h, &other], &[]).unwrap();
        let good = r.files();
        fs::write(r.path("usr/local/bin/hello"), "changed").unwrap();
        fs::remove_dir_all(r.path("usr/local/share/hello")).unwrap();
        fs::remove_file(r.path("usr/local/bin/hi")).unwrap();
        run(&r.ctx, &mut lexopt::Parser::from_args(Vec::<String>::new())).unwrap();
        assert_eq!(r.files(), good);
        let hist = db::history(&r.ctx.layout).unwrap();
        assert_eq!(hist.last().unwrap().command, "fix");
        // Nothing to do: no transaction.
        run(&r.ctx, &mut lexopt::Parser::from_args(["hello"])).unwrap();
        assert_eq!(db::history(&r.ctx.layout).unwrap().len(), hist.len());
    }

    #[test]
    fn a_missing_archive_is_named_and_nothing_changes() {
        let r = root();
        let h = r.package("hello", "1.0", &[("usr/local/bin/hello", "hi\n")]);
        r.apply(&[&h], &[]).unwrap();
        fs::remove_file(&h.archive).unwrap();
        fs::write(r.path("usr/local/bin/hello"), "changed").unwrap();
        let before = r.listing();
        let err = run(&r.ctx, &mut lexopt::Parser::from_args(["hello"])).unwrap_err();
        assert_eq!(err.code, Code::Failure);
        assert!(
            err.msg.contains("hello 1.0 (") && err.msg.contains(&h.sha256),
            "{err}"
        );
        assert_eq!(r.listing(), before);
    }
}
