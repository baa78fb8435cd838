//! Sizes of the build outputs, and stage 1's size budget.
//!
//! **The budget** (checked by `host-tools bench --check-budget`, in CI right
//! after the initramfs is built): `build/init` at most [`INIT_BUDGET`] bytes
//! and the gzip initramfs (`build/initramfs.img`) at most
//! [`INITRAMFS_GZIP_BUDGET`] bytes. These are a ratchet, not the goal: the goal
//! for `build/init` stays [`INIT_GOAL`] (16 KiB, as tiny-initramfs' README sets
//! for itself).
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::initramfs::{self, Compression};
use crate::paths;
use crate::ui::{group_digits, human_size};

// The size budget, in one place. These limits are a ratchet: lower them
// whenever stage 1 shrinks (keep a few hundred bytes of headroom), so that what
// was won cannot silently be lost again. Raising one needs a reason in the
// commit message. The goal for stage 1 stays INIT_GOAL.

/// Most bytes `build/init` (stage 1, stripped) may have: 25¼ KiB + 2,056 B.
/// Raised from 24 KiB for dm-verity (the root image mounted through a
/// verity device: the trusted line read from the initramfs, three
/// device-mapper ioctls, the mismatch message, `k1os.verity`): +1,800
/// bytes, 23,776 → 25,576, with the usual few hundred bytes of headroom.
/// Raised by exactly what loading the initramfs's kernel modules added
/// (the list, `finit_module`, each module's parameters from the command
/// line, the warning and the summary line): 25,768 → 27,824 bytes.
pub const INIT_BUDGET: u64 = 25 * 1024 + 256 + 2_056;
/// Most bytes the gzip initramfs (`build/initramfs.img`, without kernel
/// modules) may have: 16 KiB + 1,299 B, raised by what the module loading
/// added to it (15,842 → 17,141 bytes).
pub const INITRAMFS_GZIP_BUDGET: u64 = 16 * 1024 + 1_299;
/// Where `build/init` is headed: 16 KiB. Printed, not enforced.
pub const INIT_GOAL: u64 = 16 * 1024;
// Lowered as stage 1 shrinks, but never below the goal.
const _: () = assert!(INIT_GOAL <= INIT_BUDGET);
/// Where the limits live, for messages that tell how to raise them.
const BUDGET_SOURCE: &str = "host-tools/src/bench/sizes.rs";

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

/// The first bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The first bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// An initramfs image decompressed (gzip, zstd or none, by its magic).
pub fn decompress(image: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    if image.starts_with(&GZIP_MAGIC) {
        flate2::read::MultiGzDecoder::new(image)
            .read_to_end(&mut out)
            .context("gunzip")?;
    } else if image.starts_with(&ZSTD_MAGIC) {
        out = zstd::decode_all(image).context("zstd -d")?;
    } else if image.starts_with(b"070701") {
        out = image.to_vec();
    } else {
        bail!("neither gzip, zstd nor a newc archive");
    }
    Ok(out)
}

/// A figure against its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The file is not there.
    Missing,
    /// At most the limit, with this many bytes left.
    Within { left: u64 },
    /// Over the limit by this many bytes.
    Over { by: u64 },
}

impl Verdict {
    /// `bytes` (`None`: not built) against `limit`; exactly the limit is within.
    pub fn of(bytes: Option<u64>, limit: u64) -> Verdict {
        match bytes {
            None => Verdict::Missing,
            Some(b) if b <= limit => Verdict::Within { left: limit - b },
            Some(b) => Verdict::Over { by: b - limit },
        }
    }

    pub fn ok(self) -> bool {
        matches!(self, Verdict::Within { .. })
    }
}

/// The two budget figures: pure data, so [`Budget::check`] is a pure function
/// of the sizes and tests can build one from any numbers.
#[derive(Clone, Debug)]
pub struct Budget {
    /// `build/init`.
    pub init: Size,
    /// The gzip initramfs: `build/initramfs.img`'s own size when it is gzip (as
    /// `host-tools initramfs` builds it by default), else the size its archive
    /// has when gzipped as that command would.
    pub initramfs_gzip: Size,
    /// `Some("zstd")`/`Some("uncompressed")`: the image was not gzip and the
    /// figure was recompressed from it.
    pub recompressed_from: Option<&'static str>,
}

impl Budget {
    /// Reads `init` and `initramfs.img` under `build`.
    pub fn measure(build: &Path) -> Result<Budget> {
        let init = Size::of(&build.join("init"));
        let image_path = build.join("initramfs.img");
        let (initramfs_gzip, recompressed_from) = match std::fs::read(&image_path) {
            Ok(image) if image.starts_with(&GZIP_MAGIC) => {
                (Size::known(&image_path, image.len() as u64), None)
            }
            Ok(image) => {
                let from = if image.starts_with(&ZSTD_MAGIC) {
                    "zstd"
                } else {
                    "uncompressed"
                };
                let gzip = decompress(&image)
                    .and_then(|raw| initramfs::compress(&raw, Compression::Gzip))
                    .with_context(|| format!("gzipping {} to measure it", image_path.display()))?;
                (Size::known(&image_path, gzip.len() as u64), Some(from))
            }
            Err(_) => (Size::of(&image_path), None),
        };
        Ok(Budget {
            init,
            initramfs_gzip,
            recompressed_from,
        })
    }

    pub fn init_verdict(&self) -> Verdict {
        Verdict::of(self.init.bytes, INIT_BUDGET)
    }

    pub fn initramfs_verdict(&self) -> Verdict {
        Verdict::of(self.initramfs_gzip.bytes, INITRAMFS_GZIP_BUDGET)
    }

    pub fn ok(&self) -> bool {
        self.init_verdict().ok() && self.initramfs_verdict().ok()
    }

    /// `build/initramfs.img (gzip)`, or with the recompression said.
    fn initramfs_name(&self) -> String {
        let path = display_path(&self.initramfs_gzip.path);
        match self.recompressed_from {
            None => format!("{path} (gzip)"),
            Some(from) => format!("{path} ({from}; gzipped to measure)"),
        }
    }

    /// The figures with their limits and headroom, and the goal:
    ///
    /// ```text
    /// build/init 23,232 B of 24,576 B budget (1,344 B left)
    /// build/initramfs.img (gzip) 14,271 B of 16,384 B budget (2,113 B left)
    /// goal for build/init: 16,384 B (6,848 B to go)
    /// ```
    pub fn lines(&self) -> Vec<String> {
        let line = |name: String, bytes: Option<u64>, limit: u64| {
            let limit_s = group_digits(limit);
            match (bytes, Verdict::of(bytes, limit)) {
                (Some(b), Verdict::Within { left }) => format!(
                    "{name} {} B of {limit_s} B budget ({} B left)",
                    group_digits(b),
                    group_digits(left)
                ),
                (Some(b), Verdict::Over { by }) => format!(
                    "{name} {} B of {limit_s} B budget (OVER by {} B)",
                    group_digits(b),
                    group_digits(by)
                ),
                _ => format!("{name} not built ({limit_s} B budget)"),
            }
        };
        let init_name = display_path(&self.init.path);
        let goal = match self.init.bytes {
            Some(b) if b > INIT_GOAL => format!("{} B to go", group_digits(b - INIT_GOAL)),
            Some(_) => "reached: lower the budget to it".to_string(),
            None => "not built".to_string(),
        };
        vec![
            line(init_name.clone(), self.init.bytes, INIT_BUDGET),
            line(
                self.initramfs_name(),
                self.initramfs_gzip.bytes,
                INITRAMFS_GZIP_BUDGET,
            ),
            format!(
                "goal for {init_name}: {} B ({goal})",
                group_digits(INIT_GOAL)
            ),
        ]
    }

    /// Fails when a figure is over its limit or missing; the error names each
    /// file, its size and its limit, and says how to proceed.
    pub fn check(&self) -> Result<()> {
        let mut problems = Vec::new();
        let figures = [
            (
                display_path(&self.init.path),
                self.init.bytes,
                INIT_BUDGET,
                "INIT_BUDGET",
                "stage 1",
            ),
            (
                self.initramfs_name(),
                self.initramfs_gzip.bytes,
                INITRAMFS_GZIP_BUDGET,
                "INITRAMFS_GZIP_BUDGET",
                "the initramfs",
            ),
        ];
        for (name, bytes, limit, constant, what) in figures {
            match Verdict::of(bytes, limit) {
                Verdict::Within { .. } => {}
                Verdict::Missing => problems.push(format!(
                    "{name} is not built: run `./k1os initramfs` first"
                )),
                Verdict::Over { by } => problems.push(format!(
                    "{name} is {} B, {} B over its budget of {} B: make {what} smaller \
                     (ARCHITECTURE.md, \"Known gaps\", lists the next steps), or, if the \
                     growth is worth it, raise {constant} in {BUDGET_SOURCE} and give the reason in the \
                     commit message",
                    group_digits(bytes.unwrap_or(0)),
                    group_digits(by),
                    group_digits(limit)
                )),
            }
        }
        match problems.len() {
            0 => Ok(()),
            1 => bail!("stage 1 size budget: {}", problems[0]),
            _ => bail!("stage 1 size budget:\n  - {}", problems.join("\n  - ")),
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "init_bytes": self.init.bytes,
            "init_limit": INIT_BUDGET,
            "init_goal": INIT_GOAL,
            "init_ok": self.init_verdict().ok(),
            "initramfs_gzip_bytes": self.initramfs_gzip.bytes,
            "initramfs_gzip_limit": INITRAMFS_GZIP_BUDGET,
            "initramfs_gzip_recompressed_from": self.recompressed_from,
            "initramfs_gzip_ok": self.initramfs_verdict().ok(),
            "ok": self.ok(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::initramfs::{Compression, Entry, compress, write_newc};

    #[test]
    fn decompresses_by_magic() {
        let raw = write_newc(vec![Entry::dir("dev")], 0).unwrap();
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(decompress(&compress(&raw, c).unwrap()).unwrap(), raw);
        }
        assert!(decompress(b"garbage").is_err());
    }

    #[test]
    fn exactly_the_limit_is_within() {
        assert_eq!(Verdict::of(Some(10), 10), Verdict::Within { left: 0 });
        assert_eq!(Verdict::of(Some(11), 10), Verdict::Over { by: 1 });
        assert_eq!(Verdict::of(Some(3), 10), Verdict::Within { left: 7 });
        assert_eq!(Verdict::of(None, 10), Verdict::Missing);
        assert!(!Verdict::Missing.ok());
    }

    fn budget(init: Option<u64>, gzip: Option<u64>) -> Budget {
        Budget {
            init: Size {
                path: PathBuf::from("build/init"),
                bytes: init,
            },
            initramfs_gzip: Size {
                path: PathBuf::from("build/initramfs.img"),
                bytes: gzip,
            },
            recompressed_from: None,
        }
    }

    #[test]
    fn lines_show_figures_headroom_and_goal() {
        let (init, gzip) = (INIT_BUDGET - 344, INITRAMFS_GZIP_BUDGET - 2_113);
        let b = budget(Some(init), Some(gzip));
        assert!(b.check().is_ok());
        let lines = b.lines();
        assert_eq!(
            lines[..2],
            [
                format!(
                    "build/init {} B of {} B budget (344 B left)",
                    group_digits(init),
                    group_digits(INIT_BUDGET)
                ),
                format!(
                    "build/initramfs.img (gzip) {} B of {} B budget (2,113 B left)",
                    group_digits(gzip),
                    group_digits(INITRAMFS_GZIP_BUDGET)
                ),
            ]
        );
        assert_eq!(
            budget(Some(23_232), None).lines()[2],
            "goal for build/init: 16,384 B (6,848 B to go)"
        );
        let over = budget(Some(INIT_BUDGET + 1), Some(INITRAMFS_GZIP_BUDGET + 2));
        let lines = over.lines();
        assert!(lines[0].ends_with("(OVER by 1 B)"), "{lines:?}");
        assert!(lines[1].ends_with("(OVER by 2 B)"), "{lines:?}");
        let none = budget(None, None);
        assert!(none.lines()[0].contains("not built"), "{:?}", none.lines());
        assert!(budget(Some(INIT_GOAL), Some(1)).lines()[2].contains("reached"));
    }

    #[test]
    fn check_names_file_size_limit_and_the_way_on() {
        let err = budget(Some(INIT_BUDGET + 1), Some(100))
            .check()
            .unwrap_err()
            .to_string();
        for part in [
            format!(
                "build/init is {} B, 1 B over its budget of {} B",
                group_digits(INIT_BUDGET + 1),
                group_digits(INIT_BUDGET)
            ),
            "make stage 1 smaller".into(),
            "INIT_BUDGET".into(),
            BUDGET_SOURCE.into(),
            "commit message".into(),
        ] {
            assert!(err.contains(&part), "{part:?} not in {err:?}");
        }
        let err = budget(Some(1), Some(INITRAMFS_GZIP_BUDGET + 1))
            .check()
            .unwrap_err()
            .to_string();
        assert!(err.contains("INITRAMFS_GZIP_BUDGET"), "{err}");
        let err = budget(None, None).check().unwrap_err().to_string();
        assert!(err.contains("not built") && err.contains("./k1os initramfs"));
        assert!(
            budget(Some(INIT_BUDGET), Some(INITRAMFS_GZIP_BUDGET))
                .check()
                .is_ok()
        );
    }

    #[test]
    fn measures_gzip_as_is_and_other_images_regzipped() {
        let dir = tempfile::tempdir().unwrap();
        let b = Budget::measure(dir.path()).unwrap();
        assert_eq!((b.init.bytes, b.initramfs_gzip.bytes), (None, None));
        std::fs::write(dir.path().join("init"), vec![7; 20_000]).unwrap();
        let raw = write_newc(vec![Entry::file("init", 0o755, vec![7; 20_000])], 0).unwrap();
        let gzip = compress(&raw, Compression::Gzip).unwrap();
        let image = dir.path().join("initramfs.img");
        std::fs::write(&image, &gzip).unwrap();
        let b = Budget::measure(dir.path()).unwrap();
        assert_eq!(b.init.bytes, Some(20_000));
        assert_eq!(b.initramfs_gzip.bytes, Some(gzip.len() as u64));
        assert_eq!(b.recompressed_from, None);
        for (c, name) in [
            (Compression::Zstd, "zstd"),
            (Compression::None, "uncompressed"),
        ] {
            std::fs::write(&image, compress(&raw, c).unwrap()).unwrap();
            let b = Budget::measure(dir.path()).unwrap();
            assert_eq!(b.initramfs_gzip.bytes, Some(gzip.len() as u64));
            assert_eq!(b.recompressed_from, Some(name));
            assert!(b.lines()[1].contains(name), "{:?}", b.lines());
        }
    }
}
