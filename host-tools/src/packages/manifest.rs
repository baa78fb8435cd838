//! `package.toml`: what a package is ([`Package`], its [`Source`]s), read
//! and checked, every problem reported at once, and the SPDX expression check
//! of its `license`.
use anyhow::{Context, Result, bail, ensure};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::SCRIPT;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

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
}
