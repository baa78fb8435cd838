//! Where things are: the checkout, `build/` (everything a build makes), the
//! cache (expensive work kept across checkouts).
//!
//! **The checkout is the one you stand in**, found like cargo finds its
//! workspace: the nearest directory at or above the working directory whose
//! `Cargo.toml` is a `[workspace]` with `host-tools/` and `init-nostd/` beside
//! it — or `$K1OS_ROOT` when that is set. Never the directory host-tools was
//! compiled in: a copied or moved checkout acts on itself, and outside any
//! checkout every command refuses (`main` calls [`checkout`] first).
//!
//! Relative values of `K1OS_BUILD_DIR`, `K1OS_CACHE` and `CARGO_TARGET_DIR`
//! are relative to the checkout, like the defaults (`<checkout>/build`, …);
//! an empty variable counts as unset.
use anyhow::{Result, anyhow, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::kernel::{self, Profile};

/// Names the checkout explicitly, instead of the working directory.
pub const ROOT_ENV: &str = "K1OS_ROOT";
/// The build directory, instead of `<checkout>/build`.
pub const BUILD_DIR_ENV: &str = "K1OS_BUILD_DIR";
/// The kernel and package cache, instead of `~/.cache/k1os`.
pub const CACHE_ENV: &str = "K1OS_CACHE";
/// The secret key `repo build` signs with, instead of the build key.
pub const REPO_KEY_ENV: &str = "K1OS_REPO_KEY";

/// The environment variables host-tools reads, with what they do: the
/// "Environment:" section of `--help` (and the README's table).
pub const ENVIRONMENT: &[(&str, &str)] = &[
    (
        kernel::PROFILE_ENV,
        "kernel profile without --profile: qemu, generic or debian [default: generic]",
    ),
    (
        CACHE_ENV,
        "kernel and package cache, shared by checkouts [default: ~/.cache/k1os]",
    ),
    (
        BUILD_DIR_ENV,
        "the build directory, `build/` in help texts [default: <checkout>/build]",
    ),
    (
        REPO_KEY_ENV,
        "secret key (NAME.sec) `repo build` signs with, whose public half the image \
         trusts [default: $K1OS_CACHE/repo-key/k1os-build.sec, made on first use]",
    ),
    (
        "K1OS_ACCEL",
        "QEMU accelerator: auto, kvm or tcg [default: auto for `qemu`, else tcg]",
    ),
    (
        "SOURCE_DATE_EPOCH",
        "time of every built file, in seconds [default: the last commit's]",
    ),
    (
        "CARGO_TARGET_DIR",
        "where cargo builds [default: <checkout>/target]",
    ),
    (
        ROOT_ENV,
        "the checkout to act on [default: the one holding the current directory]",
    ),
];

/// The value of an environment variable; `None` when unset or empty.
pub fn env_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

static CHECKOUT: OnceLock<Result<PathBuf, String>> = OnceLock::new();

/// The checkout host-tools acts on (see the module's documentation): found
/// once, from `$K1OS_ROOT` or the working directory. The error says where
/// the search started and what to do.
pub fn checkout() -> Result<PathBuf> {
    CHECKOUT
        .get_or_init(|| find_checkout().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn find_checkout() -> Result<PathBuf> {
    let cwd = std::env::current_dir()
        .map_err(|e| anyhow!("cannot tell the current directory ({e}): cd into a K1OS checkout"))?;
    if let Some(root) = env_var(ROOT_ENV) {
        let root = cwd.join(root);
        if !is_checkout(&root) {
            bail!(
                "{ROOT_ENV}={} is not a K1OS checkout (no Cargo.toml with a [workspace] of \
                 host-tools and init-nostd there): point it at one, or unset it",
                root.display()
            );
        }
        return Ok(root);
    }
    find_checkout_from(&cwd).ok_or_else(|| {
        anyhow!(
            "{} is not inside a K1OS checkout (no Cargo.toml with a [workspace] of host-tools \
             and init-nostd in it or above it): cd into a K1OS checkout, or set {ROOT_ENV} to one",
            cwd.display()
        )
    })
}

/// The nearest checkout at or above `dir`.
pub fn find_checkout_from(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| is_checkout(d))
        .map(Path::to_path_buf)
}

/// Whether `dir` is the top of a K1OS checkout: its `Cargo.toml` declares a
/// workspace with `host-tools` in it, and `host-tools/` and `init-nostd/` are
/// packages beside it.
pub fn is_checkout(dir: &Path) -> bool {
    let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return false;
    };
    manifest.lines().any(|l| l.trim() == "[workspace]")
        && manifest.contains("\"host-tools\"")
        && dir.join("host-tools/Cargo.toml").is_file()
        && dir.join("init-nostd/Cargo.toml").is_file()
}

/// The workspace root (the directory holding the top-level `Cargo.toml`):
/// [`checkout`]. `main` checks it first, so a command outside a checkout
/// stops before this is reached.
///
/// # Panics
///
/// Outside a checkout, when [`checkout`] was not checked first.
pub fn repo_root() -> PathBuf {
    checkout().unwrap_or_else(|e| panic!("{e:#}"))
}

/// `$name` as a directory, relative values taken from the checkout.
fn dir_from_env(name: &str) -> Option<PathBuf> {
    env_var(name).map(|dir| repo_root().join(dir))
}

/// `build/`: `$K1OS_BUILD_DIR` or `<checkout>/build`.
pub fn build_dir() -> PathBuf {
    dir_from_env(BUILD_DIR_ENV).unwrap_or_else(|| repo_root().join("build"))
}

/// `${K1OS_CACHE:-$HOME/.cache/k1os}`: kernel and package builds, shared between clones.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = dir_from_env(CACHE_ENV) {
        return dir;
    }
    let home = env_var("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache").join("k1os")
}

/// The directory a cargo target of this workspace builds into
/// (`$CARGO_TARGET_DIR`, or `<checkout>/target`).
pub fn cargo_target_dir() -> PathBuf {
    dir_from_env("CARGO_TARGET_DIR").unwrap_or_else(|| repo_root().join("target"))
}

/// `$K1OS_KERNEL_PROFILE`: `None` when unset or empty; any other value that is
/// not a profile is an error naming the variable (`K1OS_KERNEL_PROFILE=bogus:
/// expected qemu, generic or debian`). Case does not matter.
///
/// For commands with a `--profile` flag: the flag wins, and the variable is
/// only read (and only checked) when the flag is absent.
pub fn kernel_profile_from_env() -> Result<Option<Profile>> {
    let Some(value) = std::env::var_os(kernel::PROFILE_ENV) else {
        return Ok(None);
    };
    parse_profile_var(&value)
}

/// The value of `K1OS_KERNEL_PROFILE`, parsed (see [`kernel_profile_from_env`]).
pub fn parse_profile_var(value: &std::ffi::OsStr) -> Result<Option<Profile>> {
    let text = value.to_string_lossy();
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    match Profile::ALL
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(text))
    {
        Some(p) => Ok(Some(p)),
        None => bail!("{}={text}: expected {}", kernel::PROFILE_ENV, {
            let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
            let (last, rest) = names.split_last().expect("profiles");
            format!("{} or {last}", rest.join(", "))
        }),
    }
}

/// `--profile`, else `$K1OS_KERNEL_PROFILE`, else `generic`.
pub fn kernel_profile(flag: Option<Profile>) -> Result<Profile> {
    match flag {
        Some(p) => Ok(p),
        None => Ok(kernel_profile_from_env()?.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_variable() {
        let parse = |s: &str| parse_profile_var(std::ffi::OsStr::new(s));
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(parse("qemu").unwrap(), Some(Profile::Qemu));
        assert_eq!(parse("QEMU").unwrap(), Some(Profile::Qemu));
        assert_eq!(parse("generic").unwrap(), Some(Profile::Generic));
        assert_eq!(parse("debian").unwrap(), Some(Profile::Debian));
        assert_eq!(
            parse("bogus").unwrap_err().to_string(),
            "K1OS_KERNEL_PROFILE=bogus: expected qemu, generic or debian"
        );
    }

    #[test]
    fn checkout_markers() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = here.parent().unwrap();
        assert!(is_checkout(root));
        assert!(!is_checkout(here));
        assert_eq!(find_checkout_from(&here.join("src")).as_deref(), Some(root));
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_checkout_from(dir.path()), None);
    }
}
