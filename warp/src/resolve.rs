//! Dependency resolution: from the world (what the user asked for), the
//! installed set and the verified indexes to the set that should be
//! installed.
//!
//! Like opkg, and as the research proposes (§5.2): the index is one
//! consistent snapshot, so warp takes the closure of the world depth-first,
//! picks one version per name, and stops with the chain when it cannot —
//! no backtracking search. For each name it keeps the installed version
//! when that meets every constraint known on the name (unless upgrading),
//! else it takes the highest version in the indexes that does. When a
//! package found later constrains a name already picked, the constraint is
//! remembered and the closure is taken again from the start, so the pick
//! sees it (this converges: constraints are only ever added).
use std::collections::{BTreeMap, BTreeSet};

use warp_format::index::Entry;
use warp_format::version::{self, Constraint};

use crate::db::Installed;
use crate::error::{Error, Result};
use crate::repos::RepoIndex;

/// Where a picked version comes from.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// Already installed, kept as it is.
    Installed(&'a Installed),
    /// From a repository's index (or `local` for `--allow-untrusted`).
    Index { repo: &'a str, entry: &'a Entry },
}

/// One version of one package that can be picked.
#[derive(Clone, Copy, Debug)]
pub struct Candidate<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub depends: &'a [String],
    pub conflicts: &'a [String],
    pub source: Source<'a>,
}

impl<'a> Candidate<'a> {
    fn installed(i: &'a Installed) -> Candidate<'a> {
        Candidate {
            name: &i.name,
            version: &i.version,
            depends: &i.manifest.depends,
            conflicts: &i.manifest.conflicts,
            source: Source::Installed(i),
        }
    }
    fn indexed(repo: &'a str, entry: &'a Entry) -> Candidate<'a> {
        Candidate {
            name: &entry.name,
            version: &entry.version,
            depends: &entry.depends,
            conflicts: &entry.conflicts,
            source: Source::Index { repo, entry },
        }
    }
}

/// Every package version the repositories offer, by name, in repository
/// order (the first repository wins between equal versions).
#[derive(Default)]
pub struct Available<'a> {
    by_name: BTreeMap<&'a str, Vec<(&'a str, &'a Entry)>>,
}

impl<'a> Available<'a> {
    pub fn new(indexes: &'a [RepoIndex]) -> Available<'a> {
        let mut a = Available::default();
        for ri in indexes {
            a.add_index(ri);
        }
        a
    }
    pub fn add_index(&mut self, ri: &'a RepoIndex) {
        for e in &ri.index.packages {
            self.add(&ri.repo.name, e);
        }
    }
    pub fn add(&mut self, repo: &'a str, entry: &'a Entry) {
        self.by_name
            .entry(&entry.name)
            .or_default()
            .push((repo, entry));
    }
    /// Every offered version of `name`.
    pub fn versions(&self, name: &str) -> &[(&'a str, &'a Entry)] {
        self.by_name
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
    /// Every name, in order.
    pub fn names(&self) -> impl Iterator<Item = &'a str> + '_ {
        self.by_name.keys().copied()
    }
    /// The highest version of `name` meeting `ok`.
    pub fn best(&self, name: &str, ok: impl Fn(&str) -> bool) -> Option<(&'a str, &'a Entry)> {
        let mut best: Option<(&str, &Entry)> = None;
        for &(repo, e) in self.versions(name) {
            if ok(&e.version)
                && best.is_none_or(|(_, b)| version::compare(&e.version, &b.version).is_gt())
            {
                best = Some((repo, e));
            }
        }
        best
    }
}

/// Keep installed versions, or take the newest allowed ones.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Installed versions stay when they meet the constraints (install,
    /// remove).
    Keep,
    /// The newest allowed version, for every name (`None`) or the names
    /// given (upgrade).
    Upgrade(Option<BTreeSet<String>>),
}

impl Mode {
    fn upgrades(&self, name: &str) -> bool {
        match self {
            Mode::Keep => false,
            Mode::Upgrade(None) => true,
            Mode::Upgrade(Some(names)) => names.contains(name),
        }
    }
}

/// A package to install or replace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pick {
    pub entry: Entry,
    pub repo: String,
    /// Only a dependency (not named in the world).
    pub auto: bool,
    /// The version it replaces, if one is installed.
    pub replaces: Option<String>,
}

pub struct Resolution<'a> {
    /// The whole closure of the world.
    pub chosen: BTreeMap<&'a str, Candidate<'a>>,
    /// For each package of the closure that a dependency brought in: the
    /// first package that needs it.
    pub needed_by: BTreeMap<&'a str, &'a str>,
    /// New packages and changed versions, by name.
    pub install: Vec<Pick>,
    /// Installed packages outside the closure, by name.
    pub remove: Vec<String>,
    /// Installed packages, kept, whose `auto` flag changes.
    pub set_auto: Vec<(String, bool)>,
}

impl Resolution<'_> {
    /// Nothing to install, remove or re-flag.
    pub fn is_empty(&self) -> bool {
        self.install.is_empty() && self.remove.is_empty() && self.set_auto.is_empty()
    }
}

/// A constraint with where it came from (`None`: the world).
type Origin<'a> = Option<&'a str>;

/// Upper bound on restarts; each adds a constraint, so real inputs need a
/// handful. It only guards against a bug looping forever.
const MAX_PASSES: usize = 10_000;

pub fn resolve<'a>(
    world: &'a [Constraint],
    installed: &'a BTreeMap<String, Installed>,
    available: &Available<'a>,
    mode: &Mode,
) -> Result<Resolution<'a>> {
    let mut world_on: BTreeMap<&str, Vec<&Constraint>> = BTreeMap::new();
    for c in world {
        world_on.entry(&c.name).or_default().push(c);
    }
    // Constraints from dependencies, found in earlier passes.
    let mut hints: BTreeMap<String, Vec<(Constraint, Origin<'a>)>> = BTreeMap::new();
    // Parsed dependency lists, by package version (parsing once per pass
    // would do the same work again on every restart).
    let mut parsed: BTreeMap<(&str, &str, bool), Vec<Constraint>> = BTreeMap::new();

    'pass: for _ in 0..MAX_PASSES {
        let mut chosen: BTreeMap<&'a str, Candidate<'a>> = BTreeMap::new();
        let mut needed_by: BTreeMap<&'a str, &'a str> = BTreeMap::new();
        // (constraint, the package that has it; `None`: the world)
        let mut stack: Vec<(Constraint, Origin<'a>)> =
            world.iter().rev().map(|c| (c.clone(), None)).collect();
        while let Some((c, origin)) = stack.pop() {
            if let Some(p) = chosen.get(c.name.as_str()) {
                if c.allows(p.version) {
                    continue;
                }
                let known = hints.entry(c.name.clone()).or_default();
                if known.iter().any(|(k, o)| *k == c && *o == origin) {
                    // The pick already saw this constraint and still fails
                    // it: cannot happen, as picks meet every hint; report it
                    // rather than loop.
                    let chain = chain(origin, &needed_by);
                    return Err(unmet(&c, &chain, &[], installed, available));
                }
                known.push((c, origin));
                continue 'pass;
            }
            // Every constraint known on the name, with where it comes from.
            let mut all: Vec<(&Constraint, Origin<'a>)> = world_on
                .get(c.name.as_str())
                .map(|w| w.iter().map(|k| (*k, None)).collect())
                .unwrap_or_default();
            if let Some(h) = hints.get(&c.name) {
                all.extend(h.iter().map(|(k, o)| (k, *o)));
            }
            all.push((&c, origin));
            let only: Vec<&Constraint> = all.iter().map(|(k, _)| *k).collect();
            let Some(pick) = choose(&c.name, &only, installed, available, mode) else {
                let others: Vec<String> = all
                    .iter()
                    .filter(|(k, o)| !(**k == c && *o == origin))
                    .map(|(k, o)| match o {
                        Some(o) => format!("{k} (needed by {o})"),
                        None => format!("{k} (in the world)"),
                    })
                    .collect();
                let chain = chain(origin, &needed_by);
                return Err(unmet(&c, &chain, &others, installed, available));
            };
            chosen.insert(pick.name, pick);
            if let Some(o) = origin {
                needed_by.insert(pick.name, o);
            }
            let key = (
                pick.name,
                pick.version,
                matches!(pick.source, Source::Installed(_)),
            );
            let deps = match parsed.entry(key) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(parse_all(pick.depends, pick)?)
                }
            };
            for dep in deps.iter().rev() {
                stack.push((dep.clone(), Some(pick.name)));
            }
        }
        check_conflicts(&chosen)?;
        return Ok(outcome(chosen, needed_by, &world_on, installed));
    }
    Err(Error::resolution(
        "the dependencies do not settle (a bug in warp's resolver; please report the world and the index)",
    ))
}

fn parse_all(list: &[String], who: Candidate<'_>) -> Result<Vec<Constraint>> {
    list.iter()
        .map(|d| {
            Constraint::parse(d).map_err(|e| {
                Error::resolution(format!(
                    "{} {}: a dependency that does not parse: {e}",
                    who.name, who.version
                ))
            })
        })
        .collect()
}

fn choose<'a>(
    name: &str,
    all: &[&Constraint],
    installed: &'a BTreeMap<String, Installed>,
    available: &Available<'a>,
    mode: &Mode,
) -> Option<Candidate<'a>> {
    let meets = |v: &str| all.iter().all(|c| c.allows(v));
    let current = installed.get(name).filter(|i| meets(&i.version));
    if let Some(i) = current
        && !mode.upgrades(name)
    {
        return Some(Candidate::installed(i));
    }
    let best = available.best(name, meets);
    match (current, best) {
        // Upgrading: the installed version stays unless the index has a
        // higher one (an equal one is the same package: no change).
        (Some(i), Some((_, e))) if version::compare(&i.version, &e.version).is_ge() => {
            Some(Candidate::installed(i))
        }
        (_, Some((repo, e))) => Some(Candidate::indexed(repo, e)),
        (Some(i), None) => Some(Candidate::installed(i)),
        (None, None) => None,
    }
}

/// The packages that led from the world to `origin`, outermost first:
/// each package was picked when first needed, so following who first
/// needed it walks the depth-first path back (and ends: a package's first
/// requirer was picked before it).
fn chain<'a>(origin: Origin<'a>, needed_by: &BTreeMap<&'a str, &'a str>) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut at = origin;
    while let Some(name) = at {
        if out.contains(&name) {
            break;
        }
        out.push(name);
        at = needed_by.get(name).copied();
    }
    out.reverse();
    out
}

/// The error for a constraint no version meets: the chain that led there
/// and what exists.
fn unmet(
    c: &Constraint,
    chain: &[&str],
    others: &[String],
    installed: &BTreeMap<String, Installed>,
    available: &Available<'_>,
) -> Error {
    let mut versions: Vec<String> = available
        .versions(&c.name)
        .iter()
        .map(|(_, e)| e.version.clone())
        .collect();
    versions.sort_by(|a, b| version::compare(a, b));
    versions.dedup();
    if let Some(i) = installed.get(&c.name)
        && !versions.contains(&i.version)
    {
        versions.push(format!("{} (installed)", i.version));
    }
    if versions.is_empty() {
        return Error::resolution(if chain.is_empty() {
            format!(
                "unknown package {}: no repository index has it (run `warp update`, or check the name with `warp search`)",
                c.name
            )
        } else {
            format!(
                "unknown package {} (needed by {})",
                c.name,
                chain.join(" -> ")
            )
        });
    }
    let path = if chain.is_empty() {
        c.to_string()
    } else {
        format!("{} -> {c}", chain.join(" -> "))
    };
    let have = match versions.len() {
        1 => format!("only {} is available", versions[0]),
        _ => format!("only {} are available", versions.join(", ")),
    };
    if others.is_empty() {
        Error::resolution(format!("{path}: {have}"))
    } else {
        Error::resolution(format!(
            "{path}: no version also meets {} ({have})",
            others.join(", ")
        ))
    }
}

fn check_conflicts(chosen: &BTreeMap<&str, Candidate<'_>>) -> Result<()> {
    for p in chosen.values() {
        for text in p.conflicts {
            let c = Constraint::parse(text).map_err(|e| {
                Error::resolution(format!(
                    "{} {}: a conflict that does not parse: {e}",
                    p.name, p.version
                ))
            })?;
            if let Some(q) = chosen.get(c.name.as_str())
                && q.name != p.name
                && c.allows(q.version)
            {
                return Err(Error::conflict(format!(
                    "{} {} conflicts with {} {} ({} declares `conflicts: {text}`); they cannot be \
                     installed together",
                    p.name, p.version, q.name, q.version, p.name
                )));
            }
        }
    }
    Ok(())
}

fn outcome<'a>(
    chosen: BTreeMap<&'a str, Candidate<'a>>,
    needed_by: BTreeMap<&'a str, &'a str>,
    world_on: &BTreeMap<&str, Vec<&Constraint>>,
    installed: &BTreeMap<String, Installed>,
) -> Resolution<'a> {
    let mut install = Vec::new();
    let mut set_auto = Vec::new();
    for (name, cand) in &chosen {
        let auto = !world_on.contains_key(name);
        let current = installed.get(*name);
        match cand.source {
            Source::Installed(i) => {
                if i.auto != auto {
                    set_auto.push((name.to_string(), auto));
                }
            }
            Source::Index { repo, entry } => install.push(Pick {
                entry: entry.clone(),
                repo: repo.to_string(),
                auto,
                replaces: current.map(|i| i.version.clone()),
            }),
        }
    }
    let remove = installed
        .keys()
        .filter(|n| !chosen.contains_key(n.as_str()))
        .cloned()
        .collect();
    Resolution {
        chosen,
        needed_by,
        install,
        remove,
        set_auto,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use warp_format::manifest::Manifest;

    /// `name version [dep,dep] [conflict,conflict]` in a compact form:
    /// `"hello 1.0 d:libgreet>=1 c:other"`.
    fn entry(spec: &str) -> Entry {
        let mut words = spec.split_whitespace();
        let name = words.next().unwrap().to_string();
        let version = words.next().unwrap().to_string();
        let (mut depends, mut conflicts) = (vec![], vec![]);
        for w in words {
            if let Some(d) = w.strip_prefix("d:") {
                depends.push(d.to_string());
            } else if let Some(c) = w.strip_prefix("c:") {
                conflicts.push(c.to_string());
            }
        }
        Entry {
            file: format!("{name}-{version}.warp"),
            name,
            version,
            description: String::new(),
            license: "MIT".into(),
            depends,
            conflicts,
            size: 1,
            sha256: "0".repeat(64),
            installed_size: 1,
        }
    }

    /// An installed package: `"hello 1.0 auto d:libgreet"`.
    fn installed(spec: &str) -> Installed {
        let e = entry(spec);
        Installed {
            auto: spec.split_whitespace().any(|w| w == "auto"),
            name: e.name.clone(),
            version: e.version.clone(),
            repo: "test".into(),
            sha256: e.sha256.clone(),
            txid: 1,
            manifest: Manifest {
                format: 1,
                name: e.name,
                version: e.version,
                arch: "x86_64".into(),
                description: String::new(),
                license: "MIT".into(),
                depends: e.depends,
                conflicts: e.conflicts,
                files: vec![],
            },
        }
    }

    struct Case {
        what: &'static str,
        index: &'static [&'static str],
        installed: &'static [&'static str],
        world: &'static [&'static str],
        mode: Option<&'static [&'static str]>,
        /// `+name=v` install (`+name=v*` auto), `-name` remove,
        /// `auto:name=true`; or `!code:substring` for an error.
        want: &'static [&'static str],
    }

    fn run(case: &Case) -> std::result::Result<Vec<String>, (Code, String)> {
        let entries: Vec<Entry> = case.index.iter().map(|s| entry(s)).collect();
        let mut available = Available::default();
        for e in &entries {
            available.add("test", e);
        }
        let installed: BTreeMap<String, Installed> = case
            .installed
            .iter()
            .map(|s| {
                let i = installed(s);
                (i.name.clone(), i)
            })
            .collect();
        let world: Vec<Constraint> = case
            .world
            .iter()
            .map(|s| Constraint::parse(s).unwrap())
            .collect();
        let mode = match case.mode {
            None => Mode::Keep,
            Some([]) => Mode::Upgrade(None),
            Some(names) => Mode::Upgrade(Some(names.iter().map(|s| s.to_string()).collect())),
        };
        let r = resolve(&world, &installed, &available, &mode).map_err(|e| (e.code, e.msg))?;
        let mut out = Vec::new();
        for p in &r.install {
            out.push(format!(
                "+{}={}{}",
                p.entry.name,
                p.entry.version,
                if p.auto { "*" } else { "" }
            ));
        }
        for n in &r.remove {
            out.push(format!("-{n}"));
        }
        for (n, a) in &r.set_auto {
            out.push(format!("auto:{n}={a}"));
        }
        Ok(out)
    }

    #[test]
    fn table() {
        let cases = [
            Case {
                what: "install with a dependency",
                index: &["hello 1.0 d:libgreet>=1", "libgreet 1.0", "libgreet 0.9"],
                installed: &[],
                world: &["hello"],
                mode: None,
                want: &["+hello=1.0", "+libgreet=1.0*"],
            },
            Case {
                what: "the highest version meeting the constraint",
                index: &["hello 1.0", "hello 2.0", "hello 1.5"],
                installed: &[],
                world: &["hello<2"],
                mode: None,
                want: &["+hello=1.5"],
            },
            Case {
                what: "installed versions are kept",
                index: &["hello 2.0 d:libgreet", "libgreet 2.0"],
                installed: &["hello 1.0 d:libgreet", "libgreet 1.0 auto"],
                world: &["hello"],
                mode: None,
                want: &[],
            },
            Case {
                what: "an installed dependency too old for a new package is upgraded",
                index: &["app 1.0 d:libgreet>=2", "libgreet 2.0"],
                installed: &["hello 1.0 d:libgreet", "libgreet 1.0 auto"],
                world: &["hello", "app"],
                mode: None,
                want: &["+app=1.0", "+libgreet=2.0*"],
            },
            Case {
                what: "a constraint found after the pick restarts the closure",
                index: &["a 1.0 d:lib d:b", "b 1.0 d:lib>=2", "lib 1.0", "lib 2.0"],
                installed: &["lib 1.0 auto"],
                world: &["a"],
                mode: None,
                want: &["+a=1.0", "+b=1.0*", "+lib=2.0*"],
            },
            Case {
                what: "upgrade everything",
                index: &["hello 2.0 d:libgreet>=2", "libgreet 2.0", "other 3.0"],
                installed: &["hello 1.0 d:libgreet", "libgreet 1.0 auto", "other 3.0"],
                world: &["hello", "other"],
                mode: Some(&[]),
                want: &["+hello=2.0", "+libgreet=2.0*"],
            },
            Case {
                what: "upgrade one package",
                index: &["hello 2.0", "other 4.0"],
                installed: &["hello 1.0", "other 3.0"],
                world: &["hello", "other"],
                mode: Some(&["hello"]),
                want: &["+hello=2.0"],
            },
            Case {
                what: "upgrade keeps a package newer than the index (and a local one)",
                index: &["hello 1.0"],
                installed: &["hello 1.5", "mine 1.0"],
                world: &["hello", "mine"],
                mode: Some(&[]),
                want: &[],
            },
            Case {
                what: "upgrade honours the world's constraints",
                index: &["hello 1.0", "hello 2.0"],
                installed: &["hello 1.0"],
                world: &["hello<2"],
                mode: Some(&[]),
                want: &[],
            },
            Case {
                what: "a pinned downgrade",
                index: &["hello 1.0", "hello 2.0"],
                installed: &["hello 2.0"],
                world: &["hello=1.0"],
                mode: None,
                want: &["+hello=1.0"],
            },
            Case {
                what: "removing an explicit package removes its orphaned dependencies",
                index: &[],
                installed: &["hello 1.0 d:libgreet", "libgreet 1.0 auto", "other 1.0"],
                world: &["other"],
                mode: None,
                want: &["-hello", "-libgreet"],
            },
            Case {
                what: "a shared dependency stays",
                index: &[],
                installed: &[
                    "hello 1.0 d:libgreet",
                    "app 1.0 d:libgreet",
                    "libgreet 1.0 auto",
                ],
                world: &["app"],
                mode: None,
                want: &["-hello"],
            },
            Case {
                what: "installing a dependency makes it explicit",
                index: &["libgreet 1.0"],
                installed: &["hello 1.0 d:libgreet", "libgreet 1.0 auto"],
                world: &["hello", "libgreet"],
                mode: None,
                want: &["auto:libgreet=false"],
            },
            Case {
                what: "removing an explicit package still needed makes it a dependency",
                index: &[],
                installed: &["hello 1.0 d:libgreet", "libgreet 1.0"],
                world: &["hello"],
                mode: None,
                want: &["auto:libgreet=true"],
            },
            Case {
                what: "dependency cycles end",
                index: &["a 1.0 d:b", "b 1.0 d:a"],
                installed: &[],
                world: &["a"],
                mode: None,
                want: &["+a=1.0", "+b=1.0*"],
            },
            Case {
                what: "unknown package",
                index: &["hello 1.0"],
                installed: &[],
                world: &["nosuch"],
                mode: None,
                want: &["!5:unknown package nosuch: no repository index has it"],
            },
            Case {
                what: "unknown dependency names the chain",
                index: &["app 1.0 d:hello", "hello 1.0 d:libfoo"],
                installed: &[],
                world: &["app"],
                mode: None,
                want: &["!5:unknown package libfoo (needed by app -> hello)"],
            },
            Case {
                what: "unmet version",
                index: &["hello 1.0 d:libgreet>=2", "libgreet 1.0"],
                installed: &[],
                world: &["hello"],
                mode: None,
                want: &["!5:hello -> libgreet>=2: only 1.0 is available"],
            },
            Case {
                what: "unmet world version",
                index: &["hello 1.0", "hello 1.1"],
                installed: &[],
                world: &["hello>=2"],
                mode: None,
                want: &["!5:hello>=2: only 1.0, 1.1 are available"],
            },
            Case {
                what: "two constraints no version meets together",
                index: &["app 1.0 d:libgreet>=2", "libgreet 1.0", "libgreet 2.0"],
                installed: &[],
                world: &["libgreet<2", "app"],
                mode: None,
                want: &["!5:libgreet<2: no version also meets libgreet>=2 (needed by app)"],
            },
            Case {
                what: "a conflict",
                index: &["hello 1.0 c:other", "other 1.0"],
                installed: &[],
                world: &["hello", "other"],
                mode: None,
                want: &["!6:hello 1.0 conflicts with other 1.0"],
            },
            Case {
                what: "a conflict with a version range that does not apply",
                index: &["hello 1.0 c:other<1", "other 1.0"],
                installed: &[],
                world: &["hello", "other"],
                mode: None,
                want: &["+hello=1.0", "+other=1.0"],
            },
            Case {
                what: "a conflict with an installed package",
                index: &["hello 1.0 c:other"],
                installed: &["other 1.0"],
                world: &["other", "hello"],
                mode: None,
                want: &["!6:hello 1.0 conflicts with other 1.0"],
            },
        ];
        for case in &cases {
            let got = run(case);
            match case.want.first() {
                Some(w) if w.starts_with('!') => {
                    let (code, sub) = w[1..].split_once(':').unwrap();
                    let (got_code, msg) = got.expect_err(case.what);
                    assert_eq!(
                        got_code as u8,
                        code.parse::<u8>().unwrap(),
                        "{}: {msg}",
                        case.what
                    );
                    assert!(msg.contains(sub), "{}: {msg}", case.what);
                }
                _ => {
                    let mut got = got.unwrap_or_else(|e| panic!("{}: {e:?}", case.what));
                    got.sort();
                    let mut want: Vec<String> = case.want.iter().map(|s| s.to_string()).collect();
                    want.sort();
                    assert_eq!(got, want, "{}", case.what);
                }
            }
        }
    }

    #[test]
    fn needed_by() {
        let entries = [entry("app 1.0 d:hello"), entry("hello 1.0")];
        let mut available = Available::default();
        for e in &entries {
            available.add("test", e);
        }
        let world = vec![Constraint::parse("app").unwrap()];
        let none = BTreeMap::new();
        let r = resolve(&world, &none, &available, &Mode::Keep).unwrap();
        assert_eq!(r.needed_by.get("hello"), Some(&"app"));
        assert_eq!(r.needed_by.get("app"), None);
    }
}
