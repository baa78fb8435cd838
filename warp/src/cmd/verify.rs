//! `warp verify [PKG…]`: every installed entry against installed.json.
use sha2::{Digest, Sha256};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use warp_format::manifest::Kind;

use crate::cli;
use crate::context::Ctx;
use crate::db::{Db, Installed};
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::txn;

pub const HELP: &str = "\
warp verify: check installed files against their recorded hashes

Usage: warp verify [PKG…]

Compares every entry of each installed package (or of each PKG) with what
var/lib/warp/installed.json records: a file's type, mode, size and sha256;
a symlink's target; a directory's type (directories are shared between
packages, so their modes are not compared). Prints one line per difference,
`PKG: PATH: why`, on stdout. Also reports temporary files (`.warp-*`) left
under /usr/local or /opt that no interrupted transaction accounts for.
An interrupted transaction is finished or undone first (as `warp recover`).
`warp fix` restores what differs.

Arguments:
  PKG…   only these installed packages (default: every one)

Exit status:
  0  every entry matches
  1  failure (a damaged database, an unreadable file, PKG not installed)
  2  usage
  4  a difference was found (listed on stdout)
  8  another warp is running (see --wait)
";

/// The package names of a command line (`verify`, `fix`): plain names, each
/// once.
pub(crate) fn package_names(command: &str, args: &mut lexopt::Parser) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::new();
    while let Some(arg) = args.next().map_err(cli::usage(command))? {
        match arg {
            lexopt::Arg::Value(v) => {
                let name = cli::text(command, v)?;
                if !warp_format::valid_name(&name) {
                    return Err(Error::usage(format!(
                        "{command}: `{name}` is not a package name"
                    )));
                }
                if !names.contains(&name) {
                    names.push(name);
                }
            }
            other => return Err(cli::usage(command)(other.unexpected())),
        }
    }
    Ok(names)
}

/// The installed packages named (all of them when `names` is empty).
pub(crate) fn select<'a>(db: &'a Db, names: &[String]) -> Result<Vec<&'a Installed>> {
    if names.is_empty() {
        return Ok(db.packages.values().collect());
    }
    names
        .iter()
        .map(|n| {
            db.packages
                .get(n)
                .ok_or_else(|| Error::failure(format!("{n} is not installed")))
        })
        .collect()
}

fn describe(t: fs::FileType) -> &'static str {
    if t.is_symlink() {
        "a symlink"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_file() {
        "a file"
    } else {
        "a device, FIFO or socket"
    }
}

/// How the entries of `p` on disk under `root` differ from its manifest:
/// `PATH: why`, one per entry that differs.
pub(crate) fn differences(root: &Path, p: &Installed) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in &p.manifest.files {
        let full = root.join(&f.path);
        let meta = match fs::symlink_metadata(&full) {
            Ok(m) => m,
            Err(e) if fsutil::is_missing(&e) => {
                out.push(format!("{}: missing", f.path));
                continue;
            }
            Err(e) => return Err(e).ctx(|| format!("looking at {}", full.display())),
        };
        let t = meta.file_type();
        let want = match f.kind {
            Kind::Dir => "a directory",
            Kind::File => "a file",
            Kind::Symlink => "a symlink",
        };
        let right_type = match f.kind {
            Kind::Dir => t.is_dir(),
            Kind::File => t.is_file(),
            Kind::Symlink => t.is_symlink(),
        };
        if !right_type {
            out.push(format!(
                "{}: {} where {want} should be",
                f.path,
                describe(t)
            ));
            continue;
        }
        let mut why: Vec<String> = Vec::new();
        match f.kind {
            Kind::Dir => {}
            Kind::Symlink => {
                let target = fs::read_link(&full).ctx(|| format!("reading {}", full.display()))?;
                if target.as_os_str() != f.target.as_str() {
                    why.push(format!(
                        "points to `{}`, not `{}`",
                        target.display(),
                        f.target
                    ));
                }
            }
            Kind::File => {
                let mode = meta.mode() & 0o7777;
                if mode != f.mode {
                    why.push(format!("mode {mode:o}, not {:o}", f.mode));
                }
                if meta.len() != f.size {
                    why.push(format!("{} bytes, not {}", meta.len(), f.size));
                } else if sha256(&full)? != f.sha256 {
                    why.push("content changed (sha256 differs)".into());
                }
            }
        }
        if !why.is_empty() {
            out.push(format!("{}: {}", f.path, why.join("; ")));
        }
    }
    Ok(out)
}

fn sha256(path: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut f = fs::File::open(path).ctx(|| format!("opening {}", path.display()))?;
    io::copy(&mut f, &mut h).ctx(|| format!("reading {}", path.display()))?;
    Ok(warp_format::hex(&h.finalize()))
}

/// The report lines (`PKG: PATH: why`) for `names` (all when empty).
fn report(ctx: &Ctx, names: &[String]) -> Result<(Vec<String>, usize)> {
    let db = Db::load(&ctx.layout)?;
    let mut lines = Vec::new();
    let mut entries = 0;
    for p in select(&db, names)? {
        entries += p.manifest.files.len();
        for d in differences(ctx.layout.root(), p)? {
            lines.push(format!("{}: {d}", p.name));
        }
    }
    for t in txn::stray_temps(&ctx.layout)? {
        lines.push(format!(
            "(no package): {t}: a temporary file no transaction accounts for (delete it)"
        ));
    }
    Ok((lines, entries))
}

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let names = package_names("verify", args)?;
    let _lock = cli::lock_and_recover(ctx)?;
    let (lines, entries) = report(ctx, &names)?;
    if !lines.is_empty() {
        let mut text = lines.join("\n");
        text.push('\n');
        cli::out(&text)?;
        return Err(Error::integrity(format!(
            "verify: {} difference{} (listed above); `warp fix` restores installed files",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        )));
    }
    ctx.info(&format!("verify: {entries} entries checked, all match"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::root;

    #[test]
    fn every_kind_of_difference_is_named() {
        let r = root();
        let h = r.package(
            "hello",
            "1.0",
            &[
                ("usr/local/bin/hello", "hi\n"),
                ("usr/local/bin/hi", "->hello"),
                ("usr/local/bin/same-size", "abc"),
                ("usr/local/share/hello/", ""),
                ("usr/local/share/hello/README", "read me"),
                ("usr/local/share/doc/", ""),
            ],
        );
        r.apply(&[&h], &[]).unwrap();
        let (lines, entries) = report(&r.ctx, &[]).unwrap();
        assert_eq!(lines, Vec::<String>::new());
        assert_eq!(entries, h.manifest.files.len());

        fs::write(r.path("usr/local/bin/hello"), "changed\n").unwrap();
        fs::write(r.path("usr/local/bin/same-size"), "xyz").unwrap();
        fs::set_permissions(
            r.path("usr/local/bin/same-size"),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        fs::remove_file(r.path("usr/local/bin/hi")).unwrap();
        std::os::unix::fs::symlink("elsewhere", r.path("usr/local/bin/hi")).unwrap();
        fs::remove_file(r.path("usr/local/share/hello/README")).unwrap();
        fs::remove_dir(r.path("usr/local/share/doc")).unwrap();
        fs::write(r.path("usr/local/share/doc"), "a file").unwrap();
        fs::write(r.path("usr/local/share/.warp-9-0"), "left over").unwrap();
        let (lines, _) = report(&r.ctx, &["hello".into()]).unwrap();
        assert_eq!(
            lines,
            [
                "hello: usr/local/bin/hello: 8 bytes, not 3",
                "hello: usr/local/bin/hi: points to `elsewhere`, not `hello`",
                "hello: usr/local/bin/same-size: mode 777, not 755; content changed (sha256 differs)",
                "hello: usr/local/share/doc: a file where a directory should be",
                "hello: usr/local/share/hello/README: missing",
                "(no package): usr/local/share/.warp-9-0: a temporary file no transaction accounts for (delete it)",
            ]
        );
        let err = report(&r.ctx, &["nope".into()]).unwrap_err();
        assert_eq!(err.msg, "nope is not installed");
    }

    #[test]
    fn the_command_exits_4_on_a_difference() {
        let r = root();
        let h = r.package("hello", "1.0", &[("usr/local/bin/hello", "hi\n")]);
        r.apply(&[&h], &[]).unwrap();
        run(&r.ctx, &mut lexopt::Parser::from_args(["hello"])).unwrap();
        fs::write(r.path("usr/local/bin/hello"), "hi!\n").unwrap();
        let err = run(&r.ctx, &mut lexopt::Parser::from_args(["hello"])).unwrap_err();
        assert_eq!(err.code, crate::error::Code::Integrity);
        let err = run(&r.ctx, &mut lexopt::Parser::from_args(["--bogus"])).unwrap_err();
        assert_eq!(err.code, crate::error::Code::Usage);
    }
}
