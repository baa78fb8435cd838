//! The stage 1s the bench boots side by side, each packed into a gzip
//! initramfs the same way:
//!
//! - **`init-nostd`**: K1OS's stage 1, `build/initramfs.img` as built (it
//!   trusts no image: the root image is mounted unverified);
//! - **`init-nostd-verity`**: the same initramfs told to trust the stage-2
//!   root the bench boots (an archive holding its `/verity` appended): the
//!   image mounted through dm-verity, as the ISO's stage 1 does;
//! - **the reference**: the classic busybox-script stage 1,
//!   `ci/bench/reference-init.sh` with a static busybox
//!   ([`testimg::reference_initramfs`]) — a benchmark fixture;
//! - **the floor**: `bench-floor/`, only the kernel's part of stage 1 with
//!   hard-coded devices (one binary per mode) — a benchmark fixture.
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::initramfs::{self, Compression};
use crate::run::Cmd;
use crate::verity::Verity;
use crate::{paths, testimg, ui};

/// A stage 1 under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variant {
    Nostd,
    Verity,
    Reference,
    Floor,
}

impl Variant {
    /// In the order reports list them.
    pub const ALL: [Variant; 4] = [
        Variant::Nostd,
        Variant::Verity,
        Variant::Reference,
        Variant::Floor,
    ];

    /// The name in `results.json` and the report.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Nostd => "init-nostd",
            Variant::Verity => "init-nostd-verity",
            Variant::Reference => "reference",
            Variant::Floor => "floor",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Variant::Nostd => "K1OS stage 1 (build/initramfs.img), trusting no image: unverified",
            Variant::Verity => {
                "K1OS stage 1 (build/initramfs.img) trusting the stage-2 root: mounted through dm-verity"
            }
            Variant::Reference => {
                "classic busybox-script stage 1 (ci/bench/reference-init.sh + static busybox)"
            }
            Variant::Floor => {
                "the kernel's part only: same mounts, loop, overlay, moves, exec; devices hard-coded (bench-floor/)"
            }
        }
    }
}

/// One packed initramfs.
#[derive(Clone, Debug)]
pub struct Packed {
    /// The gzip image that boots.
    pub image: PathBuf,
    /// Its size, and the archive's uncompressed.
    pub compressed_bytes: u64,
    pub raw_bytes: u64,
    /// The `/init` binary or script inside.
    pub init_bytes: u64,
}

/// The initramfs images of the variants (the floor has one per mode).
#[derive(Clone, Debug)]
pub struct Fixtures {
    pub nostd: Packed,
    pub verity: Packed,
    pub reference: Packed,
    pub floor_ram: Packed,
    pub floor_persist: Packed,
}

impl Fixtures {
    /// The image `variant` boots in RAM (`persistent == false`) or persistent mode.
    pub fn initrd(&self, variant: Variant, persistent: bool) -> &Packed {
        match variant {
            Variant::Nostd => &self.nostd,
            Variant::Verity => &self.verity,
            Variant::Reference => &self.reference,
            Variant::Floor if persistent => &self.floor_persist,
            Variant::Floor => &self.floor_ram,
        }
    }
}

/// Packs the reference and the floor into `dir`, and copies init-nostd's
/// `initramfs` (with its `/init` binary `init`) there, once as it is and
/// once trusting `root` (the stage-2 root's verity parameters), so the run
/// boots one fixed set of files even if `build/` changes meanwhile.
pub fn prepare(dir: &Path, init: &Path, initramfs: &Path, root: &Verity) -> Result<Fixtures> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let image = dir.join("init-nostd.img");
    std::fs::copy(initramfs, &image)
        .with_context(|| format!("copying {} to {}", initramfs.display(), image.display()))?;
    let data = std::fs::read(&image).with_context(|| format!("reading {}", image.display()))?;
    let raw = super::sizes::decompress(&data)
        .with_context(|| format!("decompressing {}", image.display()))?;
    let init_bytes = std::fs::metadata(init)
        .with_context(|| format!("reading {}", init.display()))?
        .len();
    let nostd = Packed {
        image,
        compressed_bytes: data.len() as u64,
        raw_bytes: raw.len() as u64,
        init_bytes,
    };
    let archive = initramfs::verity_archive(root)?;
    let trusting = initramfs::concatenate(&data, &archive);
    let verity = Packed {
        image: dir.join("init-nostd-verity.img"),
        compressed_bytes: trusting.len() as u64,
        raw_bytes: (raw.len() + archive.len()) as u64,
        init_bytes,
    };
    initramfs::write_file(&verity.image, &trusting)?;

    let step = ui::Step::start("bench: pack the busybox reference (ci/bench/reference-init.sh)");
    let raw_path = dir.join("reference.cpio");
    testimg::reference_initramfs(&raw_path)?;
    let raw =
        std::fs::read(&raw_path).with_context(|| format!("reading {}", raw_path.display()))?;
    let script_bytes = std::fs::metadata(testimg::reference_init_script())?.len();
    let reference = write_gzip(&dir.join("reference.img"), &raw, script_bytes)?;
    step.done(&format!("{} B gzip", reference.compressed_bytes));

    let step = ui::Step::start("bench: build the floor (bench-floor, release)");
    let mut floors = Vec::new();
    for mode in ["ram", "persist"] {
        let bin = build_floor(mode)?;
        let archive = initramfs::write_newc(
            initramfs::stage1_entries(bin.clone()),
            initramfs::source_date_epoch()?,
        )?;
        floors.push(write_gzip(
            &dir.join(format!("floor-{mode}.img")),
            &archive,
            bin.len() as u64,
        )?);
    }
    let floor_persist = floors.pop().expect("two floors");
    let floor_ram = floors.pop().expect("two floors");
    step.done(&format!(
        "{} / {} B binaries",
        floor_ram.init_bytes, floor_persist.init_bytes
    ));
    Ok(Fixtures {
        nostd,
        verity,
        reference,
        floor_ram,
        floor_persist,
    })
}

fn write_gzip(path: &Path, raw: &[u8], init_bytes: u64) -> Result<Packed> {
    let image = initramfs::compress(raw, Compression::Gzip)?;
    initramfs::write_file(path, &image)?;
    Ok(Packed {
        image: path.to_path_buf(),
        compressed_bytes: image.len() as u64,
        raw_bytes: raw.len() as u64,
        init_bytes,
    })
}

/// The target and code generation flags of the floor: stage 1's target and
/// relocation model (`initramfs::STAGE1_TARGET`, `STAGE1_RUSTFLAGS`), so both
/// make the same kind of static executable. Not stage 1's
/// `-inline-threshold=25`: that is a size knob, and the floor is a timing fixture.
const FLOOR_TARGET: &str = crate::initramfs::STAGE1_TARGET;
const FLOOR_RUSTFLAGS: &str = "-C\x1frelocation-model=static";

/// Builds `bench-floor-<mode>` (release) and returns the binary's bytes,
/// checked to be a static ELF.
pub fn build_floor(mode: &str) -> Result<Vec<u8>> {
    let bin = format!("bench-floor-{mode}");
    Cmd::new("cargo")
        .args(["build", "--release", "--locked", "--target", FLOOR_TARGET])
        .args(["-p", "bench-floor", "--bin", &bin])
        .env("CARGO_ENCODED_RUSTFLAGS", FLOOR_RUSTFLAGS)
        .dir(paths::repo_root())
        .run()?;
    let path = paths::cargo_target_dir()
        .join(FLOOR_TARGET)
        .join("release")
        .join(&bin);
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    initramfs::check_static_elf(&bytes).with_context(|| format!("checking {}", path.display()))?;
    Ok(bytes)
}
