//! `warp`, K1OS's package manager: the command line. The global options are
//! taken out of the whole line first (they may come before or after the
//! command), then the command reads its own arguments with lexopt.
mod cli;
mod cmd;
mod config;
mod context;
mod crash;
mod db;
mod error;
mod fetch;
mod files;
mod fsutil;
mod http;
mod journal;
mod layout;
mod plan;
mod progress;
mod repos;
mod resolve;
#[cfg(test)]
mod testutil;
mod txn;

use std::ffi::OsString;
use std::process::ExitCode;

use context::Ctx;
use error::{Error, Result};
use layout::Layout;

type Run = fn(&Ctx, &mut lexopt::Parser) -> Result<()>;

/// Every command: name, one line for `warp --help`, its help, its code.
const COMMANDS: &[(&str, &str, &str, Run)] = &[
    (
        "update",
        "fetch and verify every repository's index",
        cmd::update::HELP,
        cmd::update::run,
    ),
    (
        "search",
        "packages whose name or description has TERM",
        cmd::search::HELP,
        cmd::search::run,
    ),
    (
        "info",
        "what a package is, and the files it installed",
        cmd::info::HELP,
        cmd::info::run,
    ),
    (
        "list",
        "available, installed or upgradable packages",
        cmd::list::HELP,
        cmd::list::run,
    ),
    (
        "install",
        "install packages and their dependencies, in one transaction",
        cmd::install::HELP,
        cmd::install::run,
    ),
    (
        "remove",
        "remove packages and the dependencies nothing else needs",
        cmd::remove::HELP,
        cmd::remove::run,
    ),
    (
        "upgrade",
        "the newest allowed versions, in one transaction",
        cmd::upgrade::HELP,
        cmd::upgrade::run,
    ),
    (
        "verify",
        "installed files against their recorded hashes",
        cmd::verify::HELP,
        cmd::verify::run,
    ),
    (
        "fix",
        "restore changed or missing files from the archive cache",
        cmd::fix::HELP,
        cmd::fix::run,
    ),
    (
        "history",
        "the transactions, oldest first",
        cmd::history::HELP,
        cmd::history::run,
    ),
    (
        "rollback",
        "back to the package set before a transaction",
        cmd::rollback::HELP,
        cmd::rollback::run,
    ),
    (
        "recover",
        "finish or undo an interrupted transaction",
        cmd::recover::HELP,
        cmd::recover::run,
    ),
    (
        "repo",
        "list, add or remove repositories",
        cmd::repo::HELP,
        cmd::repo::run,
    ),
    (
        "key",
        "list, add or remove trusted repository keys",
        cmd::key::HELP,
        cmd::key::run,
    ),
];

fn help() -> String {
    let mut s = String::from(
        "warp: K1OS's package manager. Packages come from signed repositories and install\n\
         under /usr/local and /opt only; every change is one crash-safe transaction.\n\n\
         Usage: warp [OPTIONS] COMMAND [ARGS]   (warp COMMAND --help for each command)\n\nCommands:\n",
    );
    for (name, line, _, _) in COMMANDS {
        s.push_str(&format!("  {name:<10}{line}\n"));
    }
    s.push_str(
        "\nOptions (anywhere on the line):\n\
         \x20 --root DIR    manage the tree at DIR instead of / (tests, image building)\n\
         \x20 --dry-run     plan and print; download and write nothing\n\
         \x20 -q, --quiet   only errors and results\n\
         \x20 -v, --verbose say more (URLs, paths, each step)\n\
         \x20 --wait        wait for another running warp instead of failing with status 8\n\
         \x20 -h, --help    this help (warp COMMAND --help: that command's)\n\
         \x20 --version     warp's version\n\
         \nFiles (under the root):\n\
         \x20 usr/share/warp/keys/*.pub      trusted repository keys from the image\n\
         \x20 usr/share/warp/repositories    the image's repository list\n\
         \x20 etc/warp/keys.d/*.pub          trusted keys added by the administrator\n\
         \x20 etc/warp/repositories          the repository list once edited (replaces the image's)\n\
         \x20 etc/warp/world                 what was asked for, one constraint per line\n\
         \x20 var/lib/warp/                  lock, journal, installed database, history, verified indexes\n\
         \x20 var/cache/warp/                verified archives by sha256, partial/ downloads\n\
         \nExit status:\n\
         \x20 0  success\n\
         \x20 1  failure (I/O, a damaged database, anything else)\n\
         \x20 2  usage: a wrong command line\n\
         \x20 3  network: a repository could not be reached or answered with an error\n\
         \x20 4  integrity: a signature, key, serial, hash, size or archive check failed\n\
         \x20 5  resolution: an unknown package, or versions that cannot be met\n\
         \x20 6  conflict: two packages, or a package and a file it does not own, want one path\n\
         \x20 7  no space: not enough free space\n\
         \x20 8  locked: another warp is running (see --wait)\n",
    );
    s
}

/// The command line once the global options are taken out.
#[derive(Debug, Default)]
struct Line {
    root: Option<OsString>,
    dry_run: bool,
    quiet: bool,
    verbose: bool,
    wait: bool,
    help: bool,
    version: bool,
    /// Everything else, in order: the command and its arguments.
    rest: Vec<OsString>,
}

/// Takes the global options out of `args` wherever they are (up to a `--`,
/// after which everything is an argument). `-qv` style clusters count when
/// every letter is a global one.
fn split_globals(args: impl IntoIterator<Item = OsString>) -> Result<Line> {
    let mut line = Line::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let Some(s) = arg.to_str() else {
            line.rest.push(arg);
            continue;
        };
        match s {
            "--" => {
                line.rest.push(arg);
                line.rest.extend(args.by_ref());
                break;
            }
            "--root" => {
                let dir = args
                    .next()
                    .ok_or_else(|| Error::usage("--root needs a directory (--root DIR)"))?;
                line.root = Some(dir);
            }
            "--dry-run" => line.dry_run = true,
            "--quiet" => line.quiet = true,
            "--verbose" => line.verbose = true,
            "--wait" => line.wait = true,
            "--help" => line.help = true,
            "--version" => line.version = true,
            _ if s.starts_with("--root=") => {
                line.root = Some(OsString::from(&s["--root=".len()..]));
            }
            _ if s.len() > 1
                && s.starts_with('-')
                && !s.starts_with("--")
                && s[1..].bytes().all(|b| b"qvh".contains(&b)) =>
            {
                for b in s[1..].bytes() {
                    match b {
                        b'q' => line.quiet = true,
                        b'v' => line.verbose = true,
                        _ => line.help = true,
                    }
                }
            }
            _ => line.rest.push(arg),
        }
    }
    if line.root.as_ref().is_some_and(|r| r.is_empty()) {
        return Err(Error::usage("--root needs a directory (--root DIR)"));
    }
    Ok(line)
}

fn find(name: &str) -> Option<&'static (&'static str, &'static str, &'static str, Run)> {
    COMMANDS.iter().find(|c| c.0 == name)
}

fn unknown_command(name: &str) -> Error {
    Error::usage(format!(
        "unknown command `{name}` (the commands: {}; see warp --help)",
        COMMANDS.iter().map(|c| c.0).collect::<Vec<_>>().join(", ")
    ))
}

fn real_main() -> Result<()> {
    let line = split_globals(std::env::args_os().skip(1))?;
    if line.version {
        cli::outln(format_args!("warp {}", env!("CARGO_PKG_VERSION")))?;
        return Ok(());
    }
    let mut rest = line.rest.into_iter();
    let command = match rest.next() {
        None if line.help => return cli::out(&help()),
        None => {
            return Err(Error::usage(
                "no command given (warp --help lists them; e.g. `warp update`, `warp install hello`)",
            ));
        }
        Some(c) => c
            .into_string()
            .map_err(|c| Error::usage(format!("`{}` is not a command", c.to_string_lossy())))?,
    };
    if command == "help" {
        return match rest.next() {
            None => cli::out(&help()),
            Some(name) => {
                let name = name.to_string_lossy();
                let c = find(&name).ok_or_else(|| unknown_command(&name))?;
                cli::out(c.2)
            }
        };
    }
    if command.starts_with('-') {
        return Err(Error::usage(format!(
            "unknown option `{command}` (see warp --help)"
        )));
    }
    let &(_, _, help_text, run) = find(&command).ok_or_else(|| unknown_command(&command))?;
    if line.help {
        return cli::out(help_text);
    }
    let ctx = Ctx {
        layout: Layout::new(line.root.unwrap_or_else(|| OsString::from("/"))),
        dry_run: line.dry_run,
        quiet: line.quiet,
        verbose: line.verbose,
        wait: line.wait,
    };
    let mut parser = lexopt::Parser::from_args(rest);
    run(&ctx, &mut parser)
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warp: {}", e.msg);
            ExitCode::from(e.code as u8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(args: &[&str]) -> Line {
        split_globals(args.iter().map(OsString::from)).unwrap()
    }

    #[test]
    fn globals_anywhere() {
        let l = split(&["install", "--root", "/tmp/r", "hello", "-qv", "--dry-run"]);
        assert_eq!(l.root, Some("/tmp/r".into()));
        assert!(l.quiet && l.verbose && l.dry_run && !l.wait && !l.help);
        assert_eq!(l.rest, ["install", "hello"]);
        let l = split(&["--root=/r", "--wait", "remove", "-h", "--", "-q"]);
        assert_eq!(l.root, Some("/r".into()));
        assert!(l.wait && l.help && !l.quiet);
        assert_eq!(l.rest, ["remove", "--", "-q"]);
        // Not global: left to the command.
        let l = split(&["install", "--allow-untrusted", "x.warp", "-x"]);
        assert_eq!(l.rest, ["install", "--allow-untrusted", "x.warp", "-x"]);
        assert!(split_globals(["--root"].map(OsString::from)).is_err());
        assert!(split_globals(["--root="].map(OsString::from)).is_err());
    }

    #[test]
    fn every_command_has_help() {
        for (name, line, help, _) in COMMANDS {
            assert!(help.contains(&format!("warp {name}")), "{name}");
            assert!(!help.contains("not written yet"), "{name}");
            assert!(help.len() > 80, "{name}: {help}");
            assert!(!line.is_empty());
        }
        let h = help();
        for code in 0..=8 {
            assert!(h.contains(&format!("\n  {code}  ")), "exit status {code}");
        }
    }
}
