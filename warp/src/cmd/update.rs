//! `warp update`: fetch and verify every repository's index.
use crate::cli;
use crate::config;
use crate::context::Ctx;
use crate::db::{self, Db};
use crate::error::{Code, Error, Result};
use crate::plan;
use crate::repos::{self, Freshness, RepoIndex};
use crate::resolve::Available;

pub const HELP: &str = "\
warp update: fetch and verify every repository's index

Usage: warp update

For each repository in etc/warp/repositories (or the image's
usr/share/warp/repositories), fetches index.json and index.json.sig and
checks, before keeping anything:
  - the signature is there and is a signify signature;
  - it was made by a trusted key (usr/share/warp/keys/*.pub,
    etc/warp/keys.d/*.pub; see `warp key list`) and matches the index's
    exact bytes;
  - the index is format 1 for this architecture;
  - its serial is not lower than the last one seen for the repository, and
    not the same with other content (a replayed or rolled-back repository).
A verified index replaces the stored one in var/lib/warp/repos/NAME/; a
refused one changes nothing, and the previous index stays in use. Every
repository is tried even when one fails; the exit status is then the
failure's (3 network, 4 integrity). A repository that cannot be reached is
one line naming it, its URL and why (`network unreachable — no network?`);
the others still update.

A file:// repository whose directory does not exist is absent, not an
error: the image's `media` repository (file:///run/k1os/media/repo/, the
boot media's) is not there when the media was released (k1os.toram) or
holds no repository. It is skipped with one line and keeps its stored index.

With --dry-run, lists the repositories and fetches nothing.
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    if let Some(arg) = args.next().map_err(cli::usage("update"))? {
        return Err(cli::usage("update")(arg.unexpected()));
    }
    let _lock = cli::lock_and_recover(ctx)?;
    let (repos, from) = config::load_repositories(&ctx.layout)?;
    if repos.is_empty() {
        return Err(Error::failure(format!(
            "no repositories in {} or {}: add one with `warp repo add NAME URL`",
            ctx.layout.repositories().display(),
            ctx.layout.default_repositories().display()
        )));
    }
    if let Some(from) = from {
        ctx.detail(&format!("repositories from {}", from.display()));
    }
    if ctx.dry_run {
        for r in &repos {
            cli::outln(format_args!("would update {} from {}", r.name, r.url))?;
        }
        return Ok(());
    }
    let keys = config::public_keys(&config::load_keys(ctx)?);
    if keys.is_empty() {
        ctx.warn(&format!(
            "no trusted keys in {} or {}: every index will be refused",
            ctx.layout.image_keys().display(),
            ctx.layout.admin_keys().display()
        ));
    }
    let mut failed: Vec<(&str, Error)> = Vec::new();
    for repo in &repos {
        if let Some(dir) = repo.absent_dir() {
            cli::outln(format_args!(
                "{}: skipped: {dir} does not exist (the boot media is not mounted, or holds no \
                 repository)",
                repo.name
            ))?;
            continue;
        }
        match repos::update(ctx, repo, &keys) {
            Ok(u) => {
                let what = match u.freshness {
                    Freshness::First => format!("serial {}, {} packages", u.serial, u.packages),
                    Freshness::Newer { from } => {
                        format!("serial {from} -> {}, {} packages", u.serial, u.packages)
                    }
                    Freshness::Same => format!("up to date (serial {})", u.serial),
                };
                cli::outln(format_args!("{}: {what}", repo.name))?;
            }
            Err(e) => failed.push((&repo.name, e)),
        }
    }
    // What the new indexes offer the installed packages (the stored
    // indexes, verified again like every command reads them).
    let mut indexes = Vec::new();
    for repo in &repos {
        // Quietly: a repository without an index was just reported.
        if let Some(index) = repos::load(repo, &ctx.layout.repo_state(&repo.name), &keys)? {
            indexes.push(RepoIndex {
                repo: repo.clone(),
                index,
            });
        }
    }
    let db = Db::load(&ctx.layout)?;
    let world = db::load_world(&ctx.layout)?;
    let available = Available::new(&indexes);
    let upgradable = db
        .packages
        .values()
        .filter(|i| plan::upgradable(i, &available, &world).is_some())
        .count();
    if upgradable > 0 {
        ctx.info(&format!(
            "{upgradable} installed package{} can be upgraded (warp list --upgradable, warp upgrade)",
            if upgradable == 1 { "" } else { "s" }
        ));
    }
    // The failures last, after what did update: one line each. A single
    // failure is warp's error itself (so an unreachable repository is one
    // line); several are followed by a count.
    let Some((_, first)) = failed.first() else {
        return Ok(());
    };
    let code = first.code;
    if let [(name, e)] = failed.as_slice() {
        let kept = if code == Code::Integrity {
            "; refused: the stored index is unchanged and stays in use"
        } else {
            ""
        };
        return Err(Error::new(code, format!("{name}: {}{kept}", e.msg)));
    }
    for (name, e) in &failed {
        eprintln!("warp: {name}: {}", e.msg);
    }
    Err(Error::new(
        code,
        format!(
            "{} of {} repositories could not be updated; their stored indexes are unchanged",
            failed.len(),
            repos.len()
        ),
    ))
}
