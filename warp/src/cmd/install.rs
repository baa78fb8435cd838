//! `warp install PKG[=V|>=V]…` and `warp install --allow-untrusted FILE`.
use std::fs;
use std::path::{Path, PathBuf};

use warp_format::index::Entry;
use warp_format::version::{Constraint, Op};

use crate::cli::{self, Sources};
use crate::context::Ctx;
use crate::db::{self, Db};
use crate::error::{Context, Error, Result};
use crate::fetch;
use crate::fsutil;
use crate::plan::{self, LOCAL, Local};
use crate::resolve::{self, Available, Mode};
use crate::txn;

pub const HELP: &str = "\
warp install: install packages and their dependencies, in one transaction

Usage: warp install PKG[=VERSION|>=VERSION|<VERSION]…
       warp install --allow-untrusted FILE.warp

Adds each PKG to the world (etc/warp/world; a new constraint on a name
replaces the old one), resolves the dependencies from the verified indexes
(run `warp update` first), prints the plan, downloads and checks every
archive against the signed index, and installs everything in one
crash-safe transaction. Installed versions that still meet every
constraint are kept (`warp upgrade` takes newer ones). Dependencies are
installed as such and removed with the last package that needs them;
installing a package that was only a dependency makes it explicit.

Plan lines: `+ NAME VERSION (SIZE)` new, `^ NAME OLD -> NEW` upgrade,
`v NAME OLD -> NEW` downgrade, `- NAME VERSION` removal, `*` a package
changing between asked-for and dependency.

  --allow-untrusted FILE.warp
      install one local archive that no repository signed. warp cannot tell
      who made it or whether it was changed: it says so loudly. Its files
      are checked like any package's, its dependencies must be installed or
      available from the repositories, and the world pins it at its version
      (repository `local`).

With --dry-run: print the plan; download and change nothing. In RAM mode
(run/k1os/boot says mode=ram) what is installed is gone at the next boot.
Exit status 5 when a package or version cannot be found, 6 for a conflict.
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut wanted: Vec<Constraint> = Vec::new();
    let mut untrusted: Option<PathBuf> = None;
    while let Some(arg) = args.next().map_err(cli::usage("install"))? {
        match arg {
            lexopt::Arg::Long("allow-untrusted") => {
                let file = args.value().map_err(cli::usage("install"))?;
                if untrusted.replace(PathBuf::from(file)).is_some() {
                    return Err(Error::usage(
                        "install: one --allow-untrusted FILE at a time",
                    ));
                }
            }
            lexopt::Arg::Value(v) => {
                let text = cli::text("install", v)?;
                let c =
                    Constraint::parse(&text).map_err(|e| Error::usage(format!("install: {e}")))?;
                if wanted.iter().any(|w| w.name == c.name) {
                    return Err(Error::usage(format!(
                        "install: `{}` is named twice",
                        c.name
                    )));
                }
                wanted.push(c);
            }
            other => return Err(cli::usage("install")(other.unexpected())),
        }
    }
    match (untrusted, wanted.is_empty()) {
        (Some(file), true) => install_local(ctx, &file),
        (Some(_), false) => Err(Error::usage(
            "install: --allow-untrusted FILE installs that one file; name other packages in another command",
        )),
        (None, true) => Err(Error::usage(
            "install: which packages? (warp install PKG…, see warp install --help)",
        )),
        (None, false) => install_named(ctx, &wanted),
    }
}

fn install_named(ctx: &Ctx, wanted: &[Constraint]) -> Result<()> {
    let lock = cli::lock_and_recover(ctx)?;
    cli::warn_ram_mode(ctx);
    let sources = Sources::load(ctx)?;
    let db = Db::load(&ctx.layout)?;
    let old_world = db::load_world(&ctx.layout)?;
    let world = plan::with(&old_world, wanted);
    let available = Available::new(&sources.indexes);
    let res = resolve::resolve(&world, &db.packages, &available, &Mode::Keep)?;
    for c in wanted {
        if let Some(i) = db.packages.get(&c.name)
            && !res.install.iter().any(|p| p.entry.name == c.name)
        {
            ctx.info(&format!("{} {} is already installed", i.name, i.version));
        }
    }
    if res.is_empty() && world == old_world {
        ctx.info("nothing to do");
        return Ok(());
    }
    let names: Vec<String> = wanted.iter().map(|c| c.to_string()).collect();
    plan::execute(
        ctx,
        &lock,
        &sources,
        &res,
        &db.packages,
        &world,
        format!("install {}", names.join(" ")),
        None,
    )
}

fn install_local(ctx: &Ctx, file: &Path) -> Result<()> {
    let (size, sha256) = fetch::hash_file(file)?;
    let manifest = txn::read_manifest(file)?;
    ctx.warn(&format!(
        "installing an UNVERIFIED package: {} ({} {}) is not signed by any trusted key; \
         warp cannot tell who made it or whether it was changed",
        file.display(),
        manifest.name,
        manifest.version
    ));
    let entry = Entry {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        description: manifest.description.clone(),
        license: manifest.license.clone(),
        depends: manifest.depends.clone(),
        conflicts: manifest.conflicts.clone(),
        file: format!("{}-{}.warp", manifest.name, manifest.version),
        size,
        sha256: sha256.clone(),
        installed_size: manifest.installed_size(),
    };
    let pin = Constraint {
        name: manifest.name.clone(),
        op: Op::Eq,
        version: manifest.version.clone(),
    };

    let lock = cli::lock_and_recover(ctx)?;
    cli::warn_ram_mode(ctx);
    let sources = Sources::load(ctx)?;
    let db = Db::load(&ctx.layout)?;
    let old_world = db::load_world(&ctx.layout)?;
    let world = plan::with(&old_world, std::slice::from_ref(&pin));
    // The local file first: it wins over an index entry of the same version.
    let mut available = Available::default();
    available.add(LOCAL, &entry);
    for ri in &sources.indexes {
        available.add_index(ri);
    }
    let res = resolve::resolve(&world, &db.packages, &available, &Mode::Keep)?;
    if res.is_empty() && world == old_world {
        ctx.info(&format!("{} is already installed", entry.id()));
        return Ok(());
    }
    let archive = if ctx.dry_run {
        file.to_path_buf()
    } else {
        cache_local(ctx, file, &entry)?
    };
    let local = Local { archive, manifest };
    plan::execute(
        ctx,
        &lock,
        &sources,
        &res,
        &db.packages,
        &world,
        format!("install --allow-untrusted {}", file.display()),
        Some(&local),
    )
}

/// Copies a local archive into the cache (so `fix` and `rollback` find it
/// like any other), checking that the copy has the hash the plan was made
/// from (the file could change while warp reads it).
fn cache_local(ctx: &Ctx, file: &Path, entry: &Entry) -> Result<PathBuf> {
    let cached = ctx.layout.cached_archive(&entry.sha256);
    if cached.exists() && fetch::hash_file(&cached)? == (entry.size, entry.sha256.clone()) {
        return Ok(cached);
    }
    let partial = ctx.layout.partial();
    fs::create_dir_all(&partial).ctx(|| format!("creating {}", partial.display()))?;
    let part = partial.join(format!("{}.part", entry.sha256));
    let copy = || -> Result<()> {
        fs::copy(file, &part)
            .ctx(|| format!("copying {} to {}", file.display(), part.display()))?;
        fs::File::open(&part)
            .and_then(|f| f.sync_all())
            .ctx(|| format!("syncing {}", part.display()))?;
        if fetch::hash_file(&part)? != (entry.size, entry.sha256.clone()) {
            return Err(Error::integrity(format!(
                "{}: changed while warp was reading it",
                file.display()
            )));
        }
        fs::rename(&part, &cached)
            .ctx(|| format!("renaming {} to {}", part.display(), cached.display()))
    };
    if let Err(e) = copy() {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    fsutil::fsync_dir(&ctx.layout.cache())?;
    Ok(cached)
}
