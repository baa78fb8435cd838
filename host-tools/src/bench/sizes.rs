//! Sizes of the build outputs, and stage 1's size budget.
//!
//! **The budget** (checked by `host-tools bench --check-budget`, in CI):
//! `build/init` at most [`INIT_BUDGET`] bytes (16 KiB, as tiny-initramfs'
//! README sets for itself), and the initramfs uncompressed, without kernel
//! modules, at most [`INITRAMFS_RAW_BUDGET`] bytes (32 KiB).
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::paths;
use crate::ui::human_size;

/// Most bytes `build/init` may have.
pub const INIT_BUDGET: u64 = 16 * 1024;
/// Most bytes the uncompressed initramfs may have, kernel modules not counted.
pub const INITRAMFS_RAW_BUDGET: u64 = 32 * 1024;
/// Where kernel modules live in an initramfs (not counted by the budget).
pub const MODULES_DIR: &str = "lib/modules/";

/// One output file: its size, or why there is none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Size {
    pub path: PathBuf,
    /// `None`: not built.
    pub bytes: Option<u64>,
}

impl Size {
    /// The size of `path`, or "not built" when it does not exist.
    pub fn of(path: &Path) -> Size {
        Size {
            path: path.to_path_buf(),
            bytes: std::fs::metadata(path)
                .ok()
                .filter(|m| m.is_file())
                .map(|m| m.len()),
        }
    }

    pub fn known(path: &Path, bytes: u64) -> Size {
        Size {
            path: path.to_path_buf(),
            bytes: Some(bytes),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "path": display_path(&self.path),
            "bytes": self.bytes,
            "status": if self.bytes.is_some() { "built" } else { "not built" },
        })
    }

    /// `41536 B (40.6 KiB)` or `not built`.
    pub fn display(&self) -> String {
        match self.bytes {
            Some(b) => format!("{b} B ({})", human_size(b)),
            None => "not built".into(),
        }
    }
}

/// A path relative to the checkout when it is inside it (shorter reports).
pub fn display_path(path: &Path) -> String {
    let root = paths::repo_root();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// An initramfs image decompressed (gzip, zstd or none, by its magic).
pub fn decompress(image: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if image.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(image)
            .read_to_end(&mut out)
            .context("gunzip")?;
    } else if image.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        out = zstd::decode_all(image).context("zstd -d")?;
    } else if image.starts_with(b"070701") {
        out = image.to_vec();
    } else {
        bail!("neither gzip, zstd nor a newc archive");
    }
    Ok(out)
}

/// Bytes of a newc archive without the entries under [`MODULES_DIR`]
/// (header, name and data of each, with their padding, as the archive stores them).
pub fn newc_size_without_modules(archive: &[u8]) -> Result<u64> {
    let mut modules: u64 = 0;
    let mut rest = archive;
    loop {
        let reader = cpio::newc::Reader::new(rest).context("reading the newc archive")?;
        let entry = reader.entry();
        if entry.is_trailer() {
            break;
        }
        let name = entry.name().to_string();
        let name_len = name.len() as u64 + 1;
        let file_size = u64::from(entry.file_size());
        let next = reader.finish().context("reading the newc archive")?;
        let entry_bytes = (rest.len() - next.len()) as u64;
        debug_assert!(entry_bytes >= 110 + name_len + file_size);
        if name.trim_start_matches("./").starts_with(MODULES_DIR) {
            modules += entry_bytes;
        }
        rest = next;
    }
    Ok(archive.len() as u64 - modules)
}

/// The two budget figures.
#[derive(Clone, Debug)]
pub struct Budget {
    pub init: Size,
    /// The uncompressed initramfs without modules.
    pub initramfs_raw: Size,
}

impl Budget {
    /// Reads `build/init` and `build/initramfs.img` under `build`.
    pub fn measure(build: &Path) -> Result<Budget> {
        let init = Size::of(&build.join("init"));
        let image_path = build.join("initramfs.img");
        let initramfs_raw = match std::fs::read(&image_path) {
            Ok(image) => {
                let raw = decompress(&image)
                    .with_context(|| format!("decompressing {}", image_path.display()))?;
                let bytes = newc_size_without_modules(&raw)
                    .with_context(|| format!("reading {}", image_path.display()))?;
                Size::known(&image_path, bytes)
            }
            Err(_) => Size::of(&image_path),
        };
        Ok(Budget {
            init,
            initramfs_raw,
        })
    }

    pub fn init_ok(&self) -> bool {
        self.init.bytes.is_some_and(|b| b <= INIT_BUDGET)
    }

    pub fn initramfs_ok(&self) -> bool {
        self.initramfs_raw
            .bytes
            .is_some_and(|b| b <= INITRAMFS_RAW_BUDGET)
    }

    pub fn ok(&self) -> bool {
        self.init_ok() && self.initramfs_ok()
    }

    /// Both figures against their limits, one line each.
    pub fn lines(&self) -> [String; 2] {
        let line = |what: &str, size: &Size, limit: u64, ok: bool| {
            format!(
                "{what} {}: {} of {limit} B ({}) — {}",
                display_path(&size.path),
                size.display(),
                human_size(limit),
                match (size.bytes, ok) {
                    (None, _) => "MISSING".to_string(),
                    (Some(_), true) => "ok".to_string(),
                    (Some(b), false) => format!("OVER by {} B", b - limit),
                }
            )
        };
        [
            line("stage 1", &self.init, INIT_BUDGET, self.init_ok()),
            line(
                "initramfs (uncompressed, without modules)",
                &self.initramfs_raw,
                INITRAMFS_RAW_BUDGET,
                self.initramfs_ok(),
            ),
        ]
    }

    pub fn json(&self) -> Value {
        json!({
            "init_bytes": self.init.bytes,
            "init_limit": INIT_BUDGET,
            "init_ok": self.init_ok(),
            "initramfs_raw_bytes": self.initramfs_raw.bytes,
            "initramfs_raw_limit": INITRAMFS_RAW_BUDGET,
            "initramfs_raw_ok": self.initramfs_ok(),
            "ok": self.ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::{Compression, Entry, compress, write_newc};

    #[test]
    fn modules_are_not_counted() {
        let base = vec![Entry::file("init", 0o755, vec![1; 1000]), Entry::dir("dev")];
        let without = write_newc(base.clone(), 0).unwrap();
        let mut with = base;
        with.push(Entry::dir("lib"));
        with.push(Entry::dir("lib/modules"));
        with.push(Entry::file("lib/modules/x.ko", 0o644, vec![2; 5000]));
        let with = write_newc(with, 0).unwrap();
        let counted = newc_size_without_modules(&with).unwrap();
        // `lib` and `lib/modules` themselves count (they are not under lib/modules/).
        let trailer = write_newc(vec![], 0).unwrap().len() as u64;
        let dirs = write_newc(vec![Entry::dir("lib"), Entry::dir("lib/modules")], 0)
            .unwrap()
            .len() as u64
            - trailer;
        assert_eq!(counted, without.len() as u64 + dirs);
        assert_eq!(
            newc_size_without_modules(&without).unwrap(),
            without.len() as u64
        );
    }

    #[test]
    fn decompresses_by_magic() {
        let raw = write_newc(vec![Entry::dir("dev")], 0).unwrap();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(decompress(&compress(&raw, c).unwrap()).unwrap(), raw);
        }
        assert!(decompress(b"garbage").is_err());
    }

    #[test]
    fn budget_reports_both_figures() {
        let dir = tempfile::tempdir().unwrap();
        let b = Budget::measure(dir.path()).unwrap();
        assert!(!b.ok());
        let [a, c] = b.lines();
        assert!(a.contains("not built") && a.contains("MISSING"), "{a}");
        assert!(c.contains("not built"), "{c}");
        std::fs::write(dir.path().join("init"), vec![0; 20_000]).unwrap();
        let raw = write_newc(vec![Entry::file("init", 0o755, vec![0; 20_000])], 0).unwrap();
        std::fs::write(
            dir.path().join("initramfs.img"),
            compress(&raw, Compression::Gzip).unwrap(),
        )
        .unwrap();
        let b = Budget::measure(dir.path()).unwrap();
        assert!(!b.init_ok() && b.initramfs_ok());
        assert!(b.lines()[0].contains("OVER by 3616 B"), "{}", b.lines()[0]);
        assert_eq!(b.initramfs_raw.bytes, Some(raw.len() as u64));
    }
}
