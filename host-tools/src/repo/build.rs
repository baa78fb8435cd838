//! `repo build`: the repository packages (`repository = true`) built with
//! the same plan and cache as the image's ([`crate::packages`]), each packed
//! into a reproducible `NAME-VERSION.warp`, then `index.json`, its signature
//! and the public key, in one directory ready to serve.
use anyhow::{Context, Result, anyhow, bail, ensure};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use warp_format::archive;
use warp_format::index::{self, Index};
use warp_format::manifest::{self, Manifest};

use super::keys;
use crate::hash::sha256_file;
use crate::packages::{Built, Plan, Planned, Settings};
use crate::{initramfs, paths};

/// zstd level of the archives. Fixed, so two builds give the same bytes.
/// Measured on 50 MB of shared libraries, one thread: level 12 packs in
/// 4.5 s to 26 %, 15 in 15 s, 19 in 42 s to 24 %; decompression speed
/// hardly differs. 12 keeps a large package's build short.
pub const ZSTD_LEVEL: i32 = 12;
/// The repository's name in `index.json`.
pub const REPO_NAME: &str = "k1os";

/// What `repo build` builds, and where.
#[derive(Clone, Debug)]
pub struct Options {
    pub settings: Settings,
    /// The repository directory (default `build/repo/`).
    pub out: PathBuf,
    /// `index.json`'s serial [default: `SOURCE_DATE_EPOCH`].
    pub serial: Option<u64>,
}

impl Options {
    /// The checkout's packages into `build/repo/`.
    pub fn default_for_checkout() -> Options {
        Options {
            settings: Settings::default_for_checkout(),
            out: paths::build_dir().join("repo"),
            serial: None,
        }
    }
}

/// One archive of the repository.
#[derive(Clone, Debug)]
pub struct Published {
    pub name: String,
    pub version: String,
    /// The archive's file name in the repository.
    pub file: String,
    /// The archive's size (compressed).
    pub size: u64,
    /// The sum of its files' sizes.
    pub installed_size: u64,
}

/// What [`build`] made.
#[derive(Clone, Debug)]
pub struct Repository {
    pub dir: PathBuf,
    pub packages: Vec<Published>,
    pub serial: u64,
    /// The signing key's name (`NAME.pub` is in the directory) and keynum.
    pub key_name: String,
    pub keynum: String,
    /// Files of an earlier build that are gone (stale archives, old keys).
    pub removed: Vec<String>,
}

/// Builds the repository packages of `opts.settings.packages_dir` (and the
/// packages they need) and publishes them into `opts.out`. `report` is
/// called once per package built or taken from the cache.
pub fn build(opts: &Options, report: impl FnMut(&Built)) -> Result<Repository> {
    let plan = Plan::new(opts.settings.clone())?;
    // Before building: a bad $K1OS_REPO_KEY stops here, not after an hour.
    let key = keys::signing_key(&opts.settings.cache_dir)?;
    let built = plan.build_selected(|p| p.repository, report)?;
    let roots: BTreeMap<&str, &Path> = built
        .iter()
        .map(|b| (b.name.as_str(), b.root.as_path()))
        .collect();
    let repository: BTreeSet<&str> = plan
        .packages
        .iter()
        .filter(|p| p.package.repository)
        .map(|p| p.package.name.as_str())
        .collect();
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;

    let mut entries = Vec::new();
    let mut published = Vec::new();
    for planned in plan.packages.iter().filter(|p| p.package.repository) {
        let name = planned.package.name.as_str();
        let root = roots
            .get(name)
            .ok_or_else(|| anyhow!("repository package `{name}` was not built"))?;
        let entry = publish(planned, root, &repository, &opts.out)?;
        published.push(Published {
            name: entry.name.clone(),
            version: entry.version.clone(),
            file: entry.file.clone(),
            size: entry.size,
            installed_size: entry.installed_size,
        });
        entries.push(entry);
    }
    let mut files: BTreeSet<String> = BTreeSet::new();
    for e in &entries {
        ensure!(
            files.insert(e.file.clone()),
            "two packages would both be published as {}",
            e.file
        );
    }

    let serial = match opts.serial {
        Some(s) => s,
        None => u64::from(initramfs::source_date_epoch()?),
    };
    let index = Index {
        format: index::FORMAT,
        repo: REPO_NAME.to_string(),
        arch: manifest::ARCH.to_string(),
        serial,
        packages: entries,
    };
    let bytes = index.to_bytes();
    // What warp will check, checked here first.
    Index::parse(&bytes).map_err(|e| anyhow!("the index host-tools made is invalid: {e}"))?;
    let pub_file = format!("{}.pub", key.name);
    let removed = remove_stale(&opts.out, &files, &pub_file)?;
    let signature = key.signature_file(&bytes);
    write_atomic(&opts.out.join(&pub_file), key.public_file().as_bytes())?;
    write_atomic(&opts.out.join(index::INDEX_FILE), &bytes)?;
    write_atomic(&opts.out.join(index::SIGNATURE_FILE), signature.as_bytes())?;
    Ok(Repository {
        dir: opts.out.clone(),
        packages: published,
        serial,
        key_name: key.name.clone(),
        keynum: key.secret.keynum.to_string(),
        removed,
    })
}

/// The archive's file name: `NAME-VERSION.warp`, with an epoch's `:` as `_`
/// (a `:` early in a relative URL would read as a scheme; versions never
/// hold `_`).
pub fn archive_name(name: &str, version: &str) -> String {
    format!("{name}-{}.warp", version.replace(':', "_"))
}

/// The manifest of a repository package: its metadata, its dependencies
/// that are repository packages (image packages are there already, and are
/// not warp's to install), and every entry of its output. An entry outside
/// `usr/local/` and `opt/` is an error naming the package and the path.
pub fn manifest_of(
    planned: &Planned,
    root: &Path,
    repository: &BTreeSet<&str>,
) -> Result<Manifest> {
    let p = &planned.package;
    let files = archive::scan(root).map_err(|e| {
        anyhow!(
            "repository package `{}` {}: {e} (its output is {}; a repository package installs \
             only under /usr/local and /opt)",
            p.name,
            p.version,
            root.display()
        )
    })?;
    let m = Manifest {
        format: manifest::FORMAT,
        name: p.name.clone(),
        version: p.version.clone(),
        arch: manifest::ARCH.to_string(),
        description: p.description.clone(),
        license: p.license.clone(),
        depends: p
            .depends
            .iter()
            .filter(|d| repository.contains(d.as_str()))
            .cloned()
            .collect(),
        conflicts: Vec::new(),
        files,
    };
    m.check()
        .map_err(|e| anyhow!("repository package `{}`: {e}", p.name))?;
    Ok(m)
}

/// Packs one package into `out` and returns its index entry.
fn publish(
    planned: &Planned,
    root: &Path,
    repository: &BTreeSet<&str>,
    out: &Path,
) -> Result<index::Entry> {
    let p = &planned.package;
    let manifest = manifest_of(planned, root, repository)?;
    let file = archive_name(&p.name, &p.version);
    let dest = out.join(&file);
    let tmp = out.join(format!(".{file}.tmp"));
    let written = write_archive(&tmp, &manifest, root, u64::from(planned.epoch));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e.context(format!(
            "packing repository package `{}` into {}",
            p.name,
            dest.display()
        )));
    }
    fs::rename(&tmp, &dest)
        .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    let size = fs::metadata(&dest)
        .with_context(|| format!("reading {}", dest.display()))?
        .len();
    Ok(index::Entry {
        name: p.name.clone(),
        version: p.version.clone(),
        description: p.description.clone(),
        license: p.license.clone(),
        depends: manifest.depends.clone(),
        conflicts: manifest.conflicts.clone(),
        file,
        size,
        sha256: sha256_file(&dest)?,
        installed_size: manifest.installed_size(),
    })
}

/// The tar stream of `manifest` over `root`, every mtime `mtime`, through
/// zstd at [`ZSTD_LEVEL`] (one thread: the output depends on nothing else).
fn write_archive(path: &Path, manifest: &Manifest, root: &Path, mtime: u64) -> Result<()> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut encoder = zstd::stream::Encoder::new(std::io::BufWriter::new(file), ZSTD_LEVEL)?;
    encoder.include_checksum(true)?;
    let encoder = archive::write(encoder, manifest, root, mtime).map_err(|e| anyhow!("{e}"))?;
    let mut writer = encoder.finish()?;
    writer.flush()?;
    writer
        .into_inner()
        .map_err(|e| anyhow!("writing {}: {}", path.display(), e.error()))?
        .sync_all()
        .with_context(|| format!("writing {}", path.display()))
}

/// Removes from `dir` what an earlier build left and this one did not make:
/// archives not in `keep`, public keys other than `key_file`, temporary
/// files. Returns their names.
fn remove_stale(dir: &Path, keep: &BTreeSet<String>, key_file: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut names: Vec<String> = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let stale = (name.ends_with(".warp") && !keep.contains(&name))
            || (name.ends_with(".pub") && name != key_file)
            || (name.starts_with('.') && name.ends_with(".tmp"));
        if stale {
            let path = dir.join(&name);
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed.push(name);
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` through a temporary file and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(name) = path.file_name() else {
        bail!("{} is not a file path", path.display());
    };
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_names_keep_versions_apart_and_are_index_safe() {
        assert_eq!(archive_name("hello", "2.12-1"), "hello-2.12-1.warp");
        assert_eq!(archive_name("hello", "1:2.0+b1"), "hello-1_2.0+b1.warp");
        let entry = index::Entry {
            name: "hello".into(),
            version: "1:2.0~rc1".into(),
            description: "d".into(),
            license: "MIT".into(),
            depends: vec![],
            conflicts: vec![],
            file: archive_name("hello", "1:2.0~rc1"),
            size: 1,
            sha256: "0".repeat(64),
            installed_size: 0,
        };
        entry.check().unwrap();
    }
}
