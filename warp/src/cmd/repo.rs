//! `warp repo list|add NAME URL|remove NAME`.
use crate::cli;
use crate::config::{self, Repo};
use crate::context::Ctx;
use crate::error::{Error, Result};
use crate::http::Url;
use crate::repos;

pub const HELP: &str = "\
warp repo: list, add or remove repositories

Usage: warp repo list
       warp repo add NAME URL
       warp repo remove NAME

The list is etc/warp/repositories when it exists, else the image's
usr/share/warp/repositories. `add` and `remove` write
etc/warp/repositories (starting from the image's list the first time), so
the image's list is never changed.

  list              each repository: name, URL, and the serial of its
                    stored verified index (or `not updated yet`)
  add NAME URL      NAME is a-z, 0-9, `_` and `-`; URL is http://HOST[:PORT]/PATH/
                    or file:///PATH/ (a directory on this machine).
                    HTTPS is not supported yet: warp trusts the signed index,
                    so plain http is safe for integrity. Run `warp update` next.
  remove NAME       also forgets NAME's stored index and serial; installed
                    packages from it stay installed

Indexes are trusted only when signed by a trusted key: see warp key --help.
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut words = Vec::new();
    while let Some(arg) = args.next().map_err(cli::usage("repo"))? {
        match arg {
            lexopt::Arg::Value(v) => words.push(cli::text("repo", v)?),
            other => return Err(cli::usage("repo")(other.unexpected())),
        }
    }
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["list"] => list(ctx),
        ["add", name, url] => add(ctx, name, url),
        ["remove", name] => remove(ctx, name),
        [] => Err(Error::usage(
            "repo: list, add NAME URL or remove NAME? (see warp repo --help)",
        )),
        [sub, ..] if ["list", "add", "remove"].contains(sub) => Err(Error::usage(format!(
            "repo {sub}: wrong arguments (warp repo list | add NAME URL | remove NAME)"
        ))),
        [sub, ..] => Err(Error::usage(format!(
            "repo: unknown subcommand `{sub}` (list, add, remove)"
        ))),
    }
}

fn list(ctx: &Ctx) -> Result<()> {
    let (repos, from) = config::load_repositories(&ctx.layout)?;
    match &from {
        Some(f) => ctx.info(&format!("# from {}", f.display())),
        None => ctx.info("# no repositories (warp repo add NAME URL)"),
    }
    let mut out = String::new();
    for r in &repos {
        let state = match repos::stored_serial(ctx, &r.name)? {
            Some(serial) => format!("serial {serial}"),
            None => "not updated yet".into(),
        };
        out.push_str(&format!("{} {} ({state})\n", r.name, r.url));
    }
    cli::out(&out)
}

fn add(ctx: &Ctx, name: &str, url: &str) -> Result<()> {
    if !config::valid_repo_name(name) {
        return Err(Error::usage(format!(
            "repo add: `{name}` is not a repository name (a-z, 0-9, `_` and `-`)"
        )));
    }
    let url = Url::parse(url).map_err(|e| Error::usage(format!("repo add: {e}")))?;
    let _lock = cli::lock_and_recover(ctx)?;
    let (mut repos, _) = config::load_repositories(&ctx.layout)?;
    if let Some(r) = repos.iter().find(|r| r.name == name) {
        return Err(Error::failure(format!(
            "repository `{name}` is already in the list ({}); `warp repo remove {name}` first",
            r.url
        )));
    }
    repos.push(Repo {
        name: name.into(),
        url: url.clone(),
    });
    if ctx.dry_run {
        cli::outln(format_args!("would add {name} {url}"))?;
        return Ok(());
    }
    // A repository of that name removed earlier left nothing behind
    // (`remove` forgets its index), so its serial starts afresh.
    config::write_repositories(&ctx.layout, &repos)?;
    ctx.info(&format!(
        "added {name} {url} to {}; run `warp update`",
        ctx.layout.repositories().display()
    ));
    Ok(())
}

fn remove(ctx: &Ctx, name: &str) -> Result<()> {
    let _lock = cli::lock_and_recover(ctx)?;
    let (mut repos, _) = config::load_repositories(&ctx.layout)?;
    let before = repos.len();
    repos.retain(|r| r.name != name);
    if repos.len() == before {
        return Err(Error::failure(format!(
            "no repository `{name}` (warp repo list)"
        )));
    }
    if ctx.dry_run {
        cli::outln(format_args!("would remove {name}"))?;
        return Ok(());
    }
    config::write_repositories(&ctx.layout, &repos)?;
    repos::forget(ctx, name)?;
    ctx.info(&format!(
        "removed {name} from {}",
        ctx.layout.repositories().display()
    ));
    Ok(())
}
