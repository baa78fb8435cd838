//! Downloading archives into the cache: `var/cache/warp/partial/<sha256>.part`
//! first, never more than the index's `size` bytes, then size and sha256
//! checked, fsync, and a rename to `var/cache/warp/<sha256>.warp`. A file in
//! the cache is only ever one whose hash was checked, and it is checked
//! again before it is reused.
use sha2::{Digest, Sha256};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use warp_format::index::Entry;
use warp_format::manifest::Manifest;

use crate::config::Repo;
use crate::context::Ctx;
use crate::error::{Context, Error, Result};
use crate::fsutil;
use crate::http::{self, Got};
use crate::progress::Progress;

/// Puts `entry`'s archive from `repo` into the cache (or finds it there)
/// and returns its path.
pub fn archive(ctx: &Ctx, repo: &Repo, entry: &Entry) -> Result<PathBuf> {
    let layout = &ctx.layout;
    let cached = layout.cached_archive(&entry.sha256);
    let who = format!("{} {}", entry.name, entry.version);
    if cached.exists() {
        match hash_file(&cached)? {
            (size, sha) if size == entry.size && sha == entry.sha256 => {
                ctx.detail(&format!("{who}: in the cache ({})", cached.display()));
                return Ok(cached);
            }
            _ => {
                ctx.warn(&format!(
                    "{}: does not match its name; downloading {who} again",
                    cached.display()
                ));
                fs::remove_file(&cached).ctx(|| format!("removing {}", cached.display()))?;
            }
        }
    }

    let url = repo.url.join(&entry.file);
    let partial = layout.partial();
    fs::create_dir_all(&partial).ctx(|| format!("creating {}", partial.display()))?;
    let part = partial.join(format!("{}.part", entry.sha256));
    ctx.detail(&format!("downloading {url} to {}", part.display()));
    if let Some(dir) = repo.absent_dir() {
        return Err(Error::network(format!(
            "{who}: repository `{}` is not there: {dir} does not exist (the boot media is not \
             mounted, or holds no repository)",
            repo.name
        )));
    }
    let result = download(ctx, &url, &part, entry, &who);
    if let Err(e) = result {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    fs::rename(&part, &cached)
        .ctx(|| format!("renaming {} to {}", part.display(), cached.display()))?;
    fsutil::fsync_dir(&layout.cache())?;
    Ok(cached)
}

fn download(ctx: &Ctx, url: &http::Url, part: &Path, entry: &Entry, who: &str) -> Result<()> {
    let mut file = fs::File::create(part).ctx(|| format!("creating {}", part.display()))?;
    let mut hash = Sha256::new();
    let mut progress = Progress::new(who.to_string(), entry.size, ctx.quiet);
    let got = http::get(url, entry.size, &mut |piece| {
        hash.update(piece);
        progress.add(piece.len() as u64);
        file.write_all(piece)
            .ctx(|| format!("writing {}", part.display()))
    });
    progress.finish();
    let size = match got.map_err(|e| Error::new(e.code, format!("{who}: {}", e.msg)))? {
        Got::Body(n) => n,
        Got::NotFound => {
            return Err(Error::network(format!(
                "{who}: {url}: not found; the index names a file the repository does \
                 not have (run `warp update`?)"
            )));
        }
    };
    if size != entry.size {
        return Err(Error::integrity(format!(
            "{who}: {url}: {size} bytes, the signed index says {}",
            entry.size
        )));
    }
    let sha = warp_format::hex(&hash.finalize());
    if sha != entry.sha256 {
        return Err(Error::integrity(format!(
            "{who}: {url}: sha256 {sha}, the signed index says {} (a damaged or substituted archive)",
            entry.sha256
        )));
    }
    file.sync_all()
        .ctx(|| format!("syncing {}", part.display()))
}

/// Size and sha256 of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String)> {
    let mut f = fs::File::open(path).ctx(|| format!("reading {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0; 64 << 10];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .ctx(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, warp_format::hex(&hash.finalize())))
}

/// Checks that a downloaded archive is the package the index promised: the
/// same name and version, and the dependencies and conflicts the resolver
/// used.
pub fn check_manifest(manifest: &Manifest, entry: &Entry, archive: &Path) -> Result<()> {
    let differs = |what: &str, m: String, i: String| {
        Error::integrity(format!(
            "{}: its manifest says {what} {m}, the signed index says {i} ({})",
            entry.id(),
            archive.display()
        ))
    };
    if manifest.name != entry.name || manifest.version != entry.version {
        return Err(differs(
            "package",
            format!("{} {}", manifest.name, manifest.version),
            entry.id(),
        ));
    }
    if manifest.depends != entry.depends {
        return Err(differs(
            "depends",
            format!("{:?}", manifest.depends),
            format!("{:?}", entry.depends),
        ));
    }
    if manifest.conflicts != entry.conflicts {
        return Err(differs(
            "conflicts",
            format!("{:?}", manifest.conflicts),
            format!("{:?}", entry.conflicts),
        ));
    }
    Ok(())
}
