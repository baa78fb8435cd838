//! The initramfs: `init-nostd` built in release, packed with the few entries
//! the kernel and stage 1 need, reproducibly (sorted, owners 0, fixed mtimes),
//! and, when it is built for an image, the image's dm-verity parameters
//! ([`verity_entry`]): then it trusts that image and no other.
use anyhow::{Context, Result, bail, ensure};
use object::{Object, ObjectSection};
use std::io::Write;
use std::path::{Path, PathBuf};

use k1os_contract::contract;

use crate::iso::stamp::{Inputs, Stamp};
use crate::run::Cmd;
use crate::verity::Verity;
use crate::{paths, ui};

pub mod modules;
mod newc;
pub use newc::{Entry, Kind, write_newc};

/// Compression of the archive (the K1OS kernel config has gzip, xz and zstd).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Compresses `data` deterministically (no names or timestamps in headers).
pub fn compress(data: &[u8], compression: Compression) -> Result<Vec<u8>> {
    Ok(match compression {
        Compression::None => data.to_vec(),
        Compression::Gzip => {
            let mut enc = flate2::GzBuilder::new()
                .mtime(0)
                .write(Vec::new(), flate2::Compression::best());
            enc.write_all(data)?;
            enc.finish()?
        }
        Compression::Zstd => zstd::encode_all(data, 19)?,
    })
}

/// `SOURCE_DATE_EPOCH`, else the time of the last commit, else 0.
pub fn source_date_epoch() -> Result<u32> {
    if let Ok(value) = std::env::var("SOURCE_DATE_EPOCH") {
        return value
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH={value:?} is not a number of seconds"));
    }
    let last_commit = Cmd::new("git")
        .args([
            "-C",
            &paths::repo_root().to_string_lossy(),
            "log",
            "-1",
            "--format=%ct",
        ])
        .read()
        .ok()
        .and_then(|s| s.trim().parse().ok());
    Ok(last_commit.unwrap_or(0))
}

/// The target stage 1 is built for. Named explicitly so that [`STAGE1_RUSTFLAGS`]
/// reach only the target's crates, never build scripts or proc-macros.
pub const STAGE1_TARGET: &str = "x86_64-unknown-linux-gnu";
/// Code generation flags for stage 1, separated by 0x1f (`CARGO_ENCODED_RUSTFLAGS`,
/// which overrides `RUSTFLAGS` and config-file flags, so the build never
/// depends on the caller's environment). `relocation-model=static`: stage 1 is
/// a static non-PIE executable, and absolute addressing makes shorter code
/// (about 500 bytes, against a 16 KiB goal). `inline-threshold=25`: opt-level
/// "z" inlines almost nothing (threshold 5), which leaves rustix's small
/// syscall wrappers as functions with their call overhead; 25 measured about
/// 800 bytes smaller (10, 50 and above were larger).
const STAGE1_RUSTFLAGS: &str =
    "-C\x1frelocation-model=static\x1f-C\x1fllvm-args=-inline-threshold=25";

/// Builds `init-nostd` (release) and returns the binary's bytes.
pub fn build_stage1() -> Result<Vec<u8>> {
    let step = ui::Step::start("build init-nostd (release)");
    Cmd::new("cargo")
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            STAGE1_TARGET,
            "-p",
            "init-nostd",
            "--bin",
            "init-nostd",
        ])
        .env("CARGO_ENCODED_RUSTFLAGS", STAGE1_RUSTFLAGS)
        .dir(paths::repo_root())
        .run()?;
    let path = paths::cargo_target_dir()
        .join(STAGE1_TARGET)
        .join("release")
        .join("init-nostd");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    check_static_elf(&bytes).with_context(|| format!("checking {}", path.display()))?;
    step.done(&format!("{} bytes", bytes.len()));
    Ok(bytes)
}

/// Stage 1 must be a static ELF: no program interpreter, no `DT_NEEDED`.
pub fn check_static_elf(bytes: &[u8]) -> Result<()> {
    let file = object::File::parse(bytes).context("not an ELF file")?;
    if let Some(interp) = file.section_by_name(".interp") {
        bail!(
            "has a program interpreter ({}): not static",
            String::from_utf8_lossy(interp.data()?).trim_end_matches('\0')
        );
    }
    if file.section_by_name(".dynamic").is_some() {
        bail!("has a .dynamic section (shared libraries): not static");
    }
    ensure!(file.segments().count() > 0, "has no loadable segments");
    ensure!(file.entry() != 0, "has no entry point");
    Ok(())
}

/// The entries of the K1OS initramfs around the stage-1 binary: `/init`, the
/// `/dev/console` node (so the kernel can open fds 0–2 for `/init` before
/// devtmpfs exists) and the directories stage 1 mounts on.
pub fn stage1_entries(init: Vec<u8>) -> Vec<Entry> {
    vec![
        Entry::dir("dev"),
        Entry::char_dev("dev/console", 0o600, 5, 1),
        Entry::file("init", 0o755, init),
        Entry::dir("newroot"),
        Entry::dir("proc"),
        Entry::dir("run"),
        Entry::dir("sys"),
    ]
}

/// `/verity`: the parameter line of the one image an initramfs trusts
/// (`docs/boot-contract.md`, "The verified image"), read-only.
pub fn verity_entry(verity: &Verity) -> Entry {
    Entry::file(
        contract::INITRAMFS_VERITY.trim_start_matches('/'),
        0o444,
        verity.line().into_bytes(),
    )
}

/// An uncompressed newc archive holding only [`verity_entry`], to be
/// appended to an initramfs (the kernel unpacks concatenated archives in
/// order, later files replacing earlier ones): the tests' way of making the
/// stage 1 under test trust their own image.
pub fn verity_archive(verity: &Verity) -> Result<Vec<u8>> {
    write_newc(vec![verity_entry(verity)], 0)
}

/// `initramfs` with `archive` appended, at the 4-byte boundary the kernel
/// looks for the next archive at (zero padding between archives is skipped).
pub fn concatenate(initramfs: &[u8], archive: &[u8]) -> Vec<u8> {
    let mut out = initramfs.to_vec();
    out.resize(initramfs.len().next_multiple_of(4), 0);
    out.extend_from_slice(archive);
    out
}

/// What `host-tools initramfs` made.
pub struct Initramfs {
    pub init: PathBuf,
    pub image: PathBuf,
    pub init_size: u64,
    pub raw_size: u64,
    pub image_size: u64,
    /// The kernel modules packed (`--kernel-modules`), in load order.
    pub modules: Option<modules::Selection>,
    /// Their uncompressed size.
    pub modules_size: u64,
}

/// Builds `build/init` and `build/initramfs.img` (or under `out`); with
/// `trust`, an initramfs that trusts that image ([`verity_entry`]), else one
/// that trusts none (stage 1 then mounts any image unverified, with a
/// warning); with `kernel_modules` (a `/lib/modules/<release>` tree), one
/// that carries [`modules::STAGE1_MODULES`] and what they need, which stage
/// 1 loads first. A module asked for that the tree lacks is a warning.
pub fn build(
    out: &Path,
    compression: Compression,
    trust: Option<&Verity>,
    kernel_modules: Option<&Path>,
) -> Result<Initramfs> {
    let selection = match kernel_modules {
        Some(tree) => {
            let selection = modules::select(tree, modules::STAGE1_MODULES)?;
            for name in &selection.missing {
                ui::warning(&format!(
                    "kernel module {name}: not in {} (neither a module nor built in): the \
                     initramfs goes without it",
                    tree.display()
                ));
            }
            Some(selection)
        }
        None => None,
    };
    let init = build_stage1()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let init_path = out.join("init");
    write_file(&init_path, &init)?;
    let init_size = init.len() as u64;
    let mut entries = stage1_entries(init);
    entries.extend(trust.map(verity_entry));
    let mut modules_size = 0;
    if let Some(selection) = &selection {
        let (more, size) = modules::entries(&selection.modules)?;
        entries.extend(more);
        modules_size = size;
    }
    let archive = write_newc(entries, source_date_epoch()?)?;
    let raw_size = archive.len() as u64;
    let image_path = out.join("initramfs.img");
    // The same archive compressed the same way gives the same bytes: an
    // image made from it before is kept (zstd -19 of Debian's modules takes
    // seconds).
    let mut inputs = Inputs::new("initramfs");
    inputs.text("archive", &crate::hash::sha256_hex(&archive));
    inputs.text("compression", &format!("{compression:?}"));
    let stamp = Stamp::new(out, "initramfs.img", &inputs);
    if !stamp.is_fresh(&[&image_path]) {
        write_file(&image_path, &compress(&archive, compression)?)?;
        stamp.record(&[&image_path])?;
    }
    let image_size = std::fs::metadata(&image_path)
        .with_context(|| format!("reading {}", image_path.display()))?
        .len();
    Ok(Initramfs {
        init: init_path,
        image: image_path,
        init_size,
        raw_size,
        image_size,
        modules: selection,
        modules_size,
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
pub fn write_file(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compression_is_deterministic() {
        let data = write_newc(stage1_entries(b"\x7fELF".to_vec()), 0).unwrap();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(compress(&data, c).unwrap(), compress(&data, c).unwrap());
        }
    }

    #[test]
    fn dynamic_elf_is_rejected() {
        let sh = std::fs::read("/bin/sh").unwrap();
        let err = check_static_elf(&sh).unwrap_err().to_string();
        assert!(err.contains("interpreter"), "{err}");
    }
}
