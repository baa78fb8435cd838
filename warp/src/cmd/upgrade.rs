//! `warp upgrade [PKG…]`.
use std::collections::BTreeSet;

use crate::cli::{self, Sources};
use crate::context::Ctx;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::plan;
use crate::resolve::{self, Available, Mode};

pub const HELP: &str = "\
warp upgrade: the newest allowed versions, in one transaction

Usage: warp upgrade [PKG…]

Replaces every installed package (or each PKG named) with the newest
version the verified indexes offer and the world's constraints allow (run
`warp update` first). Dependencies follow as needed: a newer dependency
when an upgraded package requires it, a new one when it gained one, and
dependencies no longer needed are removed. Everything is one crash-safe
transaction; the plan is printed first (see warp install --help).

With --dry-run: print the plan; download and change nothing.
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut names: BTreeSet<String> = BTreeSet::new();
    while let Some(arg) = args.next().map_err(cli::usage("upgrade"))? {
        match arg {
            lexopt::Arg::Value(v) => {
                let name = cli::text("upgrade", v)?;
                if !warp_format::valid_name(&name) {
                    return Err(Error::usage(format!(
                        "upgrade: `{name}` is not a package name (to choose a version: warp install {name}=VERSION)"
                    )));
                }
                names.insert(name);
            }
            other => return Err(cli::usage("upgrade")(other.unexpected())),
        }
    }
    let lock = cli::lock_and_recover(ctx)?;
    cli::warn_ram_mode(ctx);
    let db = Db::load(&ctx.layout)?;
    for n in &names {
        if !db.packages.contains_key(n) {
            return Err(Error::failure(format!(
                "{n} is not installed (warp install {n})"
            )));
        }
    }
    let sources = Sources::load(ctx)?;
    let world = db::load_world(&ctx.layout)?;
    let available = Available::new(&sources.indexes);
    let command = if names.is_empty() {
        "upgrade".to_string()
    } else {
        format!(
            "upgrade {}",
            names.iter().cloned().collect::<Vec<_>>().join(" ")
        )
    };
    let mode = Mode::Upgrade(if names.is_empty() { None } else { Some(names) });
    let res = resolve::resolve(&world, &db.packages, &available, &mode)?;
    if res.is_empty() {
        ctx.info("nothing to upgrade");
        return Ok(());
    }
    plan::execute(
        ctx,
        &lock,
        &sources,
        &res,
        &db.packages,
        &world,
        command,
        None,
    )
}
