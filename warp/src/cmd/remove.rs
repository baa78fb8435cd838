//! `warp remove PKG…`.
use warp_format::version::Constraint;

use crate::cli::{self, Sources};
use crate::context::Ctx;
use crate::db::{self, Db};
use crate::error::{Error, Result};
use crate::plan;
use crate::resolve::{self, Available, Mode};

pub const HELP: &str = "\
warp remove: remove packages and the dependencies nothing else needs

Usage: warp remove PKG…

Takes each PKG out of the world (etc/warp/world) and removes it, with every
package that was installed only as a dependency and is no longer needed,
in one crash-safe transaction. Refused (status 5, nothing changed) while
another installed package depends on PKG: the message names it.

With --dry-run: print what would be removed; change nothing.
Works without a network and without repository indexes.
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut names: Vec<String> = Vec::new();
    while let Some(arg) = args.next().map_err(cli::usage("remove"))? {
        match arg {
            lexopt::Arg::Value(v) => {
                let name = cli::text("remove", v)?;
                if !warp_format::valid_name(&name) {
                    return Err(Error::usage(format!(
                        "remove: `{name}` is not a package name (remove takes names, no versions)"
                    )));
                }
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            other => return Err(cli::usage("remove")(other.unexpected())),
        }
    }
    if names.is_empty() {
        return Err(Error::usage("remove: which packages? (warp remove PKG…)"));
    }
    let lock = cli::lock_and_recover(ctx)?;
    let db = Db::load(&ctx.layout)?;
    for n in &names {
        if !db.packages.contains_key(n) {
            return Err(Error::failure(format!("{n} is not installed")));
        }
    }
    let old_world = db::load_world(&ctx.layout)?;
    let world: Vec<Constraint> = old_world
        .iter()
        .filter(|c| !names.contains(&c.name))
        .cloned()
        .collect();
    // Nothing is installed by a removal: resolve against the installed set
    // alone (so it works offline, whatever the indexes say).
    let available = Available::default();
    let res = resolve::resolve(&world, &db.packages, &available, &Mode::Keep)?;
    for n in &names {
        if res.chosen.contains_key(n.as_str()) {
            let needer = res.needed_by.get(n.as_str()).copied().unwrap_or("?");
            let how = res
                .chosen
                .get(needer)
                .and_then(|c| {
                    c.depends
                        .iter()
                        .find(|d| Constraint::parse(d).is_ok_and(|d| d.name == *n))
                })
                .map(|d| format!(" ({needer} depends on {d})"))
                .unwrap_or_default();
            return Err(Error::resolution(format!(
                "cannot remove {n}: {needer} needs it{how}; remove {needer} too, or keep {n}"
            )));
        }
    }
    // No download: no repositories needed.
    let sources = Sources::default();
    plan::execute(
        ctx,
        &lock,
        &sources,
        &res,
        &db.packages,
        &world,
        format!("remove {}", names.join(" ")),
        None,
    )
}
