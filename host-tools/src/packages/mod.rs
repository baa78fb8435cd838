//! Packages: `packages/<name>/package.toml` (metadata) + `build.sh` (the
//! script), built in dependency order, each in its own scratch directories,
//! and cached by a hash of everything that goes into it. The contract scripts
//! rely on is written down in `packages/README.md`.
//!
//! - [`load`] reads and validates every package and reports every problem at
//!   once (a missing licence, an unknown dependency, a cycle, a bad sha256…)
//!   before anything is built.
//! - [`Plan::new`] orders them, makes the `generated` sources (the static
//!   `warp` binary, the repository's public key) into the source cache, and
//!   computes each one's cache key: the package's directory, its sources (by
//!   their pinned sha256, or by content for a `tree` or a generated file),
//!   the environment it gets and the keys of its dependencies.
//! - [`Plan::build`] fetches sources (Debian packages with `apt-get download`
//!   into the source cache, every file checked against its sha256), runs each
//!   script that is not cached with `run::Cmd::run_logged` into
//!   `build/packages/<name>.log`, and moves its output into the cache
//!   atomically (a temporary directory, then a rename).
//!   [`Plan::build_selected`] builds some of them (and what they need): the
//!   image's packages for `rootfs`, the repository packages
//!   (`repository = true`) for `repo build`.
//!
//! Files: `manifest.rs` (`package.toml` → [`Package`]), `order.rs` ([`load`],
//! [`order`]), `tree.rs` (a directory's content hash, the copy that merges
//! outputs); here: [`Settings`], the keys, the [`Plan`], the build, the cache.
//!
//! Cache layout, under `${K1OS_CACHE:-~/.cache/k1os}`:
//! `packages/<name>-<key>/root/` (what the script installed) and `…/info`;
//! `sources/<sha256>/<file>` (verified downloads, generated files).
use anyhow::{Context, Result, bail, ensure};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k1os_contract::contract;

use crate::hash::{sha256_file, sha256_hex};
use crate::run::Cmd;
use crate::{initramfs, paths, repo, ui, warp_build};

mod manifest;
mod order;
pub mod tree;

pub use manifest::{GENERATED, Package, Source, check_spdx, parse_package};
pub use order::{load, order};
use tree::{copy_tree, tree_hash, walk};

/// The metadata file of a package.
pub const METADATA: &str = "package.toml";
/// The build script of a package.
pub const SCRIPT: &str = "build.sh";
/// Changes whenever the way packages are built or cached changes, so that old
/// cache entries are not reused.
const CACHE_FORMAT: &str = "k1os-package 1";
/// How many hex digits of the key name a cache entry.
const KEY_DIGITS: usize = 16;

/// `packages/` of the checkout.
pub fn packages_dir() -> PathBuf {
    paths::repo_root().join("packages")
}

// ---------------------------------------------------------------------------
// Keys, the environment, the cache
// ---------------------------------------------------------------------------

/// Where packages are built and cached, and what they are given.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The directory holding `<name>/package.toml` (default `packages/`).
    pub packages_dir: PathBuf,
    /// The cache root (default [`paths::cache_dir`]).
    pub cache_dir: PathBuf,
    /// Scratch directories and logs (default `build/packages/`).
    pub work_dir: PathBuf,
    /// `JOBS` for the scripts.
    pub jobs: usize,
}

impl Settings {
    /// The checkout's packages, the user's cache, `build/packages/`.
    pub fn default_for_checkout() -> Settings {
        Settings {
            packages_dir: packages_dir(),
            cache_dir: paths::cache_dir(),
            work_dir: paths::build_dir().join("packages"),
            jobs: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }

    pub fn packages_cache(&self) -> PathBuf {
        self.cache_dir.join("packages")
    }

    pub fn sources_cache(&self) -> PathBuf {
        self.cache_dir.join("sources")
    }
}

/// The environment variables from the boot contract and the workspace that
/// every script gets (they are part of every package's key): the K1OS
/// version and the stage-2 side of the contract (`init-nostd/src/contract.rs`).
pub fn contract_env() -> Vec<(&'static str, String)> {
    vec![
        ("K1OS_VERSION", env!("CARGO_PKG_VERSION").to_string()),
        (
            "K1OS_MARKER_STAGE2_READY",
            contract::MARKER_STAGE2_READY.to_string(),
        ),
        ("K1OS_RUN_DIR", contract::RUN_DIR.to_string()),
        ("K1OS_RUN_MEDIA", contract::RUN_MEDIA.to_string()),
        ("K1OS_RUN_LOWER", contract::RUN_LOWER.to_string()),
        ("K1OS_RUN_DATA", contract::RUN_DATA.to_string()),
        ("K1OS_RUN_RAM", contract::RUN_RAM.to_string()),
        ("K1OS_RUN_BOOT_FILE", contract::RUN_BOOT_FILE.to_string()),
    ]
}

/// `SOURCE_DATE_EPOCH` for a package: the environment's when set; else the
/// time of the last commit that touched the package's directory or its
/// `tree` sources, so that a commit elsewhere does not invalidate the cache;
/// else the workspace's ([`initramfs::source_date_epoch`]).
pub fn package_epoch(p: &Package) -> Result<u32> {
    if std::env::var_os("SOURCE_DATE_EPOCH").is_some() {
        return initramfs::source_date_epoch();
    }
    let mut cmd =
        Cmd::new("git")
            .arg("-C")
            .arg(&p.dir)
            .args(["log", "-1", "--format=%ct", "--", "."]);
    for s in &p.sources {
        if let Source::Tree { path } = s {
            cmd = cmd.arg(path);
        }
    }
    match cmd.read().ok().and_then(|s| s.trim().parse().ok()) {
        Some(t) => Ok(t),
        None => initramfs::source_date_epoch(),
    }
}

/// A package with its place in the build: key, epoch, dependencies.
#[derive(Clone, Debug)]
pub struct Planned {
    pub package: Package,
    /// Hex sha256 of everything that goes into the build.
    pub key: String,
    pub epoch: u32,
    /// Indices (into [`Plan::packages`]) of its direct and indirect dependencies, in build order.
    pub closure: Vec<usize>,
}

impl Planned {
    /// `<name>-<first digits of the key>`: the cache entry's directory name.
    pub fn cache_name(&self) -> String {
        format!("{}-{}", self.package.name, &self.key[..KEY_DIGITS])
    }
}

/// Every package in build order, with its key.
#[derive(Clone, Debug)]
pub struct Plan {
    pub settings: Settings,
    pub packages: Vec<Planned>,
}

/// What happened to one package in [`Plan::build`].
#[derive(Clone, Debug)]
pub struct Built {
    pub name: String,
    pub version: String,
    /// Taken from the cache (true) or built now.
    pub cached: bool,
    pub elapsed: Duration,
    /// The package's output (the cache entry's `root/`).
    pub root: PathBuf,
}

impl Plan {
    /// Loads and checks the packages of `settings.packages_dir`, orders them,
    /// makes their `generated` sources (each once) and computes their keys.
    pub fn new(settings: Settings) -> Result<Plan> {
        let mut packages = load(&settings.packages_dir)?;
        let mut generated: BTreeMap<String, String> = BTreeMap::new();
        for p in &mut packages {
            for s in &mut p.sources {
                if let Source::Generated { name, sha256 } = s {
                    if !generated.contains_key(name) {
                        let made = generate(&settings, name).with_context(|| {
                            format!("making the generated source `{name}` of `{}`", p.name)
                        })?;
                        generated.insert(name.clone(), made);
                    }
                    sha256.clone_from(&generated[name]);
                }
            }
        }
        let order = order(&packages)?;
        let position: BTreeMap<String, usize> = order
            .iter()
            .enumerate()
            .map(|(pos, &i)| (packages[i].name.clone(), pos))
            .collect();
        let mut planned: Vec<Planned> = Vec::new();
        for &i in &order {
            let p = packages[i].clone();
            let mut closure: BTreeSet<usize> = BTreeSet::new();
            for d in &p.depends {
                let pos = position[d];
                closure.insert(pos);
                closure.extend(planned[pos].closure.iter().copied());
            }
            let closure: Vec<usize> = closure.into_iter().collect();
            let epoch = package_epoch(&p)?;
            let dep_keys: Vec<(String, String)> = p
                .depends
                .iter()
                .map(|d| (d.clone(), planned[position[d]].key.clone()))
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect();
            let key = package_key(&p, epoch, &dep_keys)?;
            planned.push(Planned {
                package: p,
                key,
                epoch,
                closure,
            });
        }
        Ok(Plan {
            settings,
            packages: planned,
        })
    }

    /// The cache entry of package `i` (whether or not it exists).
    pub fn cache_entry(&self, i: usize) -> PathBuf {
        self.settings
            .packages_cache()
            .join(self.packages[i].cache_name())
    }

    /// Whether package `i` is in the cache.
    pub fn is_cached(&self, i: usize) -> bool {
        self.cache_entry(i).join("root").is_dir() && self.cache_entry(i).join("info").is_file()
    }

    /// Builds every package that is not cached, in order; stops at the first
    /// failure (its error names the package, the exit status, the log and its
    /// tail). `report` is called once per package when it is done.
    pub fn build(&self, report: impl FnMut(&Built)) -> Result<Vec<Built>> {
        self.build_selected(|_| true, report)
    }

    /// [`Plan::build`] for the packages `wanted` selects and their
    /// dependencies (direct and indirect), in build order; the others are
    /// neither built nor reported.
    pub fn build_selected(
        &self,
        wanted: impl Fn(&Package) -> bool,
        mut report: impl FnMut(&Built),
    ) -> Result<Vec<Built>> {
        let mut needed = vec![false; self.packages.len()];
        for (i, planned) in self.packages.iter().enumerate() {
            if wanted(&planned.package) {
                needed[i] = true;
                for &d in &planned.closure {
                    needed[d] = true;
                }
            }
        }
        // By position in the plan, so that a package finds its
        // dependencies' outputs (`closure` holds positions).
        let mut done: Vec<Option<Built>> = vec![None; self.packages.len()];
        for i in (0..self.packages.len()).filter(|&i| needed[i]) {
            let start = Instant::now();
            let p = &self.packages[i].package;
            let cached = self.is_cached(i);
            if !cached {
                self.build_one(i, &done).with_context(|| {
                    format!("package `{}` {} failed to build", p.name, p.version)
                })?;
            }
            let built = Built {
                name: p.name.clone(),
                version: p.version.clone(),
                cached,
                elapsed: start.elapsed(),
                root: self.cache_entry(i).join("root"),
            };
            report(&built);
            done[i] = Some(built);
        }
        Ok(done.into_iter().flatten().collect())
    }

    fn build_one(&self, i: usize, done: &[Option<Built>]) -> Result<()> {
        let planned = &self.packages[i];
        let p = &planned.package;
        let work = self.settings.work_dir.join(&p.name);
        let log = self.settings.work_dir.join(format!("{}.log", p.name));
        remove_dir_all_if_exists(&work)?;
        let (workdir, srcdir, sysroot) =
            (work.join("work"), work.join("src"), work.join("sysroot"));
        for d in [&workdir, &srcdir, &sysroot] {
            fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
        }
        for s in &p.sources {
            let file = self.fetch(p, s)?;
            let link = srcdir.join(s.name_in_srcdir());
            std::os::unix::fs::symlink(&file, &link)
                .with_context(|| format!("linking {} to {}", link.display(), file.display()))?;
        }
        for &d in &planned.closure {
            let Some(dep) = &done[d] else {
                bail!(
                    "`{}` is needed by `{}` but was not built before it",
                    self.packages[d].package.name,
                    p.name
                );
            };
            copy_tree(&dep.root, &sysroot, None).with_context(|| {
                format!(
                    "copying the output of `{}` into {}",
                    dep.name,
                    sysroot.display()
                )
            })?;
        }

        let cache = self.settings.packages_cache();
        fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        let entry = self.cache_entry(i);
        let tmp = cache.join(format!(
            ".{}.tmp-{}",
            planned.cache_name(),
            std::process::id()
        ));
        remove_dir_all_if_exists(&tmp)?;
        let destdir = tmp.join("root");
        fs::create_dir_all(&destdir).with_context(|| format!("creating {}", destdir.display()))?;

        let script = p.dir.join(SCRIPT);
        let mut cmd = Cmd::new("sh")
            // umask 022 whatever the caller's, `-e` and `-u` for every script.
            .args(["-c", "umask 022 && exec sh -eu \"$0\""])
            .arg(&script)
            .dir(&workdir)
            .env("DESTDIR", &destdir)
            .env("WORKDIR", &workdir)
            .env("SRCDIR", &srcdir)
            .env("SYSROOT", &sysroot)
            .env("PKGDIR", &p.dir)
            .env("PKG_NAME", &p.name)
            .env("PKG_VERSION", &p.version)
            .env("K1OS_CACHE", &self.settings.cache_dir)
            .env("JOBS", self.settings.jobs.to_string())
            .env("SOURCE_DATE_EPOCH", planned.epoch.to_string())
            .env("LC_ALL", "C")
            .env("TZ", "UTC");
        for (k, v) in contract_env() {
            cmd = cmd.env(k, v);
        }
        // Printed before the script runs, so that a slow build can be
        // followed with `tail -f`.
        ui::step(&format!(
            "package {} {}: building (log: {})",
            p.name,
            p.version,
            log.display()
        ));
        if let Err(e) = cmd.run_logged(&log) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Err(e) = check_output(&destdir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e.context(format!(
                "checking what {} installed in {}",
                SCRIPT,
                destdir.display()
            )));
        }
        let info = format!(
            "{CACHE_FORMAT}\nname={}\nversion={}\nkey={}\nsource_date_epoch={}\n",
            p.name, p.version, planned.key, planned.epoch
        );
        fs::write(tmp.join("info"), info)
            .with_context(|| format!("writing {}/info", tmp.display()))?;
        // Another build may have finished the same entry meanwhile: same key,
        // same content; keep theirs.
        if entry.exists() {
            fs::remove_dir_all(&tmp).with_context(|| format!("removing {}", tmp.display()))?;
        } else {
            fs::rename(&tmp, &entry)
                .with_context(|| format!("renaming {} to {}", tmp.display(), entry.display()))?;
        }
        // The scratch tree of a successful build is not needed again.
        let _ = fs::remove_dir_all(&work);
        Ok(())
    }

    /// The verified file of a `deb` or `file` source, or a `tree`'s directory.
    fn fetch(&self, p: &Package, source: &Source) -> Result<PathBuf> {
        match source {
            Source::Tree { path } => {
                let dir = p.dir.join(path);
                fs::canonicalize(&dir).with_context(|| format!("resolving {}", dir.display()))
            }
            Source::File { path, sha256 } => {
                let local = p.dir.join(path);
                if local.is_file() {
                    verify_sha256(&local, sha256)?;
                    return fs::canonicalize(&local)
                        .with_context(|| format!("resolving {}", local.display()));
                }
                match self.cached_source(sha256)? {
                    Some(file) => Ok(file),
                    None => bail!(
                        "source {path} of `{}` is neither at {} nor in {}/{sha256}/",
                        p.name,
                        local.display(),
                        self.settings.sources_cache().display()
                    ),
                }
            }
            Source::Deb {
                package,
                version,
                sha256,
            } => {
                if let Some(file) = self.cached_source(sha256)? {
                    return Ok(file);
                }
                self.download_deb(package, version, sha256)
            }
            Source::Generated { name, sha256 } => match self.cached_source(sha256)? {
                Some(file) => Ok(file),
                None => bail!(
                    "the generated source `{name}` of `{}` (sha256 {sha256}) is no longer in {}",
                    p.name,
                    self.settings.sources_cache().display()
                ),
            },
        }
    }

    /// `sources/<sha256>/<file>` of the cache when it is there (verified).
    fn cached_source(&self, sha256: &str) -> Result<Option<PathBuf>> {
        cached_source(&self.settings.sources_cache(), sha256)
    }

    fn download_deb(&self, package: &str, version: &str, sha256: &str) -> Result<PathBuf> {
        download_deb(&self.settings.sources_cache(), package, version, sha256)
    }
}

/// `<sources>/<sha256>/<file>` when it is there (verified): the source cache
/// holds one file per sha256, whoever fetched it (a package, the `debian`
/// kernel).
pub fn cached_source(sources: &Path, sha256: &str) -> Result<Option<PathBuf>> {
    let dir = sources.join(sha256);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(None);
    };
    let files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    ensure!(
        files.len() == 1,
        "{} should hold exactly one file",
        dir.display()
    );
    verify_sha256(&files[0], sha256)?;
    Ok(Some(files[0].clone()))
}

/// `apt-get download PACKAGE=VERSION` into the source cache `sources`,
/// checked against its pinned sha256 before it is kept.
pub fn download_deb(sources: &Path, package: &str, version: &str, sha256: &str) -> Result<PathBuf> {
    let tmp = sources.join(format!(".download-{sha256}-{}", std::process::id()));
    remove_dir_all_if_exists(&tmp)?;
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let spec = format!("{package}={version}");
    let step = ui::Step::start(format!("apt-get download {spec}"));
    let fetched = Cmd::new("apt-get")
        .args(["download", "-q", &spec])
        .dir(&tmp)
        .run();
    if let Err(e) = fetched {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e.context(format!(
            "downloading the Debian package {spec}: the mirror may be unreachable or no longer carry this \
             version; a copy of the .deb (sha256 {sha256}) placed in {}/{sha256}/ is used instead",
            sources.display()
        )));
    }
    let debs: Vec<PathBuf> = fs::read_dir(&tmp)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    ensure!(
        debs.len() == 1,
        "`apt-get download {spec}` left {} .deb files in {}",
        debs.len(),
        tmp.display()
    );
    if let Err(e) = verify_sha256(&debs[0], sha256) {
        let _ = fs::remove_dir_all(&tmp);
        return Err(e.context(format!("the Debian package {spec} is not the pinned one")));
    }
    let dest = sources.join(sha256);
    if dest.exists() {
        fs::remove_dir_all(&tmp)?;
    } else {
        fs::rename(&tmp, &dest)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dest.display()))?;
    }
    step.done("done");
    cached_source(sources, sha256)?.context("the downloaded source vanished")
}

/// The key of a package: sha256 of the cache format, its name and version,
/// its directory's content (metadata, script, patches…), its sources (the
/// pinned sha256, or a tree's content), the environment it gets and its
/// dependencies' keys.
pub fn package_key(p: &Package, epoch: u32, dep_keys: &[(String, String)]) -> Result<String> {
    let mut text: Vec<u8> = Vec::new();
    let mut field = |k: &str, v: &str| {
        text.extend_from_slice(k.as_bytes());
        text.push(b'=');
        text.extend_from_slice(&v.len().to_le_bytes());
        text.extend_from_slice(v.as_bytes());
        text.push(b'\n');
    };
    field("format", CACHE_FORMAT);
    field("name", &p.name);
    field("version", &p.version);
    field("dir", &tree_hash(&p.dir)?);
    for s in &p.sources {
        match s {
            Source::Deb {
                package,
                version,
                sha256,
            } => field("deb", &format!("{package} {version} {sha256}")),
            Source::File { sha256, .. } => {
                field("file", &format!("{} {sha256}", s.name_in_srcdir()))
            }
            Source::Tree { path } => field(
                "tree",
                &format!("{} {}", s.name_in_srcdir(), tree_hash(&p.dir.join(path))?),
            ),
            Source::Generated { name, sha256 } => {
                ensure!(
                    !sha256.is_empty(),
                    "the generated source `{name}` of `{}` was not made before its key",
                    p.name
                );
                field("generated", &format!("{name} {sha256}"))
            }
        }
    }
    field("SOURCE_DATE_EPOCH", &epoch.to_string());
    for (k, v) in contract_env() {
        field(k, &v);
    }
    for (name, key) in dep_keys {
        field("depends", &format!("{name} {key}"));
    }
    Ok(sha256_hex(&text))
}

/// Makes the `generated` source `name` (one of [`GENERATED`]) and keeps it
/// in the source cache as `sources/<sha256>/<name>`, like a download; returns
/// its sha256.
fn generate(settings: &Settings, name: &str) -> Result<String> {
    let (bytes, mode) = match name {
        "warp" => (warp_build::build_warp()?, 0o755),
        "repo-key.pub" => {
            let key = repo::keys::signing_key(&settings.cache_dir)?;
            (key.public_file().into_bytes(), 0o644)
        }
        other => bail!("host-tools does not know how to make `{other}`"),
    };
    let sha256 = sha256_hex(&bytes);
    let dir = settings.sources_cache().join(&sha256);
    if dir.join(name).is_file() {
        verify_sha256(&dir.join(name), &sha256)?;
        return Ok(sha256);
    }
    let tmp = settings
        .sources_cache()
        .join(format!(".generated-{sha256}-{}", std::process::id()));
    remove_dir_all_if_exists(&tmp)?;
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let file = tmp.join(name);
    fs::write(&file, &bytes).with_context(|| format!("writing {}", file.display()))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", file.display()))?;
    // A stale directory without the file (an interrupted copy): replace it.
    remove_dir_all_if_exists(&dir)?;
    if let Err(e) = fs::rename(&tmp, &dir) {
        let _ = fs::remove_dir_all(&tmp);
        // Another build stored the same content meanwhile.
        if !dir.join(name).is_file() {
            return Err(e)
                .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()));
        }
    }
    Ok(sha256)
}

/// A package installs files, directories and symlinks only (device nodes
/// come from devtmpfs at boot).
fn check_output(destdir: &Path) -> Result<()> {
    let mut entries = Vec::new();
    walk(destdir, Path::new(""), &mut entries)?;
    let odd: Vec<String> = entries
        .iter()
        .filter(|(_, m)| {
            let t = m.file_type();
            !(t.is_file() || t.is_dir() || t.is_symlink())
        })
        .map(|(rel, _)| format!("/{}", rel.display()))
        .collect();
    ensure!(
        odd.is_empty(),
        "special files (devices, fifos, sockets) are not allowed: {}",
        odd.join(", ")
    );
    Ok(())
}

/// Fails unless `file`'s sha256 is `expected`.
pub fn verify_sha256(file: &Path, expected: &str) -> Result<()> {
    let actual = sha256_file(file)?;
    ensure!(
        actual.eq_ignore_ascii_case(expected),
        "{}: sha256 is {actual}, expected {expected}",
        file.display()
    );
    Ok(())
}

fn remove_dir_all_if_exists(dir: &Path) -> Result<()> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("removing {}", dir.display())),
    }
}
