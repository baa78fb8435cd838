//! `warp list [--installed|--upgradable]`.
use std::collections::BTreeSet;

use crate::cli::{self, Sources};
use crate::context::Ctx;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::plan;
use crate::resolve::Available;

pub const HELP: &str = "\
warp list: available, installed or upgradable packages

Usage: warp list [--installed | --upgradable]

Without an option: every package the verified indexes offer (newest
version) and every installed one, one per line, marked `[installed]`,
`[installed, dependency]` or `[upgradable from VERSION]`.

  --installed    installed packages: name, version, repository, and
                 `[dependency]` for those installed only as a dependency
  --upgradable   installed packages with a newer version available that
                 the world allows: `name INSTALLED -> NEWEST`
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let (mut installed_only, mut upgradable_only) = (false, false);
    while let Some(arg) = args.next().map_err(cli::usage("list"))? {
        match arg {
            lexopt::Arg::Long("installed") => installed_only = true,
            lexopt::Arg::Long("upgradable") => upgradable_only = true,
            other => return Err(cli::usage("list")(other.unexpected())),
        }
    }
    if installed_only && upgradable_only {
        return Err(Error::usage(
            "list: --installed or --upgradable, not both (see warp list --help)",
        ));
    }
    let _lock = cli::lock_to_read(ctx)?;
    let db = Db::load(&ctx.layout)?;
    let mut out = String::new();
    if installed_only {
        for i in db.packages.values() {
            let dep = if i.auto { " [dependency]" } else { "" };
            out.push_str(&format!("{} {} ({}){dep}\n", i.name, i.version, i.repo));
        }
        return cli::out(&out);
    }
    let sources = Sources::load(ctx)?;
    let world = db::load_world(&ctx.layout)?;
    let available = Available::new(&sources.indexes);
    if upgradable_only {
        for i in db.packages.values() {
            if let Some(e) = plan::upgradable(i, &available, &world) {
                out.push_str(&format!("{} {} -> {}\n", i.name, i.version, e.version));
            }
        }
        return cli::out(&out);
    }
    let names: BTreeSet<&str> = available
        .names()
        .chain(db.packages.keys().map(String::as_str))
        .collect();
    for name in names {
        let newest = available.best(name, |_| true).map(|(_, e)| e);
        let installed = db.packages.get(name);
        let upgrade = installed.and_then(|i| plan::upgradable(i, &available, &world));
        let (version, mark) = match (installed, upgrade, newest) {
            (Some(i), Some(e), _) => (&e.version, format!(" [upgradable from {}]", i.version)),
            (Some(i), None, _) if i.auto => (&i.version, " [installed, dependency]".into()),
            (Some(i), None, _) => (&i.version, " [installed]".into()),
            (None, _, Some(e)) => (&e.version, String::new()),
            (None, _, None) => continue,
        };
        out.push_str(&format!("{name} {version}{mark}\n"));
    }
    cli::out(&out)
}
