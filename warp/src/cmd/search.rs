//! `warp search TERM…`: packages whose name or description has every TERM.
use std::collections::BTreeSet;

use crate::cli::{self, Sources};
use crate::context::Ctx;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::resolve::Available;

pub const HELP: &str = "\
warp search: packages whose name or description has TERM

Usage: warp search TERM…

Looks through the verified indexes of every repository (and the installed
packages) for names or descriptions containing every TERM, ignoring case.
Prints one line per package: name, newest available version, and its
description; installed packages are marked `[installed]` (or
`[installed VERSION]` when another version is installed).
Run `warp update` first for the repositories' current contents.
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut terms = Vec::new();
    while let Some(arg) = args.next().map_err(cli::usage("search"))? {
        match arg {
            lexopt::Arg::Value(v) => terms.push(cli::text("search", v)?.to_lowercase()),
            other => return Err(cli::usage("search")(other.unexpected())),
        }
    }
    if terms.is_empty() {
        return Err(Error::usage("search: what to look for? (warp search TERM)"));
    }
    let _lock = cli::lock_to_read(ctx)?;
    let sources = Sources::load(ctx)?;
    let db = Db::load(&ctx.layout)?;
    let available = Available::new(&sources.indexes);
    let names: BTreeSet<&str> = available
        .names()
        .chain(db.packages.keys().map(String::as_str))
        .collect();
    let mut out = String::new();
    for name in names {
        let newest = available.best(name, |_| true).map(|(_, e)| e);
        let installed = db.packages.get(name);
        let (version, description) = match (newest, installed) {
            (Some(e), _) => (e.version.as_str(), e.description.as_str()),
            (None, Some(i)) => (i.version.as_str(), i.manifest.description.as_str()),
            (None, None) => continue,
        };
        let haystack = format!("{name}\n{description}").to_lowercase();
        if !terms.iter().all(|t| haystack.contains(t.as_str())) {
            continue;
        }
        let mark = match installed {
            Some(i) if i.version == version => " [installed]".to_string(),
            Some(i) => format!(" [installed {}]", i.version),
            None => String::new(),
        };
        out.push_str(&format!("{name} {version}{mark} - {description}\n"));
    }
    if out.is_empty() {
        ctx.info(&format!("no package matches `{}`", terms.join(" ")));
        return Ok(());
    }
    cli::out(&out)
}
