//! Where things are: the checkout, `build/`, the cache (`DESIGN.md`, "Build outputs").
use std::path::{Path, PathBuf};

/// The workspace root (the directory holding the top-level `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    // host-tools/ is one level below the root; CARGO_MANIFEST_DIR is fixed at
    // compile time, which is what we want for a tool that builds its own checkout.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host-tools has a parent")
        .to_path_buf()
}

/// `build/` (or `$K1OS_BUILD_DIR`).
pub fn build_dir() -> PathBuf {
    match std::env::var_os("K1OS_BUILD_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("build"),
    }
}

/// `${K1OS_CACHE:-$HOME/.cache/k1os}`: kernel and package builds, shared between clones.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("K1OS_CACHE") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".cache").join("k1os")
}

/// The directory a cargo target of this workspace builds into.
pub fn cargo_target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo_root().join("target"),
    }
}
