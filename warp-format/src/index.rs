//! `index.json`: a repository's packages, each archive pinned by size and
//! sha256, with a `serial` that only ever increases. It is trusted only with
//! a good `index.json.sig` (see [`crate::signify`]) over its exact bytes.
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use crate::manifest::ARCH;
use crate::version::{self, Constraint};

/// The index format this code reads and writes.
pub const FORMAT: u32 = 1;
/// The largest index warp downloads or reads.
pub const MAX_SIZE: u64 = 16 << 20;
/// The file names in a repository.
pub const INDEX_FILE: &str = "index.json";
pub const SIGNATURE_FILE: &str = "index.json.sig";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub format: u32,
    /// The repository's name (`k1os`).
    pub repo: String,
    pub arch: String,
    /// Increases with every publication (by default `SOURCE_DATE_EPOCH`);
    /// warp refuses a lower serial than the last it saw, or the same serial
    /// with other bytes.
    pub serial: u64,
    /// Sorted by name, then version.
    pub packages: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub version: String,
    pub description: String,
    pub license: String,
    #[serde(default)]
    pub depends: Vec<String>,
    #[serde(default)]
    pub conflicts: Vec<String>,
    /// The archive's file name, next to `index.json`.
    pub file: String,
    /// The archive's size in bytes.
    pub size: u64,
    /// The archive's sha256.
    pub sha256: String,
    /// The sum of the sizes of the files it installs.
    pub installed_size: u64,
}

impl Index {
    /// Parses and checks an index.
    pub fn parse(bytes: &[u8]) -> Result<Index, String> {
        if bytes.len() as u64 > MAX_SIZE {
            return Err(format!("index.json is larger than {MAX_SIZE} bytes"));
        }
        let index: Index = serde_json::from_slice(bytes).map_err(|e| format!("index.json: {e}"))?;
        index.check()?;
        Ok(index)
    }

    /// The canonical bytes: packages sorted, pretty JSON, a final newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut sorted = self.clone();
        sorted.packages.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| version::compare(&a.version, &b.version))
        });
        let mut b = serde_json::to_vec_pretty(&sorted).unwrap_or_default();
        b.push(b'\n');
        b
    }

    /// The rules: format, arch, each entry's name, version, constraints, file
    /// name and sha256, and no (name, version) twice.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "index format {} (this warp reads {FORMAT})",
                self.format
            ));
        }
        if self.arch != ARCH {
            return Err(format!("index for `{}`, not {ARCH}", self.arch));
        }
        let mut seen = BTreeSet::new();
        for e in &self.packages {
            e.check()?;
            if !seen.insert((e.name.as_str(), e.version.as_str())) {
                return Err(format!("{} {} is listed twice", e.name, e.version));
            }
        }
        Ok(())
    }

    /// The entries named `name`, any version.
    pub fn versions<'a, 'n>(
        &'a self,
        name: &'n str,
    ) -> impl Iterator<Item = &'a Entry> + use<'a, 'n> {
        self.packages.iter().filter(move |e| e.name == name)
    }

    /// The highest version of `name` that `constraint` allows.
    pub fn best<'a>(&'a self, constraint: &Constraint) -> Option<&'a Entry> {
        self.versions(&constraint.name)
            .filter(|e| constraint.allows(&e.version))
            .max_by(|a, b| version::compare(&a.version, &b.version))
    }
}

impl Entry {
    pub fn check(&self) -> Result<(), String> {
        if !crate::valid_name(&self.name) {
            return Err(format!("index: `{}` is not a package name", self.name));
        }
        let who = format!("index: {} {}", self.name, self.version);
        if !version::valid(&self.version) {
            return Err(format!(
                "index: {}: `{}` is not a version",
                self.name, self.version
            ));
        }
        for c in self.depends.iter().chain(&self.conflicts) {
            Constraint::parse(c).map_err(|e| format!("{who}: {e}"))?;
        }
        if !self.file.ends_with(".warp")
            || self.file.len() > 255
            || self.file.starts_with('.')
            || self.file.contains(['/', '\0', '\\', '\n', '?', '#', '%'])
        {
            return Err(format!(
                "{who}: `{}` is not an archive file name",
                self.file
            ));
        }
        if !crate::is_sha256_hex(&self.sha256) {
            return Err(format!("{who}: `{}` is not a sha256", self.sha256));
        }
        Ok(())
    }

    /// `name version`, as messages name a package.
    pub fn id(&self) -> String {
        format!("{} {}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, version: &str) -> Entry {
        Entry {
            name: name.into(),
            version: version.into(),
            description: "d".into(),
            license: "MIT".into(),
            depends: vec![],
            conflicts: vec![],
            file: format!("{name}-{version}.warp"),
            size: 10,
            sha256: "a".repeat(64),
            installed_size: 5,
        }
    }

    #[test]
    fn round_trip_best_and_refusals() {
        let index = Index {
            format: 1,
            repo: "k1os".into(),
            arch: "x86_64".into(),
            serial: 7,
            packages: vec![entry("b", "1.10"), entry("a", "1"), entry("b", "1.9")],
        };
        let bytes = index.to_bytes();
        let back = Index::parse(&bytes).unwrap();
        assert_eq!(back.packages[0].name, "a");
        assert_eq!(back.to_bytes(), bytes);
        let any = Constraint::parse("b").unwrap();
        assert_eq!(back.best(&any).unwrap().version, "1.10");
        assert_eq!(
            back.best(&Constraint::parse("b<1.10").unwrap())
                .unwrap()
                .version,
            "1.9"
        );
        assert!(back.best(&Constraint::parse("c").unwrap()).is_none());

        for bad_file in ["../x.warp", "x.tar", ".warp", "a/b.warp"] {
            let mut i = index.clone();
            i.packages[0].file = bad_file.into();
            assert!(i.check().is_err(), "{bad_file}");
        }
        let mut i = index.clone();
        i.packages.push(entry("a", "1"));
        assert!(i.check().is_err());
        assert!(Index::parse(b"{}").is_err());
    }
}
