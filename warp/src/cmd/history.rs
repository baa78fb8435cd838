//! `warp history`: one line per transaction.
use std::collections::BTreeMap;

use crate::cli;
use crate::context::Ctx;
use crate::db::{self, HistoryEntry, PkgRef};
use crate::error::Result;

pub const HELP: &str = "\
warp history: the transactions, oldest first

Usage: warp history

Prints one line per transaction recorded in var/lib/warp/history/: its
number (TXID, for `warp rollback`), its date and time (UTC), the command
that made it, and what it changed:
  +NAME VERSION          installed
  -NAME VERSION          removed
  NAME OLD -> NEW        upgraded or downgraded
  NAME VERSION (rebuilt) the same version from another archive
  NAME: explicit / auto  now asked for / now only a dependency
A `fix` changes files, not the set: it shows `(same packages)`.

Exit status:
  0  success (also with no transaction yet)
  1  failure (a damaged history file: the message names it)
  2  usage
While another warp runs, the history as it was before its transaction.
";

/// `YYYY-MM-DD HH:MM:SS` (UTC) of seconds since the epoch.
pub(crate) fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days: the proleptic Gregorian date.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// What a transaction changed, as `+a 1 -b 2 c 1 -> 2`.
pub(crate) fn changes(e: &HistoryEntry) -> String {
    let before: BTreeMap<&str, &PkgRef> = e.before.iter().map(|p| (p.name.as_str(), p)).collect();
    let after: BTreeMap<&str, &PkgRef> = e.after.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut names: Vec<&str> = before.keys().chain(after.keys()).copied().collect();
    names.sort_unstable();
    names.dedup();
    let mut out = Vec::new();
    for n in names {
        match (before.get(n), after.get(n)) {
            (None, Some(a)) => out.push(format!("+{n} {}", a.version)),
            (Some(b), None) => out.push(format!("-{n} {}", b.version)),
            (Some(b), Some(a)) => {
                if a.version != b.version {
                    out.push(format!("{n} {} -> {}", b.version, a.version));
                } else if a.sha256 != b.sha256 {
                    out.push(format!("{n} {} (rebuilt)", a.version));
                }
                if a.auto != b.auto {
                    out.push(format!("{n}: {}", if a.auto { "auto" } else { "explicit" }));
                }
            }
            (None, None) => {}
        }
    }
    if out.is_empty() {
        "(same packages)".into()
    } else {
        out.join(" ")
    }
}

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    if let Some(arg) = args.next().map_err(cli::usage("history"))? {
        return Err(cli::usage("history")(arg.unexpected()));
    }
    let _lock = cli::lock_to_read(ctx)?;
    let entries = db::history(&ctx.layout)?;
    if entries.is_empty() {
        ctx.info("history: no transaction yet");
        return Ok(());
    }
    let mut text = String::new();
    for e in &entries {
        text.push_str(&format!(
            "{:>4}  {}  {}: {}\n",
            e.txid,
            utc(e.time),
            e.command,
            changes(e)
        ));
    }
    cli::out(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, version: &str, sha: &str, auto: bool) -> PkgRef {
        PkgRef {
            name: name.into(),
            version: version.into(),
            sha256: sha.into(),
            auto,
            repo: "main".into(),
        }
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(4_102_444_799), "2099-12-31 23:59:59");
    }

    #[test]
    fn changes_line() {
        let e = HistoryEntry {
            txid: 3,
            time: 0,
            command: "upgrade".into(),
            before: vec![
                r("hello", "1.0", "a", false),
                r("lib", "2", "b", true),
                r("old", "2", "c", false),
                r("same", "1", "d", false),
            ],
            after: vec![
                r("hello", "1.1", "e", false),
                r("lib", "2", "f", false),
                r("new", "1", "g", true),
                r("same", "1", "d", false),
            ],
            world_before: vec![],
            world_after: vec![],
        };
        assert_eq!(
            changes(&e),
            "hello 1.0 -> 1.1 lib 2 (rebuilt) lib: explicit +new 1 -old 2"
        );
        let fix = HistoryEntry {
            after: e.before.clone(),
            ..e
        };
        assert_eq!(changes(&fix), "(same packages)");
    }
}
