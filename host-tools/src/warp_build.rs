//! The `warp` binary that ships in the image (`/usr/bin/warp`, installed by
//! `packages/warp` from its `generated = "warp"` source): `warp/` of the
//! checkout built in release for `x86_64-unknown-linux-musl`, a static
//! executable, like stage 1 is built by [`crate::initramfs::build_stage1`].
use anyhow::{Context, Result, bail, ensure};
use object::{Object, ObjectSection};

use crate::run::{self, Cmd};
use crate::{doctor, paths, ui};

/// The target warp is built for: musl, so that the binary is static and
/// runs on the image, which has no C library of its own.
pub const WARP_TARGET: &str = "x86_64-unknown-linux-musl";

/// The environment variable the test-only `crash-points` feature reads
/// (`warp/src/crash.rs`); its name in a binary means the feature is on.
const CRASH_POINT_VAR: &[u8] = b"WARP_CRASH_AT";

/// Builds warp (release, [`WARP_TARGET`], default features) and returns the
/// binary's bytes, checked to be a static ELF without crash points.
pub fn build_warp() -> Result<Vec<u8>> {
    check_target_installed()?;
    let step = ui::Step::start(format!("build warp (release, {WARP_TARGET})"));
    Cmd::new("cargo")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            WARP_TARGET,
            "-p",
            "warp",
            "--bin",
            "warp",
        ])
        // No flags from the caller's environment or config: the image's
        // binary depends on the checkout only. (Empty: none at all.)
        .env("CARGO_ENCODED_RUSTFLAGS", "")
        .dir(paths::repo_root())
        .run()
        .context("building warp for the image")?;
    let path = paths::cargo_target_dir()
        .join(WARP_TARGET)
        .join("release")
        .join("warp");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    check_shippable(&bytes).with_context(|| format!("checking {}", path.display()))?;
    step.done(&format!("{} bytes", bytes.len()));
    Ok(bytes)
}

/// The image's warp is static and has no crash points. (A test build with
/// `--features crash-points` in the same target directory would replace
/// the release binary; it must never reach an image.)
pub fn check_shippable(bytes: &[u8]) -> Result<()> {
    check_static_pie(bytes)?;
    if bytes
        .windows(CRASH_POINT_VAR.len())
        .any(|w| w == CRASH_POINT_VAR)
    {
        bail!(
            "this warp was built with the test-only `crash-points` feature (it reads {}); \
             build crash-point binaries in a target directory of their own (`--target-dir`)",
            String::from_utf8_lossy(CRASH_POINT_VAR)
        );
    }
    Ok(())
}

/// A static executable, position-independent or not: no program
/// interpreter and no shared library needed (`DT_NEEDED`). Rust's musl
/// target links static-PIE, which keeps a `.dynamic` section to relocate
/// itself (so [`crate::initramfs::check_static_elf`], for stage 1's non-PIE
/// binary, would refuse it).
pub fn check_static_pie(bytes: &[u8]) -> Result<()> {
    let file = object::File::parse(bytes).context("not an ELF file")?;
    ensure!(
        file.architecture() == object::Architecture::X86_64 && file.is_little_endian(),
        "not an x86_64 executable"
    );
    if let Some(interp) = file.section_by_name(".interp") {
        bail!(
            "has a program interpreter ({}): not static",
            String::from_utf8_lossy(interp.data()?).trim_end_matches('\0')
        );
    }
    if let Some(dynamic) = file.section_by_name(".dynamic") {
        const DT_NEEDED: u64 = 1;
        let data = dynamic.data()?;
        let needs_library = data.chunks_exact(16).any(|entry| {
            let mut tag = [0; 8];
            tag.copy_from_slice(&entry[..8]);
            u64::from_le_bytes(tag) == DT_NEEDED
        });
        ensure!(
            !needs_library,
            "needs shared libraries (DT_NEEDED): not static"
        );
    }
    ensure!(file.entry() != 0, "has no entry point");
    Ok(())
}

/// The musl target must be installed in rustup, as `doctor` checks; when
/// rustup is not there, cargo will say what it lacks.
fn check_target_installed() -> Result<()> {
    if run::which("rustup").is_none() {
        return Ok(());
    }
    let installed = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()?;
    if !installed.lines().any(|l| l.trim() == WARP_TARGET) {
        debug_assert!(doctor::RUST_TARGETS.contains(&WARP_TARGET));
        bail!(
            "the Rust target {WARP_TARGET} (for the static warp binary) is not installed: \
             run `rustup target add {WARP_TARGET}`, or `./k1os doctor --install`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dynamic_executable_is_not_shippable() {
        // The host's own test binary is dynamically linked against glibc.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let err = check_shippable(&me).unwrap_err().to_string();
        assert!(err.contains("not static"), "{err}");
        assert!(check_shippable(b"not an elf").is_err());
    }

    #[test]
    fn doctor_installs_the_target() {
        assert!(doctor::RUST_TARGETS.contains(&WARP_TARGET));
    }
}
