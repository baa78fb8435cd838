//! `warp info PKG [--files]`: what a package is, and what it installed.
use crate::cli::{self, Sources};
use crate::context::Ctx;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::progress::human_size;
use crate::resolve::Available;
use warp_format::manifest::Kind;
use warp_format::version;

pub const HELP: &str = "\
warp info: what a package is, and the files it installed

Usage: warp info PKG [--files]

Shows what the verified indexes and the installed database know about PKG:
its description and licence, the installed version (with its repository,
whether it was asked for or is only a dependency, and the transaction that
installed it), every available version with its repository, dependencies,
conflicts, download and installed sizes.

  --files   list the files, symlinks and directories PKG installed, one per
            line (`/usr/local/bin/hello`; directories end with `/`,
            symlinks show `-> TARGET`), from the installed database
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut name = None;
    let mut files = false;
    while let Some(arg) = args.next().map_err(cli::usage("info"))? {
        match arg {
            lexopt::Arg::Long("files") => files = true,
            lexopt::Arg::Value(v) if name.is_none() => name = Some(cli::text("info", v)?),
            other => return Err(cli::usage("info")(other.unexpected())),
        }
    }
    let name = name.ok_or_else(|| Error::usage("info: which package? (warp info PKG)"))?;
    let _lock = cli::lock_to_read(ctx)?;
    let db = Db::load(&ctx.layout)?;
    let installed = db.packages.get(&name);
    if files {
        let i = installed.ok_or_else(|| {
            Error::failure(format!(
                "{name} is not installed (--files lists what an installed package put on disk)"
            ))
        })?;
        let mut out = String::new();
        for f in &i.manifest.files {
            match f.kind {
                Kind::Dir => out.push_str(&format!("/{}/\n", f.path)),
                Kind::File => out.push_str(&format!("/{}\n", f.path)),
                Kind::Symlink => out.push_str(&format!("/{} -> {}\n", f.path, f.target)),
            }
        }
        return cli::out(&out);
    }
    let sources = Sources::load(ctx)?;
    let available = Available::new(&sources.indexes);
    let mut versions: Vec<_> = available.versions(&name).to_vec();
    versions.sort_by(|a, b| version::compare(&b.1.version, &a.1.version));
    let newest = versions.first().map(|(_, e)| *e);
    // Description and the rest: of the installed version when there is
    // one, else of the newest available.
    let (description, license, depends, conflicts) = match (installed, newest) {
        (Some(i), _) => (
            &i.manifest.description,
            &i.manifest.license,
            &i.manifest.depends,
            &i.manifest.conflicts,
        ),
        (None, Some(e)) => (&e.description, &e.license, &e.depends, &e.conflicts),
        (None, None) => {
            return Err(Error::failure(format!(
                "unknown package {name}: not installed, and in no repository index (warp search, warp update)"
            )));
        }
    };
    let mut out = format!("{name}\n");
    let field = |out: &mut String, k: &str, v: &str| {
        if !v.is_empty() {
            out.push_str(&format!("  {k:<15}{v}\n"));
        }
    };
    field(&mut out, "description:", description);
    field(&mut out, "license:", license);
    if let Some(i) = installed {
        let why = if i.auto { "a dependency" } else { "asked for" };
        field(
            &mut out,
            "installed:",
            &format!(
                "{} from {}, {why}, transaction {}; {} on disk",
                i.version,
                i.repo,
                i.txid,
                human_size(i.manifest.installed_size())
            ),
        );
    }
    let list: Vec<String> = versions
        .iter()
        .map(|(repo, e)| format!("{} ({repo})", e.version))
        .collect();
    field(&mut out, "available:", &list.join(", "));
    field(&mut out, "depends:", &depends.join(", "));
    field(&mut out, "conflicts:", &conflicts.join(", "));
    if let Some(e) = newest {
        field(
            &mut out,
            "size:",
            &format!(
                "{} download, {} installed ({})",
                human_size(e.size),
                human_size(e.installed_size),
                e.id()
            ),
        );
    }
    cli::out(&out)
}
