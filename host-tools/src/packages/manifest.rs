//! `package.toml`: what a package is ([`Package`], its [`Source`]s), read
//! (with [`flat_toml`]) and checked, every problem reported at once, and the
//! SPDX expression check of its `license`.
use anyhow::{Result, bail, ensure};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::SCRIPT;
use crate::flat_toml::{self, Table};
use crate::hash::is_sha256;

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
    /// `repository = true`: built and cached like any package, but published
    /// by `host-tools repo build` as a `.warp` archive instead of going into
    /// `system.squashfs`. Its output lies under `usr/local/` and `opt/` only.
    pub repository: bool,
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
    /// A file host-tools makes itself (one of [`GENERATED`]), keyed by its
    /// content: `sha256` is empty as parsed and filled in by
    /// [`super::Plan::new`], which makes the file. The script finds it as
    /// `$SRCDIR/<name>`.
    Generated { name: String, sha256: String },
}

/// What a `generated` source can be: the name the script finds it under, and
/// what it is.
pub const GENERATED: &[(&str, &str)] = &[
    (
        "warp",
        "the static warp binary, built by host-tools from warp/ (release, x86_64-unknown-linux-musl)",
    ),
    (
        "repo-key.pub",
        "the public half of the repository signing key (host-tools repo: the build key, or $K1OS_REPO_KEY's)",
    ),
];

impl Source {
    /// The name the script finds the source under in `$SRCDIR`.
    pub fn name_in_srcdir(&self) -> String {
        match self {
            Source::Deb { package, .. } => format!("{package}.deb"),
            Source::Generated { name, .. } => name.clone(),
            Source::File { path, .. } | Source::Tree { path } => Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.clone()),
        }
    }

    /// How the source is described in messages and `./k1os packages`.
    pub fn describe(&self) -> String {
        match self {
            Source::Deb {
                package, version, ..
            } => format!("Debian package {package}={version}"),
            Source::File { path, .. } => format!("file {path}"),
            Source::Tree { path } => format!("tree {path}"),
            Source::Generated { name, .. } => {
                let what = GENERATED
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or("made by host-tools", |(_, what)| what);
                format!("generated {name}: {what}")
            }
        }
    }
}

/// Parses and checks one `package.toml` (`dir` is the package's directory,
/// whose name must be the package's). Every problem is reported, one per line.
pub fn parse_package(text: &str, dir: &Path) -> Result<Package> {
    let mut top = flat_toml::parse(text)?;
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
    let repository = top.take_bool("repository", &mut problems).unwrap_or(false);
    let source_tables = top.take_tables("source", &mut problems);
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
        let generated = t.take_str("generated", &mut problems);
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
        match (deb, file, tree, generated) {
            (Some(package), None, None, None) => {
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
            (None, Some(path), None, None) => {
                if deb_version.is_some() {
                    problems.push(format!("line {at}: `version` is for `deb` sources only"));
                }
                let sha256 = need_sha(sha256, &mut problems);
                sources.push(Source::File { path, sha256 });
            }
            (None, None, Some(path), None) => {
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
            (None, None, None, Some(name)) => {
                if deb_version.is_some() || sha256.is_some() {
                    problems.push(format!(
                        "line {at}: a `generated` source is keyed by its content: no `version` or `sha256`"
                    ));
                }
                if !GENERATED.iter().any(|(n, _)| *n == name) {
                    let known: Vec<String> =
                        GENERATED.iter().map(|(n, _)| format!("`{n}`")).collect();
                    problems.push(format!(
                        "line {at}: `generated = \"{name}\"`: host-tools makes {}",
                        known.join(" and ")
                    ));
                }
                sources.push(Source::Generated {
                    name,
                    sha256: String::new(),
                });
            }
            _ => problems.push(format!(
                "line {at}: a source has exactly one of `deb`, `file`, `tree` or `generated`"
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
        repository,
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

/// Checks the syntax of an SPDX license expression: license ids (`MIT`,
/// `GPL-2.0-or-later`, `LicenseRef-…`, an optional `+`), `AND`, `OR`,
/// `WITH <exception>` and parentheses. Whether an id is on the SPDX list, or
/// allowed, is not checked: the licence is shown as written, by `./k1os
/// packages` and in `THIRD-PARTY-NOTICES`.
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
    fn lists_may_span_lines_and_sources_must_be_tables() {
        let (_tmp, dir) = pkg_dir("hello");
        let head = "name = \"hello\"\nversion = \"1\"\ndescription = \"d\"\nlicense = \"MIT\"\n";
        let p = parse_package(
            &format!("{head}depends = [\n  \"base\",\n  \"zlib\",\n]\n"),
            &dir,
        )
        .unwrap();
        assert_eq!(p.depends, ["base", "zlib"]);
        let err = parse_package(&format!("{head}source = \"x.tar\"\n"), &dir)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 5: `source` must be `[[source]]` tables"),
            "{err}"
        );
    }

    #[test]
    fn repository_packages_and_generated_sources() {
        let (_tmp, dir) = pkg_dir("tool");
        let head = "name = \"tool\"\nversion = \"1\"\ndescription = \"d\"\nlicense = \"MIT\"\n";
        let p = parse_package(head, &dir).unwrap();
        assert!(!p.repository, "an image package by default");
        let p = parse_package(
            &format!("{head}repository = true\n[[source]]\ngenerated = \"warp\"\n"),
            &dir,
        )
        .unwrap();
        assert!(p.repository);
        assert_eq!(
            p.sources,
            [Source::Generated {
                name: "warp".into(),
                sha256: String::new()
            }]
        );
        assert_eq!(p.sources[0].name_in_srcdir(), "warp");
        let err = parse_package(
            &format!(
                "{head}repository = \"yes\"\n[[source]]\ngenerated = \"kernel\"\n\
                 [[source]]\ngenerated = \"warp\"\nsha256 = \"{}\"\n",
                "0".repeat(64)
            ),
            &dir,
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "line 5: `repository` must be `true` or `false`",
            "`generated = \"kernel\"`: host-tools makes `warp` and `repo-key.pub`",
            "a `generated` source is keyed by its content",
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
