//! `warp key list|add FILE|remove KEYNUM`.
use std::fs;
use std::path::Path;

use crate::cli;
use crate::config::{self, Origin};
use crate::context::Ctx;
use crate::error::{Context, Error, Result};
use crate::files;
use crate::fsutil;

pub const HELP: &str = "\
warp key: list, add or remove trusted repository keys

Usage: warp key list
       warp key add FILE
       warp key remove KEYNUM

A repository's index is trusted only when its signature (index.json.sig,
signify format) was made by one of these keys. The image's keys are in
usr/share/warp/keys/*.pub; the administrator's in etc/warp/keys.d/*.pub.
A key file that does not parse is reported and ignored.

  list            each key: its number (KEYNUM, 16 hex digits), its file,
                  and whether it comes from the image or the administrator
  add FILE        checks that FILE is a signify public key (`untrusted
                  comment: …` and a base64 line, as `signify -G` or
                  `./k1os repo keygen` write) and copies it to
                  etc/warp/keys.d/KEYNUM.pub
  remove KEYNUM   removes an administrator's key; the image's keys cannot be
                  removed (they belong to the image, not to warp)
";

pub fn run(ctx: &Ctx, args: &mut lexopt::Parser) -> Result<()> {
    let mut words = Vec::new();
    while let Some(arg) = args.next().map_err(cli::usage("key"))? {
        match arg {
            lexopt::Arg::Value(v) => words.push(v),
            other => return Err(cli::usage("key")(other.unexpected())),
        }
    }
    let sub = match words.first() {
        None => {
            return Err(Error::usage(
                "key: list, add FILE or remove KEYNUM? (see warp key --help)",
            ));
        }
        Some(w) => w.to_string_lossy().into_owned(),
    };
    match (sub.as_str(), words.len()) {
        ("list", 1) => list(ctx),
        ("add", 2) => add(ctx, Path::new(&words[1])),
        ("remove", 2) => remove(ctx, &words[1].to_string_lossy()),
        ("list" | "add" | "remove", _) => Err(Error::usage(format!(
            "key {sub}: wrong arguments (warp key list | add FILE | remove KEYNUM)"
        ))),
        _ => Err(Error::usage(format!(
            "key: unknown subcommand `{sub}` (list, add, remove)"
        ))),
    }
}

fn list(ctx: &Ctx) -> Result<()> {
    let keys = config::load_keys(ctx)?;
    if keys.is_empty() {
        ctx.info("no trusted keys: every repository index will be refused");
    }
    let mut out = String::new();
    for k in &keys {
        out.push_str(&format!(
            "{} {} ({})\n",
            k.key.keynum,
            k.file.display(),
            k.origin.as_str()
        ));
    }
    cli::out(&out)
}

fn add(ctx: &Ctx, file: &Path) -> Result<()> {
    let key = config::read_key(file)
        .map_err(|e| Error::failure(format!("key add: {} (not added)", e.msg)))?;
    // The file as given, comment and all: it is what `signify -V -p` reads.
    let bytes = files::read_capped(file, warp_format::signify::MAX_FILE as u64)?
        .ok_or_else(|| Error::failure(format!("{}: no such file", file.display())))?;
    let _lock = cli::lock_and_recover(ctx)?;
    let trusted = config::load_keys(ctx)?;
    if let Some(same) = trusted.iter().find(|k| k.key.keynum == key.keynum) {
        if same.key == key {
            ctx.info(&format!(
                "key {} is already trusted ({})",
                key.keynum,
                same.file.display()
            ));
            return Ok(());
        }
        return Err(Error::failure(format!(
            "{}: key number {} is already used by another key ({}); not added",
            file.display(),
            key.keynum,
            same.file.display()
        )));
    }
    let target = ctx.layout.admin_keys().join(format!("{}.pub", key.keynum));
    if ctx.dry_run {
        cli::outln(format_args!(
            "would add key {} as {}",
            key.keynum,
            target.display()
        ))?;
        return Ok(());
    }
    fsutil::atomic_write(&target, &bytes)?;
    ctx.info(&format!("added key {} as {}", key.keynum, target.display()));
    Ok(())
}

fn remove(ctx: &Ctx, keynum: &str) -> Result<()> {
    let wanted = config::parse_keynum(keynum).ok_or_else(|| {
        Error::usage(format!(
            "key remove: `{keynum}` is not a key number (16 hex digits, as `warp key list` shows)"
        ))
    })?;
    let _lock = cli::lock_and_recover(ctx)?;
    let keys = config::load_keys(ctx)?;
    let matching: Vec<_> = keys.iter().filter(|k| k.key.keynum == wanted).collect();
    if matching.is_empty() {
        return Err(Error::failure(format!(
            "no trusted key {wanted} (warp key list)"
        )));
    }
    let mut removed = 0;
    for k in &matching {
        match k.origin {
            Origin::Image => ctx.warn(&format!(
                "key {wanted} in {} comes with the image and cannot be removed by warp",
                k.file.display()
            )),
            Origin::Admin => {
                if ctx.dry_run {
                    cli::outln(format_args!("would remove {}", k.file.display()))?;
                } else {
                    fs::remove_file(&k.file).ctx(|| format!("removing {}", k.file.display()))?;
                    fsutil::fsync_dir(&ctx.layout.admin_keys())?;
                    ctx.info(&format!("removed key {wanted} ({})", k.file.display()));
                }
                removed += 1;
            }
        }
    }
    if removed == 0 {
        return Err(Error::failure(format!(
            "key {wanted} is an image key (usr/share/warp/keys/); only keys in etc/warp/keys.d/ can be removed"
        )));
    }
    Ok(())
}
