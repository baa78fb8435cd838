//! `./k1os bench --warp`: how big and how fast warp is, on the host, with
//! the binary the image ships (release, static musl) managing a scratch root
//! (`--root`), over real HTTP from `repo serve` on 127.0.0.1:
//!
//! - the binary's size;
//! - `update` + `install` of a package of 50 MiB (ten 5 MiB files of
//!   incompressible bytes: zstd cannot shrink them, so download, hashing,
//!   decompression and writing all see 50 MiB), each run on a fresh root;
//! - `update` and `search` against an index of 10,000 packages.
//!
//! Each figure is the median of [`RUNS`] runs. The reference point is
//! apk's: about 1 s to install a 10 MB package (Stapelberg, "Linux package
//! managers are slow", 2019/2021). Writes `build/bench/warp.json`.
use anyhow::{Context, Result, ensure};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use warp_format::archive;
use warp_format::index::{self, Index};
use warp_format::manifest::{self, Manifest};
use warp_format::signify::SecretKey;

use crate::run::Cmd;
use crate::{repo, ui, warp_build};

/// Runs per figure.
pub const RUNS: usize = 3;
/// The big package: files × bytes each.
const BIG_FILES: usize = 10;
const BIG_FILE_BYTES: usize = 5 << 20;
/// Packages in the search index.
const SEARCH_PACKAGES: usize = 10_000;

/// The figures, in bytes and seconds.
#[derive(Debug)]
pub struct Figures {
    pub binary_bytes: u64,
    pub big_package_bytes: u64,
    pub big_archive_bytes: u64,
    pub update_seconds: f64,
    pub install_big_seconds: f64,
    pub search_index_packages: usize,
    pub search_index_bytes: u64,
    pub update_big_index_seconds: f64,
    pub search_seconds: f64,
    pub runs: usize,
}

/// Measures everything into `out` (a scratch directory, emptied first) and
/// returns the figures.
pub fn run(out: &Path) -> Result<Figures> {
    let _ = fs::remove_dir_all(out);
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let bytes = warp_build::build_warp()?;
    let warp = out.join("warp");
    fs::write(&warp, &bytes).with_context(|| format!("writing {}", warp.display()))?;
    set_executable(&warp)?;

    // A throwaway key: these repositories are the benchmark's own.
    let key = SecretKey::from_random([7; 32], *b"warpbnch");
    let big = out.join("repo-big");
    let big_package_bytes = write_big_repo(&big, &key)?;
    let big_archive_bytes = fs::metadata(big.join("big-1.0.warp"))?.len();
    let many = out.join("repo-many");
    write_many_repo(&many, &key)?;
    let search_index_bytes = fs::metadata(many.join(index::INDEX_FILE))?.len();

    let big_url = serve(&big)?;
    let many_url = serve(&many)?;

    let step = ui::Step::start(format!(
        "warp: update + install of a 50 MB package, {RUNS} runs"
    ));
    let (mut updates, mut installs) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let root = fresh_root(out, &format!("root-big-{i}"), &key, &big_url)?;
        updates.push(time(&warp, &root, &["update"])?);
        installs.push(time(&warp, &root, &["install", "big"])?);
        let _ = fs::remove_dir_all(&root);
    }
    step.done(&format!("install {:.2} s", median(&installs)));

    let step = ui::Step::start(format!(
        "warp: search an index of {SEARCH_PACKAGES} packages"
    ));
    let root = fresh_root(out, "root-many", &key, &many_url)?;
    let mut big_updates = Vec::new();
    for _ in 0..RUNS {
        // A fresh state each time: the same serial is refused only when its
        // bytes differ, so a second update is a full one too.
        big_updates.push(time(&warp, &root, &["update"])?);
    }
    let mut searches = Vec::new();
    for _ in 0..RUNS {
        searches.push(time(&warp, &root, &["search", "pkg-05000"])?);
    }
    step.done(&format!("search {:.3} s", median(&searches)));

    let figures = Figures {
        binary_bytes: bytes.len() as u64,
        big_package_bytes,
        big_archive_bytes,
        update_seconds: median(&updates),
        install_big_seconds: median(&installs),
        search_index_packages: SEARCH_PACKAGES,
        search_index_bytes,
        update_big_index_seconds: median(&big_updates),
        search_seconds: median(&searches),
        runs: RUNS,
    };
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "binary_bytes": figures.binary_bytes,
        "big_package_bytes": figures.big_package_bytes,
        "big_archive_bytes": figures.big_archive_bytes,
        "update_seconds": figures.update_seconds,
        "install_big_seconds": figures.install_big_seconds,
        "search_index_packages": figures.search_index_packages,
        "search_index_bytes": figures.search_index_bytes,
        "update_big_index_seconds": figures.update_big_index_seconds,
        "search_seconds": figures.search_seconds,
        "runs": figures.runs,
    }))? + "\n";
    fs::write(out.join("warp.json"), json)?;
    Ok(figures)
}

/// The figures as the lines `bench --warp` prints.
pub fn report(f: &Figures) -> String {
    let mb = |b: u64| b as f64 / 1e6;
    format!(
        "warp binary (static, musl, release): {} bytes ({})\n\
         update (1 package index):            {:.3} s\n\
         install of a {:.1} MB package ({:.1} MB archive, over HTTP): {:.2} s ({:.0} MB/s; apk: ~1 s for 10 MB)\n\
         update of a {}-package index ({:.1} MB): {:.3} s\n\
         search in it:                        {:.3} s\n\
         (median of {} runs each; build/bench/warp/warp.json)",
        f.binary_bytes,
        ui::human_size(f.binary_bytes),
        f.update_seconds,
        mb(f.big_package_bytes),
        mb(f.big_archive_bytes),
        f.install_big_seconds,
        mb(f.big_package_bytes) / f.install_big_seconds.max(1e-9),
        f.search_index_packages,
        mb(f.search_index_bytes),
        f.update_big_index_seconds,
        f.search_seconds,
        f.runs,
    )
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}

/// A root trusting `key`, with the one repository `url`.
fn fresh_root(out: &Path, name: &str, key: &SecretKey, url: &str) -> Result<PathBuf> {
    let root = out.join(name);
    let _ = fs::remove_dir_all(&root);
    for d in ["etc/warp/keys.d", "usr/local/bin", "opt"] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::write(
        root.join("etc/warp/keys.d/bench.pub"),
        key.public().to_file("warp benchmark key"),
    )?;
    fs::write(root.join("etc/warp/repositories"), format!("bench {url}\n"))?;
    Ok(root)
}

/// Serves `dir` on 127.0.0.1 (a free port) from a thread that lives as
/// long as the process; returns the URL.
fn serve(dir: &Path) -> Result<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        let served = repo::serve::serve_tcp(&dir, 0, |addr| {
            let _ = tx.send(Ok(addr));
        });
        if let Err(e) = served {
            let _ = tx.send(Err(e));
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .context("the benchmark's repository server did not start")??;
    Ok(format!("http://{addr}/"))
}

/// The seconds `warp --root ROOT ARGS…` takes (it must succeed).
fn time(warp: &Path, root: &Path, args: &[&str]) -> Result<f64> {
    let start = Instant::now();
    Cmd::new(&warp.display().to_string())
        .arg("--root")
        .arg(root)
        .arg("-q")
        .args(args)
        .stdin_null()
        .read()?;
    Ok(start.elapsed().as_secs_f64())
}

fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Incompressible but reproducible bytes (xorshift64*).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The repository with the 50 MiB package `big`; returns its installed size.
fn write_big_repo(dir: &Path, key: &SecretKey) -> Result<u64> {
    let tree = dir.with_extension("tree");
    let _ = fs::remove_dir_all(&tree);
    let files = tree.join("opt/big/data");
    fs::create_dir_all(&files)?;
    for i in 0..BIG_FILES {
        fs::write(
            files.join(format!("part-{i:02}")),
            noise(i as u64 + 1, BIG_FILE_BYTES),
        )?;
    }
    let entries = archive::scan(&tree).map_err(|e| anyhow::anyhow!("{e}"))?;
    let m = Manifest {
        format: manifest::FORMAT,
        name: "big".into(),
        version: "1.0".into(),
        arch: manifest::ARCH.into(),
        description: "50 MB of incompressible data (warp benchmark)".into(),
        license: "MIT".into(),
        depends: vec![],
        conflicts: vec![],
        files: entries,
    };
    fs::create_dir_all(dir)?;
    let tar = archive::write(Vec::new(), &m, &tree, 0).map_err(|e| anyhow::anyhow!("{e}"))?;
    let bytes = zstd::encode_all(&tar[..], repo::build::ZSTD_LEVEL)?;
    let file = "big-1.0.warp".to_string();
    fs::write(dir.join(&file), &bytes)?;
    let _ = fs::remove_dir_all(&tree);
    let entry = index::Entry {
        name: m.name.clone(),
        version: m.version.clone(),
        description: m.description.clone(),
        license: m.license.clone(),
        depends: vec![],
        conflicts: vec![],
        file,
        size: bytes.len() as u64,
        sha256: warp_format::sha256_hex(&bytes),
        installed_size: m.installed_size(),
    };
    sign(dir, key, 1, vec![entry])?;
    Ok(m.installed_size())
}

/// The repository whose index lists [`SEARCH_PACKAGES`] packages (the
/// archives are not there: search reads the index only).
fn write_many_repo(dir: &Path, key: &SecretKey) -> Result<()> {
    fs::create_dir_all(dir)?;
    let packages = (0..SEARCH_PACKAGES)
        .map(|i| index::Entry {
            name: format!("pkg-{i:05}"),
            version: format!("1.{}-1", i % 7),
            description: format!(
                "benchmark package number {i}, a line of text like a real description"
            ),
            license: "MIT".into(),
            depends: if i > 0 {
                vec![format!("pkg-{:05}", i / 2)]
            } else {
                vec![]
            },
            conflicts: vec![],
            file: format!("pkg-{i:05}-1.0.warp"),
            size: 10_000 + i as u64,
            sha256: warp_format::sha256_hex(&i.to_le_bytes()),
            installed_size: 40_000,
        })
        .collect();
    sign(dir, key, 1, packages)
}

fn sign(dir: &Path, key: &SecretKey, serial: u64, packages: Vec<index::Entry>) -> Result<()> {
    let index = Index {
        format: index::FORMAT,
        repo: "bench".into(),
        arch: manifest::ARCH.into(),
        serial,
        packages,
    };
    let bytes = index.to_bytes();
    ensure!(
        Index::parse(&bytes).is_ok(),
        "the benchmark's index does not parse"
    );
    fs::write(dir.join(index::INDEX_FILE), &bytes)?;
    fs::write(
        dir.join(index::SIGNATURE_FILE),
        key.sign(&bytes).to_file("verify with bench.pub"),
    )?;
    Ok(())
}
