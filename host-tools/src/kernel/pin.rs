//! The pin: `kernel/pin.toml`, the one kernel source K1OS builds.
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use super::pin_path;

/// The pinned kernel source, from `kernel/pin.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub version: String,
    pub debian_package: String,
    pub debian_version: String,
    pub tarball: String,
    pub path: PathBuf,
    pub sha256: String,
    pub upstream: String,
    /// KBUILD_BUILD_TIMESTAMP, as seconds since 1970.
    pub build_epoch: i64,
    /// The file's text: part of the cache key.
    pub(super) text: String,
}

impl Pin {
    pub fn load() -> Result<Pin> {
        let path = pin_path();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Pin::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses `key = "value"` lines (a flat subset of TOML); `#` starts a comment line.
    pub fn parse(text: &str) -> Result<Pin> {
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                bail!("line {}: expected `key = \"value\"`, found `{line}`", n + 1);
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            map.insert(key.trim().to_string(), value.to_string());
        }
        let mut take = |key: &str| {
            map.remove(key)
                .with_context(|| format!("the key `{key}` is missing"))
        };
        let pin = Pin {
            version: take("version")?,
            debian_package: take("debian_package")?,
            debian_version: take("debian_version")?,
            tarball: take("tarball")?,
            path: PathBuf::from(take("path")?),
            sha256: take("sha256")?.to_ascii_lowercase(),
            upstream: take("upstream")?,
            build_epoch: {
                let v = take("build_epoch")?;
                v.parse()
                    .with_context(|| format!("build_epoch `{v}` is not a number"))?
            },
            text: text.to_string(),
        };
        if let Some(key) = map.keys().next() {
            bail!("unknown key `{key}`");
        }
        if pin.sha256.len() != 64 || !pin.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("sha256 `{}` is not 64 hex digits", pin.sha256);
        }
        Ok(pin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn the_pin_file_parses() {
        let pin = Pin::load().unwrap();
        assert_eq!(pin.version, "6.1.192");
        assert_eq!(pin.tarball, "linux-source-6.1.tar.xz");
        assert_eq!(pin.path, Path::new("/usr/src/linux-source-6.1.tar.xz"));
        assert_eq!(
            pin.sha256,
            "4d415b3d364834fd818270e88813e90323bbfce4f519a0e6bd4940ddcd7df693"
        );
        assert!(Pin::parse("version = \"1\"\n").is_err());
    }
}
