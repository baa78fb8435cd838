//! `.WARP/manifest.json`: what a package is and every entry it installs, in
//! the order the archive holds them. An archive is never trusted on its own:
//! the signed index pins its sha256, and the manifest pins each file's.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::paths;
use crate::version::{self, Constraint};

/// The manifest format this code reads and writes.
pub const FORMAT: u32 = 1;
/// The only architecture K1OS has.
pub const ARCH: &str = "x86_64";
/// The path of the manifest inside the archive (always the first member).
pub const PATH: &str = ".WARP/manifest.json";
/// The longest manifest warp reads.
pub const MAX_SIZE: u64 = 16 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub name: String,
    pub version: String,
    pub arch: String,
    pub description: String,
    /// An SPDX expression.
    pub license: String,
    /// Constraints (`name`, `name>=V`, …) on other packages.
    #[serde(default)]
    pub depends: Vec<String>,
    /// Packages that cannot be installed together with this one.
    #[serde(default)]
    pub conflicts: Vec<String>,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// One entry: a directory, a regular file (with its size and sha256) or a
/// symlink (with its target).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Permission bits only (at most 0o777: no setuid, setgid or sticky).
    pub mode: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sha256: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Manifest {
    /// Parses and [`check`](Manifest::check)s a manifest.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| format!("manifest.json: {e}"))?;
        m.check()?;
        Ok(m)
    }

    /// The canonical bytes (pretty JSON and a newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).unwrap_or_default();
        b.push(b'\n');
        b
    }

    /// Every rule a manifest follows; the first broken one is the error, with
    /// the package and the path.
    pub fn check(&self) -> Result<(), String> {
        let who = format!("{} {}", self.name, self.version);
        if self.format != FORMAT {
            return Err(format!(
                "{who}: manifest format {} (this warp reads {FORMAT})",
                self.format
            ));
        }
        if !crate::valid_name(&self.name) {
            return Err(format!("`{}` is not a package name", self.name));
        }
        if !version::valid(&self.version) {
            return Err(format!(
                "{}: `{}` is not a version",
                self.name, self.version
            ));
        }
        if self.arch != ARCH {
            return Err(format!("{who}: architecture `{}`, not {ARCH}", self.arch));
        }
        for c in self.depends.iter().chain(&self.conflicts) {
            Constraint::parse(c).map_err(|e| format!("{who}: {e}"))?;
        }
        let mut seen: BTreeMap<&str, Kind> = BTreeMap::new();
        // The sizes must add up in a u64 (`installed_size`): no package is
        // that large, so a manifest that says so is refused, not summed.
        let mut total: u64 = 0;
        for f in &self.files {
            f.check().map_err(|e| format!("{who}: {e}"))?;
            total = total.checked_add(f.size).ok_or_else(|| {
                format!(
                    "{who}: `{}`: the files' sizes add up to more than 2^64 bytes",
                    f.path
                )
            })?;
            let parent = paths::parent(&f.path);
            if !paths::is_shared_dir(parent) && seen.get(parent) != Some(&Kind::Dir) {
                return Err(format!(
                    "{who}: `{}`: its directory `{parent}` is not listed before it as a directory \
                     (a path through a symlink, or out of order)",
                    f.path
                ));
            }
            if seen.insert(&f.path, f.kind).is_some() {
                return Err(format!("{who}: `{}` is listed twice", f.path));
            }
        }
        Ok(())
    }

    /// The sum of the files' sizes (it fits in a u64 once `check` passed;
    /// saturated, not wrapped or panicking, for one that did not).
    pub fn installed_size(&self) -> u64 {
        self.files
            .iter()
            .fold(0, |sum: u64, f| sum.saturating_add(f.size))
    }
}

impl FileEntry {
    /// The rules of one entry: its path ([`paths::check`]), its mode, and the
    /// fields its kind needs.
    pub fn check(&self) -> Result<(), String> {
        paths::check(&self.path, self.kind == Kind::Dir)?;
        if self.mode & !0o777 != 0 {
            return Err(format!(
                "`{}`: mode {:o} has setuid, setgid, sticky or type bits (refused)",
                self.path, self.mode
            ));
        }
        match self.kind {
            Kind::File => {
                if !crate::is_sha256_hex(&self.sha256) {
                    return Err(format!("`{}`: no valid sha256", self.path));
                }
                if !self.target.is_empty() {
                    return Err(format!("`{}`: a file with a link target", self.path));
                }
            }
            Kind::Dir => {
                if self.size != 0 || !self.sha256.is_empty() || !self.target.is_empty() {
                    return Err(format!(
                        "`{}`: a directory with a size, sha256 or target",
                        self.path
                    ));
                }
            }
            Kind::Symlink => {
                if self.target.is_empty()
                    || self.target.len() > paths::MAX_PATH
                    || self.target.contains(['\0', '\n'])
                {
                    return Err(format!(
                        "`{}`: a symlink without a usable target",
                        self.path
                    ));
                }
                if self.size != 0 || !self.sha256.is_empty() {
                    return Err(format!("`{}`: a symlink with a size or sha256", self.path));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        Manifest {
            format: 1,
            name: "hello".into(),
            version: "1.0-1".into(),
            arch: "x86_64".into(),
            description: "says hello".into(),
            license: "MIT".into(),
            depends: vec!["libgreet>=1".into()],
            conflicts: vec![],
            files: vec![
                FileEntry {
                    path: "usr/local/bin".into(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    size: 0,
                    sha256: String::new(),
                    target: String::new(),
                },
                FileEntry {
                    path: "usr/local/bin/hello".into(),
                    kind: Kind::File,
                    mode: 0o755,
                    size: 3,
                    sha256: crate::sha256_hex(b"hi\n"),
                    target: String::new(),
                },
                FileEntry {
                    path: "usr/local/bin/hi".into(),
                    kind: Kind::Symlink,
                    mode: 0o777,
                    size: 0,
                    sha256: String::new(),
                    target: "hello".into(),
                },
            ],
        }
    }

    #[test]
    fn round_trip() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn refusals() {
        type Spoil = Box<dyn Fn(&mut Manifest)>;
        let cases: Vec<(&str, Spoil)> = vec![
            (
                "outside",
                Box::new(|m| m.files[1].path = "usr/bin/hello".into()),
            ),
            (
                "dotdot",
                Box::new(|m| m.files[1].path = "usr/local/bin/../../bin/sh".into()),
            ),
            (
                "absolute",
                Box::new(|m| m.files[1].path = "/usr/local/bin/x".into()),
            ),
            ("setuid", Box::new(|m| m.files[1].mode = 0o4755)),
            ("twice", Box::new(|m| m.files.push(m.files[1].clone()))),
            (
                "through symlink",
                Box::new(|m| {
                    let mut f = m.files[1].clone();
                    f.path = "usr/local/bin/hi/x".into();
                    m.files.push(f);
                }),
            ),
            (
                "no dir",
                Box::new(|m| m.files[1].path = "usr/local/lib/x".into()),
            ),
            ("bad dep", Box::new(|m| m.depends.push("Bad Name".into()))),
            ("arch", Box::new(|m| m.arch = "arm64".into())),
            ("format", Box::new(|m| m.format = 2)),
            ("sha", Box::new(|m| m.files[1].sha256 = "00".into())),
        ];
        for (what, change) in cases {
            let mut m = sample();
            change(&mut m);
            assert!(m.check().is_err(), "{what} accepted");
        }
        assert!(Manifest::parse(b"{\"format\":1,\"extra\":1}").is_err());
    }

    /// Two files whose sizes overflow a u64: `installed_size` panicked
    /// ("attempt to add with overflow") in builds with overflow checks, as
    /// host-tools' `repo verify` is, and wrapped in release. Found reading the
    /// code while writing the fuzz target warp_manifest, which asserts it.
    #[test]
    fn sizes_that_overflow_are_refused() {
        let mut m = sample();
        m.files[1].size = u64::MAX;
        assert_eq!(m.installed_size(), u64::MAX);
        m.check().unwrap();
        let mut big = m.files[1].clone();
        big.path = "usr/local/bin/big".into();
        big.size = 1;
        m.files.push(big);
        let err = m.check().unwrap_err();
        assert!(
            err.contains("usr/local/bin/big") && err.contains("2^64"),
            "{err}"
        );
        assert!(Manifest::parse(&m.to_bytes()).is_err());
        assert_eq!(m.installed_size(), u64::MAX);
    }
}
