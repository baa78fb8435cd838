//! `repo build`: the repository packages (`repository = true`) built with
//! the same plan and cache as the image's ([`crate::packages`]), each packed
//! into a reproducible `NAME-VERSION.warp`, then `index.json`, its signature
//! and the public key, in one directory ready to serve.
use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use warp_format::archive;
use warp_format::index::{self, Index};
use warp_format::manifest::{self, Manifest};

use super::keys;
use crate::hash::sha256_file;
use crate::packages::tree::walk;
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
    let serial = match opts.serial {
        Some(s) => s,
        None => u64::from(initramfs::source_date_epoch()?),
    };

    // Every package checked before anything is written: all problems at once.
    let mut problems = Vec::new();
    let mut manifests: Vec<(&Planned, &Path, Manifest)> = Vec::new();
    let mut files: BTreeSet<String> = BTreeSet::new();
    for planned in plan.packages.iter().filter(|p| p.package.repository) {
        let p = &planned.package;
        let Some(root) = roots.get(p.name.as_str()) else {
            problems.push(format!("repository package `{}` was not built", p.name));
            continue;
        };
        match manifest_of(planned, root, &repository) {
            Ok(m) => {
                let file = archive_name(&p.name, &p.version);
                if !files.insert(file.clone()) {
                    problems.push(format!("two packages would both be published as {file}"));
                }
                manifests.push((planned, root, m));
            }
            Err(e) => problems.push(format!("{e:#}")),
        }
    }
    if !problems.is_empty() {
        bail!(
            "nothing was published to {}:\n{}",
            opts.out.display(),
            problems.join("\n")
        );
    }

    // Packed under temporary names, then renamed into place together with
    // the index: a failure leaves the previous repository as it was.
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let mut entries = Vec::new();
    let mut packed: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (planned, root, m) in &manifests {
        match pack(planned, root, m, &opts.out) {
            Ok((entry, tmp)) => {
                packed.push((tmp, opts.out.join(&entry.file)));
                entries.push(entry);
            }
            Err(e) => {
                for (tmp, _) in &packed {
                    let _ = fs::remove_file(tmp);
                }
                return Err(e);
            }
        }
    }
    let published: Vec<Published> = entries
        .iter()
        .map(|e| Published {
            name: e.name.clone(),
            version: e.version.clone(),
            file: e.file.clone(),
            size: e.size,
            installed_size: e.installed_size,
        })
        .collect();
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
    for (tmp, dest) in &packed {
        fs::rename(tmp, dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    }
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
    // Every misplaced file at once (the scan below stops at the first
    // entry, often just the directory `usr/bin`).
    let mut entries = Vec::new();
    walk(root, Path::new(""), &mut entries)?;
    let outside: Vec<String> = entries
        .iter()
        .filter(|(_, meta)| !meta.is_dir())
        .map(|(rel, _)| rel.to_string_lossy().into_owned())
        .filter(|rel| warp_format::paths::check_place(rel, false).is_err())
        .collect();
    if !outside.is_empty() {
        const SHOWN: usize = 10;
        let more = match outside.len().saturating_sub(SHOWN) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let shown: Vec<String> = outside
            .iter()
            .take(SHOWN)
            .map(|p| format!("/{p}"))
            .collect();
        bail!(
            "repository package `{}` {} installs outside /usr/local and /opt, where warp's \
             packages go (the image owns the rest): {}{more} (its output: {})",
            p.name,
            p.version,
            shown.join(", "),
            root.display()
        );
    }
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

/// Packs one package into a temporary file of `out`; returns its index
/// entry and the temporary file (renamed to the entry's `file` later).
fn pack(
    planned: &Planned,
    root: &Path,
    manifest: &Manifest,
    out: &Path,
) -> Result<(index::Entry, PathBuf)> {
    let p = &planned.package;
    let file = archive_name(&p.name, &p.version);
    let tmp = out.join(format!(".{file}.tmp"));
    let written = write_archive(&tmp, manifest, root, u64::from(planned.epoch)).and_then(|()| {
        let size = fs::metadata(&tmp)
            .with_context(|| format!("reading {}", tmp.display()))?
            .len();
        Ok((size, sha256_file(&tmp)?))
    });
    let (size, sha256) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e.context(format!(
                "packing repository package `{}` into {}",
                p.name,
                out.join(&file).display()
            )));
        }
    };
    let entry = index::Entry {
        name: p.name.clone(),
        version: p.version.clone(),
        description: p.description.clone(),
        license: p.license.clone(),
        depends: manifest.depends.clone(),
        conflicts: manifest.conflicts.clone(),
        file,
        size,
        sha256,
        installed_size: manifest.installed_size(),
    };
    Ok((entry, tmp))
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
