//! Packages: `packages/<name>/package.toml` (metadata) + `build.sh` (the
//! script), built in dependency order, each in its own scratch directories,
//! and cached by a hash of everything that goes into it. The contract scripts
//! rely on is written down in `packages/README.md`.
//!
//! - [`load`] reads and validates every package and reports every problem at
//!   once (a missing licence, an unknown dependency, a cycle, a bad sha256…)
//!   before anything is built.
//! - [`Plan::new`] orders them and computes each one's cache key: the
//!   package's directory, its sources (by their pinned sha256, or by content
//!   for a `tree`), the environment it gets and the keys of its dependencies.
//! - [`Plan::build`] fetches sources (Debian packages with `apt-get download`
//!   into the source cache, every file checked against its sha256), runs each
//!   script that is not cached with `run::Cmd::run_logged` into
//!   `build/packages/<name>.log`, and moves its output into the cache
//!   atomically (a temporary directory, then a rename).
//!
//! Cache layout, under `${K1OS_CACHE:-~/.cache/k1os}`:
//! `packages/<name>-<key>/root/` (what the script installed) and `…/info`;
//! `sources/<sha256>/<file>` (verified downloads).
use anyhow::{Context, Result, bail, ensure};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k1os_contract::contract;

use crate::hash::hex;
pub use crate::hash::sha256_file as file_sha256;
use crate::run::Cmd;
use crate::{initramfs, paths, ui};

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

/// One package, as its `package.toml` describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub description: String,
    /// An SPDX license expression (`GPL-2.0-only`, `MIT OR Apache-2.0`).
    pub license: String,
    /// Where the software comes from (project page, corresponding source).
    pub upstream: Option<String>,
    pub depends: Vec<String>,
    pub sources: Vec<Source>,
    /// `packages/<name>/`.
    pub dir: PathBuf,
}

/// One `[[source]]` of a package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A Debian binary package, `apt-get download NAME=VERSION`; the script
    /// finds it as `$SRCDIR/NAME.deb`.
    Deb {
        package: String,
        version: String,
        sha256: String,
    },
    /// A local file (a source tarball), relative to the package's directory
    /// or absolute; when it is not there, `sources/<sha256>/` of the cache is
    /// tried. The script finds it as `$SRCDIR/<file name>`.
    File { path: String, sha256: String },
    /// A directory of the checkout (relative to the package's directory),
    /// keyed by its content. The script finds it as `$SRCDIR/<directory name>`.
    Tree { path: String },
}

impl Source {
    /// The name the script finds the source under in `$SRCDIR`.
    pub fn name_in_srcdir(&self) -> String {
        match self {
            Source::Deb { package, .. } => format!("{package}.deb"),
            Source::File { path, .. } | Source::Tree { path } => Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.clone()),
        }
    }

    /// How the source is described in messages and `host-tools packages`.
    pub fn describe(&self) -> String {
        match self {
            Source::Deb {
                package, version, ..
            } => format!("Debian package {package}={version}"),
            Source::File { path, .. } => format!("file {path}"),
            Source::Tree { path } => format!("tree {path}"),
        }
    }
}

// ---------------------------------------------------------------------------
// package.toml: a flat subset of TOML
// ---------------------------------------------------------------------------

/// A value of the TOML subset `package.toml` is written in.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    Str(String),
    List(Vec<String>),
}

/// One table of the file (the top level, or a `[[source]]`), with the line
/// of each key for messages.
#[derive(Default, Debug)]
struct Table {
    line: usize,
    entries: BTreeMap<String, (usize, Value)>,
}

/// Parses the TOML subset of `package.toml`: comments, `key = "string"`,
/// `key = ["a", "b"]` (on one line) and `[[source]]` headers. Anything else
/// is an error naming the line.
fn parse_toml(text: &str) -> Result<(Table, Vec<Table>)> {
    let mut top = Table {
        line: 1,
        ..Table::default()
    };
    let mut sources: Vec<Table> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            ensure!(
                line == "[[source]]",
                "line {n}: unknown table `{line}` (only `[[source]]` is allowed)"
            );
            sources.push(Table {
                line: n,
                ..Table::default()
            });
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .with_context(|| format!("line {n}: expected `key = value`"))?;
        let key = key.trim();
        ensure!(
            !key.is_empty()
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
            "line {n}: bad key `{key}`"
        );
        let value =
            parse_value(value.trim()).with_context(|| format!("line {n}: value of `{key}`"))?;
        let table = sources.last_mut().unwrap_or(&mut top);
        if table.entries.insert(key.to_string(), (n, value)).is_some() {
            bail!("line {n}: `{key}` is set twice");
        }
    }
    Ok((top, sources))
}

/// The line without a `#` comment (a `#` inside a string is kept).
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => {}
        }
    }
    line
}

fn parse_value(text: &str) -> Result<Value> {
    if let Some(inner) = text.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .context("a list must end with `]` on the same line")?;
        let mut items = Vec::new();
        let mut rest = inner.trim();
        while !rest.is_empty() {
            let (item, after) = parse_string(rest)?;
            items.push(item);
            rest = after.trim_start();
            if let Some(after_comma) = rest.strip_prefix(',') {
                rest = after_comma.trim_start();
            } else {
                ensure!(
                    rest.is_empty(),
                    "expected `,` or `]` after \"{}\"",
                    items.last().unwrap()
                );
            }
        }
        return Ok(Value::List(items));
    }
    let (s, rest) = parse_string(text)?;
    ensure!(
        rest.trim().is_empty(),
        "unexpected `{}` after the string",
        rest.trim()
    );
    Ok(Value::Str(s))
}

/// A basic TOML string at the start of `text`; returns it and what follows.
fn parse_string(text: &str) -> Result<(String, &str)> {
    let body = text
        .strip_prefix('"')
        .context("expected a \"double-quoted\" string")?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &body[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                other => bail!(
                    "unsupported escape `\\{}`",
                    other.map(String::from).unwrap_or_default()
                ),
            },
            c => out.push(c),
        }
    }
    bail!("unterminated string")
}

impl Table {
    fn take_str(&mut self, key: &str, problems: &mut Vec<String>) -> Option<String> {
        match self.entries.remove(key) {
            None => None,
            Some((_, Value::Str(s))) => Some(s),
            Some((line, Value::List(_))) => {
                problems.push(format!("line {line}: `{key}` must be a string"));
                None
            }
        }
    }

    fn take_list(&mut self, key: &str, problems: &mut Vec<String>) -> Vec<String> {
        match self.entries.remove(key) {
            None => Vec::new(),
            Some((_, Value::List(l))) => l,
            Some((line, Value::Str(_))) => {
                problems.push(format!("line {line}: `{key}` must be a list of strings"));
                Vec::new()
            }
        }
    }

    fn unknown_keys(&self, problems: &mut Vec<String>) {
        for (key, (line, _)) in &self.entries {
            problems.push(format!("line {line}: unknown key `{key}`"));
        }
    }
}

/// Parses and checks one `package.toml` (`dir` is the package's directory,
/// whose name must be the package's). Every problem is reported, one per line.
pub fn parse_package(text: &str, dir: &Path) -> Result<Package> {
    let (mut top, source_tables) = parse_toml(text)?;
    let mut problems = Vec::new();
    let required = |table: &mut Table, key: &str, problems: &mut Vec<String>| {
        let value = table.take_str(key, problems);
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            problems.push(format!("`{key}` is missing"));
        }
        value.unwrap_or_default()
    };
    let name = required(&mut top, "name", &mut problems);
    let version = required(&mut top, "version", &mut problems);
    let description = required(&mut top, "description", &mut problems);
    let license = top.take_str("license", &mut problems).unwrap_or_default();
    if license.trim().is_empty() {
        problems.push(
            "`license` is missing: every package names its licence as an SPDX expression \
             (`license = \"GPL-2.0-only\"`)"
                .into(),
        );
    } else if let Err(e) = check_spdx(&license) {
        problems.push(format!(
            "`license = \"{license}\"` is not an SPDX expression: {e}"
        ));
    }
    let upstream = top.take_str("upstream", &mut problems);
    let depends = top.take_list("depends", &mut problems);
    top.unknown_keys(&mut problems);

    if !name.is_empty() && !valid_name(&name) {
        problems.push(format!(
            "name `{name}`: use lower-case letters, digits, `-` and `_`"
        ));
    }
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.is_empty() && name != dir_name {
        problems.push(format!(
            "name `{name}` differs from its directory `{dir_name}`"
        ));
    }
    if !version.is_empty() && version.chars().any(|c| c.is_whitespace() || c == '/') {
        problems.push(format!("version `{version}` has spaces or `/`"));
    }

    let mut sources = Vec::new();
    for mut t in source_tables {
        let at = t.line;
        let deb = t.take_str("deb", &mut problems);
        let file = t.take_str("file", &mut problems);
        let tree = t.take_str("tree", &mut problems);
        let deb_version = t.take_str("version", &mut problems);
        let sha256 = t.take_str("sha256", &mut problems);
        t.unknown_keys(&mut problems);
        let need_sha = |sha: Option<String>, problems: &mut Vec<String>| match sha {
            Some(s) if is_sha256(&s) => s.to_ascii_lowercase(),
            Some(s) => {
                problems.push(format!("line {at}: sha256 `{s}` is not 64 hex digits"));
                String::new()
            }
            None => {
                problems.push(format!("line {at}: the source has no `sha256`"));
                String::new()
            }
        };
        match (deb, file, tree) {
            (Some(package), None, None) => {
                let version = deb_version.unwrap_or_else(|| {
                    problems.push(format!(
                        "line {at}: a `deb` source needs the exact Debian `version` (as `apt-cache policy` shows it)"
                    ));
                    String::new()
                });
                let sha256 = need_sha(sha256, &mut problems);
                sources.push(Source::Deb {
                    package,
                    version,
                    sha256,
                });
            }
            (None, Some(path), None) => {
                if deb_version.is_some() {
                    problems.push(format!("line {at}: `version` is for `deb` sources only"));
                }
                let sha256 = need_sha(sha256, &mut problems);
                sources.push(Source::File { path, sha256 });
            }
            (None, None, Some(path)) => {
                if deb_version.is_some() || sha256.is_some() {
                    problems.push(format!(
                        "line {at}: a `tree` source is keyed by its content: no `version` or `sha256`"
                    ));
                }
                if !dir.join(&path).is_dir() {
                    problems.push(format!(
                        "line {at}: tree `{path}` is not a directory (from {})",
                        dir.display()
                    ));
                }
                sources.push(Source::Tree { path });
            }
            _ => problems.push(format!(
                "line {at}: a source has exactly one of `deb`, `file` or `tree`"
            )),
        }
    }
    let mut seen = BTreeSet::new();
    for s in &sources {
        if !seen.insert(s.name_in_srcdir()) {
            problems.push(format!(
                "two sources are both named `{}` in $SRCDIR",
                s.name_in_srcdir()
            ));
        }
    }
    if !dir.join(SCRIPT).is_file() {
        problems.push(format!("{SCRIPT} is missing"));
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(Package {
        name,
        version,
        description,
        license,
        upstream,
        depends,
        sources,
        dir: dir.to_path_buf(),
    })
}

fn valid_name(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks the syntax of an SPDX license expression: license ids (`MIT`,
/// `GPL-2.0-or-later`, `LicenseRef-…`, an optional `+`), `AND`, `OR`,
/// `WITH <exception>` and parentheses. Whether an id is on the SPDX list, or
/// allowed, is the licence check's business (issue 6), not this one's.
pub fn check_spdx(expr: &str) -> Result<()> {
    let spaced = expr.replace('(', " ( ").replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    ensure!(!tokens.is_empty(), "empty");
    let mut pos = 0;
    spdx_or(&tokens, &mut pos)?;
    ensure!(pos == tokens.len(), "unexpected `{}`", tokens[pos]);
    Ok(())
}

fn spdx_or(t: &[&str], pos: &mut usize) -> Result<()> {
    spdx_term(t, pos)?;
    while *pos < t.len() && (t[*pos] == "AND" || t[*pos] == "OR") {
        *pos += 1;
        spdx_term(t, pos)?;
    }
    Ok(())
}

fn spdx_term(t: &[&str], pos: &mut usize) -> Result<()> {
    let Some(&tok) = t.get(*pos) else {
        bail!("ends after an operator")
    };
    *pos += 1;
    if tok == "(" {
        spdx_or(t, pos)?;
        ensure!(t.get(*pos) == Some(&")"), "`(` without `)`");
        *pos += 1;
        return Ok(());
    }
    spdx_id(tok)?;
    if t.get(*pos) == Some(&"WITH") {
        *pos += 1;
        let Some(&exception) = t.get(*pos) else {
            bail!("`WITH` needs an exception id")
        };
        spdx_id(exception)?;
        *pos += 1;
    }
    Ok(())
}

fn spdx_id(tok: &str) -> Result<()> {
    let id = tok.strip_suffix('+').unwrap_or(tok);
    let ok = !id.is_empty()
        && !matches!(id, "AND" | "OR" | "WITH" | ")")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ensure!(ok, "`{tok}` is not a license id");
    Ok(())
}

/// Reads every `<dir>/*/package.toml`, checks them all (metadata, scripts,
/// dependencies, cycles) and reports every problem at once.
pub fn load(dir: &Path) -> Result<Vec<Package>> {
    let entries = fs::read_dir(dir)
        .with_context(|| format!("reading the packages directory {}", dir.display()))?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("reading {}", dir.display()))?;
        if e.file_type()?.is_dir() && e.path().join(METADATA).is_file() {
            dirs.push(e.path());
        }
    }
    dirs.sort();
    let mut packages = Vec::new();
    let mut problems = Vec::new();
    for d in dirs {
        let file = d.join(METADATA);
        let parsed = fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))
            .and_then(|text| parse_package(&text, &d));
        match parsed {
            Ok(p) => packages.push(p),
            Err(e) => {
                for line in format!("{e:#}").lines() {
                    problems.push(format!("{}: {line}", file.display()));
                }
            }
        }
    }
    let names: BTreeSet<&str> = packages.iter().map(|p| p.name.as_str()).collect();
    for p in &packages {
        for d in &p.depends {
            if !names.contains(d.as_str()) {
                problems.push(format!(
                    "package `{}` depends on `{d}`, which is not in {}",
                    p.name,
                    dir.display()
                ));
            }
        }
    }
    if problems.is_empty()
        && let Err(e) = order(&packages)
    {
        problems.push(e.to_string());
    }
    if !problems.is_empty() {
        bail!(
            "{} problem(s) with the packages:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    ensure!(
        !packages.is_empty(),
        "no packages in {} (each is a directory with a {METADATA})",
        dir.display()
    );
    Ok(packages)
}

/// Dependency order (dependencies first; ties by name, so the order never
/// depends on the file system). Fails on a cycle, naming it.
pub fn order(packages: &[Package]) -> Result<Vec<usize>> {
    let index: BTreeMap<&str, usize> = packages
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let mut by_name: Vec<usize> = (0..packages.len()).collect();
    by_name.sort_by(|&a, &b| packages[a].name.cmp(&packages[b].name));
    // 0: not visited, 1: on the current path, 2: done.
    let mut state = vec![0u8; packages.len()];
    let mut out = Vec::new();
    fn visit(
        i: usize,
        packages: &[Package],
        index: &BTreeMap<&str, usize>,
        state: &mut [u8],
        path: &mut Vec<usize>,
        out: &mut Vec<usize>,
    ) -> Result<()> {
        match state[i] {
            2 => return Ok(()),
            1 => {
                let start = path.iter().position(|&p| p == i).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..]
                    .iter()
                    .map(|&p| packages[p].name.as_str())
                    .collect();
                cycle.push(&packages[i].name);
                bail!("dependency cycle: {}", cycle.join(" -> "));
            }
            _ => {}
        }
        state[i] = 1;
        path.push(i);
        let mut deps: Vec<usize> = packages[i]
            .depends
            .iter()
            .filter_map(|d| index.get(d.as_str()).copied())
            .collect();
        deps.sort_by(|&a, &b| packages[a].name.cmp(&packages[b].name));
        for d in deps {
            visit(d, packages, index, state, path, out)?;
        }
        path.pop();
        state[i] = 2;
        out.push(i);
        Ok(())
    }
    for i in by_name {
        visit(i, packages, &index, &mut state, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
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
    /// Loads and checks the packages of `settings.packages_dir`, orders them
    /// and computes their keys.
    pub fn new(settings: Settings) -> Result<Plan> {
        let packages = load(&settings.packages_dir)?;
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
    pub fn build(&self, mut report: impl FnMut(&Built)) -> Result<Vec<Built>> {
        let mut done: Vec<Built> = Vec::new();
        for i in 0..self.packages.len() {
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
            done.push(built);
        }
        Ok(done)
    }

    fn build_one(&self, i: usize, done: &[Built]) -> Result<()> {
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
            copy_tree(&done[d].root, &sysroot, None).with_context(|| {
                format!(
                    "copying the output of `{}` into {}",
                    done[d].name,
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
        }
    }

    /// `sources/<sha256>/<file>` of the cache when it is there (verified).
    fn cached_source(&self, sha256: &str) -> Result<Option<PathBuf>> {
        let dir = self.settings.sources_cache().join(sha256);
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

    /// `apt-get download PACKAGE=VERSION` into the source cache, checked
    /// against its pinned sha256 before it is kept.
    fn download_deb(&self, package: &str, version: &str, sha256: &str) -> Result<PathBuf> {
        let sources = self.settings.sources_cache();
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
        self.cached_source(sha256)?
            .context("the downloaded source vanished")
    }
}

/// The key of a package: sha256 of the cache format, its name and version,
/// its directory's content (metadata, script, patches…), its sources (the
/// pinned sha256, or a tree's content), the environment it gets and its
/// dependencies' keys.
pub fn package_key(p: &Package, epoch: u32, dep_keys: &[(String, String)]) -> Result<String> {
    let mut h = Sha256::new();
    let mut field = |k: &str, v: &str| {
        h.update(k.as_bytes());
        h.update(b"=");
        h.update(v.len().to_le_bytes());
        h.update(v.as_bytes());
        h.update(b"\n");
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
        }
    }
    field("SOURCE_DATE_EPOCH", &epoch.to_string());
    for (k, v) in contract_env() {
        field(k, &v);
    }
    for (name, key) in dep_keys {
        field("depends", &format!("{name} {key}"));
    }
    Ok(hex(&h.finalize()))
}

/// sha256 of a directory's content: for every entry, sorted by path, its
/// relative path, its type, for files the executable bit and the content's
/// sha256, for symlinks the target. Owners, other mode bits and times are
/// left out, as the image leaves them out.
pub fn tree_hash(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    let mut entries = Vec::new();
    walk(dir, Path::new(""), &mut entries)?;
    for (rel, meta) in entries {
        let full = dir.join(&rel);
        h.update(rel.as_os_str().as_encoded_bytes());
        h.update(b"\0");
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&full)
                .with_context(|| format!("reading the link {}", full.display()))?;
            h.update(b"l");
            h.update(target.as_os_str().as_encoded_bytes());
        } else if ft.is_dir() {
            h.update(b"d");
        } else if ft.is_file() {
            h.update(if meta.permissions().mode() & 0o100 != 0 {
                b"x"
            } else {
                b"f"
            });
            h.update(file_sha256(&full)?.as_bytes());
        } else {
            bail!("{} is not a file, directory or symlink", full.display());
        }
        h.update(b"\n");
    }
    Ok(hex(&h.finalize()))
}

/// Every entry under `dir` (relative paths, sorted, directories before their
/// content), without following symlinks.
pub fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<std::ffi::OsString> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let full = root.join(&rel);
        let meta =
            fs::symlink_metadata(&full).with_context(|| format!("reading {}", full.display()))?;
        let is_dir = meta.is_dir();
        out.push((rel.clone(), meta));
        if is_dir {
            walk(root, &rel, out)?;
        }
    }
    Ok(())
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

/// Copies the tree `from` into `to` (merging directories), keeping modes
/// and symlinks. With `owners`, records which package put each path there and
/// fails when two packages install the same file or symlink, or the same
/// directory with different modes.
pub fn copy_tree(
    from: &Path,
    to: &Path,
    mut owners: Option<(&str, &mut BTreeMap<PathBuf, String>)>,
) -> Result<()> {
    let mut entries = Vec::new();
    walk(from, Path::new(""), &mut entries)?;
    for (rel, meta) in entries {
        let src = from.join(&rel);
        let dst = to.join(&rel);
        let existing = fs::symlink_metadata(&dst).ok();
        if let Some((pkg, map)) = owners.as_mut() {
            if let Some(old) = &existing {
                let other = map.get(&rel).cloned().unwrap_or_else(|| "?".into());
                let both_dirs = old.is_dir() && meta.is_dir();
                if !both_dirs {
                    bail!("`{other}` and `{pkg}` both install /{}", rel.display());
                }
                let (a, b) = (
                    old.permissions().mode() & 0o7777,
                    meta.permissions().mode() & 0o7777,
                );
                ensure!(
                    a == b,
                    "`{other}` and `{pkg}` both make the directory /{} with different modes ({a:o} and {b:o})",
                    rel.display()
                );
                continue;
            }
            map.insert(rel.clone(), pkg.to_string());
        }
        let t = meta.file_type();
        if t.is_dir() {
            if existing.is_none() {
                fs::create_dir(&dst).with_context(|| format!("creating {}", dst.display()))?;
            }
            fs::set_permissions(
                &dst,
                fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
            )
            .with_context(|| format!("setting the mode of {}", dst.display()))?;
        } else if t.is_symlink() {
            let target = fs::read_link(&src)
                .with_context(|| format!("reading the link {}", src.display()))?;
            if existing.is_some() {
                fs::remove_file(&dst).with_context(|| format!("replacing {}", dst.display()))?;
            }
            std::os::unix::fs::symlink(&target, &dst)
                .with_context(|| format!("creating the link {}", dst.display()))?;
        } else {
            if existing.is_some() {
                fs::remove_file(&dst).with_context(|| format!("replacing {}", dst.display()))?;
            }
            fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// Fails unless `file`'s sha256 is `expected`.
pub fn verify_sha256(file: &Path, expected: &str) -> Result<()> {
    let actual = file_sha256(file)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(SCRIPT), "true\n").unwrap();
        (tmp, dir)
    }

    #[test]
    fn parses_the_metadata() {
        let (_tmp, dir) = pkg_dir("hello");
        let text = r#"
# a comment
name = "hello"   # trailing comment
version = "1.0-2"
description = "says \"hello\" # not a comment"
license = "MIT OR Apache-2.0"
depends = ["base", "zlib"]

[[source]]
deb = "hello"
version = "2.10-3"
sha256 = "3D3FDBE91D4660C873E14B092C213FE81C1DA6362DAA236EB25D0171EB108744"
[[source]]
file = "hello-1.0.tar.gz"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
"#;
        let p = parse_package(text, &dir).unwrap();
        assert_eq!(p.name, "hello");
        assert_eq!(p.description, "says \"hello\" # not a comment");
        assert_eq!(p.depends, vec!["base", "zlib"]);
        assert_eq!(p.sources.len(), 2);
        assert_eq!(
            p.sources[0],
            Source::Deb {
                package: "hello".into(),
                version: "2.10-3".into(),
                sha256: "3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744".into()
            }
        );
        assert_eq!(p.sources[1].name_in_srcdir(), "hello-1.0.tar.gz");
    }

    #[test]
    fn a_package_without_a_licence_is_refused() {
        let (_tmp, dir) = pkg_dir("hello");
        let err = parse_package(
            "name = \"hello\"\nversion = \"1\"\ndescription = \"d\"\n",
            &dir,
        )
        .unwrap_err();
        assert!(err.to_string().contains("`license` is missing"), "{err}");
    }

    #[test]
    fn every_problem_is_reported() {
        let (_tmp, dir) = pkg_dir("hello");
        fs::remove_file(dir.join(SCRIPT)).unwrap();
        let text = "name = \"other\"\nversion = \"1\"\nlicense = \"GPL-2.0 WITH\"\ncolour = \"red\"\n\
                    [[source]]\ndeb = \"x\"\nsha256 = \"abc\"\n";
        let err = parse_package(text, &dir).unwrap_err().to_string();
        for expected in [
            "`description` is missing",
            "not an SPDX expression",
            "unknown key `colour`",
            "differs from its directory",
            "needs the exact Debian `version`",
            "not 64 hex digits",
            "build.sh is missing",
        ] {
            assert!(err.contains(expected), "{expected:?} not in:\n{err}");
        }
    }

    #[test]
    fn spdx_syntax() {
        for ok in [
            "MIT",
            "GPL-2.0-only",
            "GPL-2.0+",
            "MIT OR Apache-2.0",
            "(MIT OR Apache-2.0) AND BSD-3-Clause",
            "Apache-2.0 WITH LLVM-exception",
            "LicenseRef-K1OS-1",
        ] {
            check_spdx(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "",
            "MIT OR",
            "(MIT",
            "MIT AND AND BSD",
            "GPL v2",
            "MIT WITH",
            "MIT)",
        ] {
            assert!(check_spdx(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn bad_toml_names_the_line() {
        let (_tmp, dir) = pkg_dir("x");
        let err = parse_package("name = \"x\"\n[package]\n", &dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = parse_package("name = \"x\nversion = 1\n", &dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    fn p(name: &str, deps: &[&str]) -> Package {
        Package {
            name: name.into(),
            version: "1".into(),
            description: "d".into(),
            license: "MIT".into(),
            upstream: None,
            depends: deps.iter().map(|s| s.to_string()).collect(),
            sources: vec![],
            dir: PathBuf::from("/nonexistent").join(name),
        }
    }

    #[test]
    fn dependency_order_and_cycles() {
        let pkgs = vec![p("c", &["b"]), p("a", &[]), p("b", &["a"]), p("d", &[])];
        let names: Vec<&str> = order(&pkgs)
            .unwrap()
            .into_iter()
            .map(|i| pkgs[i].name.as_str())
            .collect();
        assert_eq!(names, vec!["a", "b", "c", "d"]);
        let cyclic = vec![p("a", &["b"]), p("b", &["c"]), p("c", &["a"])];
        let err = order(&cyclic).unwrap_err().to_string();
        assert!(err.contains("a -> b -> c -> a"), "{err}");
    }

    #[test]
    fn tree_hash_sees_content_links_and_exec_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir(d.join("etc")).unwrap();
        fs::write(d.join("etc/a"), "1").unwrap();
        let h1 = tree_hash(d).unwrap();
        assert_eq!(h1, tree_hash(d).unwrap());
        fs::set_permissions(d.join("etc/a"), fs::Permissions::from_mode(0o755)).unwrap();
        let h2 = tree_hash(d).unwrap();
        assert_ne!(h1, h2);
        std::os::unix::fs::symlink("a", d.join("etc/b")).unwrap();
        let h3 = tree_hash(d).unwrap();
        assert_ne!(h2, h3);
        fs::write(d.join("etc/a"), "2").unwrap();
        assert_ne!(h3, tree_hash(d).unwrap());
    }

    #[test]
    fn the_real_packages_are_valid() {
        let pkgs = load(&packages_dir()).unwrap();
        let names: Vec<&str> = pkgs.iter().map(|p| p.name.as_str()).collect();
        assert!(
            names.contains(&"base") && names.contains(&"busybox"),
            "{names:?}"
        );
    }
}
