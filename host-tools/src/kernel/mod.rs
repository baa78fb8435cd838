//! The kernel build (`./k1os kernel`) and the config check (`./k1os kernel
//! check`); `kernel/README.md` is the user's side of this.
//!
//! - here: the [`Profile`]s (base config and fragments) and the paths;
//! - `pin.rs`: `kernel/pin.toml` ([`Pin`]) and `./k1os kernel pin`;
//! - `source.rs`: the tree to build ([`resolve_source`]): the pinned tarball,
//!   verified, or `--kernel-source`;
//! - `key.rs`: everything a build depends on, whose sha256 names its cache
//!   entry;
//! - `build.rs`: [`ensure_kernel`], a cache hit or the build, and the copy to
//!   `build/kernel/`; `progress.rs`: its progress lines;
//! - `check.rs`: a .config against the profile's fragments ([`check_config`]).
//!
//! A build is a list of steps: resolve the source (the pinned tarball, its
//! sha256 verified, or `--kernel-source`) → compute the cache key from every
//! input → on a miss: extract, apply `kernel/patches/`, configure (profile
//! base + fragments), check the config, `make bzImage`, check the final config
//! again, publish the cache entry with one `rename` → copy `bzImage` and
//! `config` to `build/kernel/`.
//!
//! **Invariant:** a directory in the cache named like an entry is complete. It
//! is assembled inside `<entry>.partial/` and renamed into place only after the
//! build and the check passed; an interrupted build leaves only a `.partial`
//! directory, which the next build removes.
use anyhow::Result;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::paths;

mod build;
mod check;
pub mod debian;
mod key;
pub mod pin;
mod progress;
mod source;

pub use build::{KernelArtifacts, ensure_kernel};
pub use check::{
    Config, Problem, Requirement, check_config, check_file, config_from_bytes, guess_profile,
    parse_config, parse_fragment, report, requirements,
};
pub use key::{format_utc, patches};
pub use pin::Pin;
pub use source::{Source, makefile_version, missing_source_message, resolve_source, verify_pinned};

/// The fragment every profile merges.
const K1OS_FRAGMENT: &str = "k1os.config";

/// The environment variable naming the kernel profile of every command that
/// needs a kernel, when `--profile` does not (`paths.rs` reads it).
pub const PROFILE_ENV: &str = "K1OS_KERNEL_PROFILE";

/// The kernel configuration profiles (`kernel/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Profile {
    /// tinyconfig + k1os.config: small, builds in minutes; what the tests boot in QEMU
    Qemu,
    /// x86_64_defconfig + k1os.config + generic.config: boots real PCs (the ISO default)
    Generic,
    /// Debian's signed kernel package (kernel/debian.toml), not built: drivers
    /// as modules, which the initramfs carries (`initramfs --kernel-modules`)
    Debian,
}

impl Profile {
    pub const ALL: [Profile; 3] = [Profile::Qemu, Profile::Generic, Profile::Debian];
    /// The profiles K1OS builds from the pinned source (`debian` is
    /// downloaded).
    pub const BUILT: [Profile; 2] = [Profile::Qemu, Profile::Generic];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Qemu => "qemu",
            Profile::Generic => "generic",
            Profile::Debian => "debian",
        }
    }

    /// Whether the kernel is built from the pinned source (else it is
    /// Debian's package, unpacked: `debian.rs`).
    pub fn is_built(self) -> bool {
        self != Profile::Debian
    }

    /// The `make` target that writes the base config the fragments go over.
    pub fn base_config(self) -> &'static str {
        match self {
            Profile::Qemu => "tinyconfig",
            Profile::Generic => "x86_64_defconfig",
            // Never configured here: Debian's own config comes with it.
            Profile::Debian => "none (Debian's config)",
        }
    }

    /// The fragments merged over the base, in order (later ones win), as file
    /// names in `kernel/`.
    pub fn fragment_names(self) -> &'static [&'static str] {
        match self {
            Profile::Qemu => &[K1OS_FRAGMENT],
            Profile::Generic => &[K1OS_FRAGMENT, "generic.config"],
            Profile::Debian => &[],
        }
    }

    pub fn fragments(self) -> Vec<PathBuf> {
        self.fragment_names()
            .iter()
            .map(|n| kernel_dir().join(n))
            .collect()
    }
}

impl Default for Profile {
    /// `generic`, the one that boots real machines.
    fn default() -> Profile {
        Profile::Generic
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Profile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!("unknown kernel profile `{s}` (known: qemu, generic, debian)")
            })
    }
}

/// `kernel/` in the checkout.
pub fn kernel_dir() -> PathBuf {
    paths::repo_root().join("kernel")
}

/// `kernel/pin.toml`.
pub fn pin_path() -> PathBuf {
    kernel_dir().join("pin.toml")
}

/// `<cache>/kernel/`: one directory per built kernel (see `kernel/README.md`).
pub fn cache_root() -> PathBuf {
    paths::cache_dir().join("kernel")
}

/// `build/kernel/`.
pub fn output_dir() -> PathBuf {
    paths::build_dir().join("kernel")
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::Cmd;
    use std::fs;

    #[test]
    fn profiles_parse_and_print() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        assert!("tiny".parse::<Profile>().is_err());
        assert_eq!(Profile::default(), Profile::Generic);
    }

    /// `dir/name`: a tar.xz holding only `top/Makefile` saying `version`.
    pub(crate) fn tiny_tarball(dir: &Path, name: &str, top: &str, version: &str) -> PathBuf {
        let tree = dir.join(format!("{name}.tree"));
        fs::create_dir_all(tree.join(top)).unwrap();
        let mut parts = version.split('.');
        let makefile = format!(
            "# SPDX-License-Identifier: GPL-2.0\nVERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = {}\n\
             EXTRAVERSION =\nNAME = Test\n",
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap()
        );
        fs::write(tree.join(top).join("Makefile"), makefile).unwrap();
        let tarball = dir.join(name);
        Cmd::new("tar")
            .arg("-cJf")
            .arg(&tarball)
            .arg("-C")
            .arg(&tree)
            .args(["--mtime=@1700000000", "--owner=0", "--group=0", top])
            .run()
            .unwrap();
        tarball
    }
}
