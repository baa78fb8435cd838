//! Host build timings: a cold build, a rebuild with nothing changed, and a
//! rebuild after a change to `init-nostd` only (its `main.rs` touched).
//!
//! "Cold" here: an empty output directory (`--out`) and an empty Cargo target
//! directory (`CARGO_TARGET_DIR`), so stage 1 and its crates compile from
//! scratch; the kernel and package caches (`K1OS_CACHE`) are kept, as a
//! developer's machine has them. What is built is `host-tools iso --profile
//! qemu` when this host-tools has the `iso` subcommand, else `host-tools
//! initramfs` (and the report says which). Everything goes to
//! `build/bench/host-build/`, except that the kernel step of `host-tools iso`
//! refreshes `build/kernel/` from the cache as it always does.
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::run::Cmd;
use crate::{paths, ui};

/// The file "a change to init-nostd only" touches (its mtime, not its content).
pub const TOUCHED: &str = "init-nostd/src/main.rs";

/// What was timed.
#[derive(Clone, Debug)]
pub struct HostBuild {
    /// The command line (without `--out`).
    pub command: String,
    pub cold: Duration,
    pub no_change: Duration,
    pub touched: Duration,
    pub note: String,
}

impl HostBuild {
    pub fn json(&self) -> Value {
        json!({
            "command": self.command,
            "cold_s": secs(self.cold),
            "no_change_s": secs(self.no_change),
            "touch_init_nostd_s": secs(self.touched),
            "touched_file": TOUCHED,
            "note": self.note,
        })
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 100.0).round() / 100.0
}

/// Times the three builds with the `host-tools` binary `exe`, working in `dir`
/// (emptied first).
pub fn measure(exe: &Path, dir: &Path) -> Result<HostBuild> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let exe_str = exe.to_str().context("the host-tools path is not UTF-8")?;
    let has_iso = Cmd::new(exe_str).args(["iso", "--help"]).run().is_ok();
    let out = dir.join("out");
    let target = dir.join("target");
    let args: Vec<String> = if has_iso {
        vec!["iso".into(), "--profile".into(), "qemu".into()]
    } else {
        vec!["initramfs".into()]
    };
    let command = format!("host-tools {}", args.join(" "));
    let note = if has_iso {
        "cold = empty --out and CARGO_TARGET_DIR; kernel and package caches kept".to_string()
    } else {
        "host-tools has no `iso` subcommand yet: timed `host-tools initramfs` instead; \
         cold = empty --out and CARGO_TARGET_DIR"
            .to_string()
    };
    let build = |name: &str| -> Result<Duration> {
        let step = ui::Step::start(format!("bench: host build, {name}: {command}"));
        let start = Instant::now();
        Cmd::new(exe_str)
            .args(&args)
            .arg("--out")
            .arg(&out)
            .env("CARGO_TARGET_DIR", &target)
            .dir(paths::repo_root())
            .run_logged(&dir.join(format!("{name}.log")))?;
        let took = start.elapsed();
        step.done("done");
        Ok(took)
    };
    // This checkout may be shared: a commit or an edit by someone else during
    // a "nothing changed" build makes it a rebuild (once, a kernel rebuild of
    // 12 minutes). Such a build is repeated, up to ATTEMPTS times.
    let cold = build("cold")?;
    let mut notes = vec![note];
    let mut before = fingerprint()?;
    let mut no_change = Duration::ZERO;
    for attempt in 1..=ATTEMPTS {
        no_change = build(&format!("no-change-{attempt}"))?;
        let after = fingerprint()?;
        if after == before {
            break;
        }
        notes.push(format!(
            "the checkout changed during no-change build {attempt} (someone else's commit or edit)"
        ));
        before = after;
    }
    let mut touched = Duration::ZERO;
    for attempt in 1..=ATTEMPTS {
        touch(&paths::repo_root().join(TOUCHED))?;
        touched = build(&format!("touched-{attempt}"))?;
        let after = fingerprint()?;
        if after == before {
            break;
        }
        notes.push(format!(
            "the checkout changed during touched build {attempt} (someone else's commit or edit)"
        ));
        before = after;
    }
    Ok(HostBuild {
        command,
        cold,
        no_change,
        touched,
        note: notes.join("; "),
    })
}

/// How many times a rebuild is tried while the checkout keeps changing.
const ATTEMPTS: usize = 3;

/// The checkout's state: HEAD and the uncommitted changes to tracked files.
fn fingerprint() -> Result<String> {
    use sha2::Digest;
    let root = paths::repo_root();
    let root = root.to_str().context("the checkout path is not UTF-8")?;
    let head = Cmd::new("git")
        .args(["-C", root, "rev-parse", "HEAD"])
        .read()?;
    let diff = Cmd::new("git")
        .args(["-C", root, "diff", "--no-ext-diff", "HEAD"])
        .read()?;
    Ok(format!(
        "{}-{:x}",
        head.trim(),
        sha2::Sha256::digest(diff.as_bytes())
    ))
}

/// Sets `path`'s modification time to now, leaving its content alone.
fn touch(path: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.set_modified(SystemTime::now())
        .with_context(|| format!("touching {}", path.display()))
}

/// Where the timings' builds go: `build/bench/host-build/`.
pub fn work_dir(bench_dir: &Path) -> PathBuf {
    bench_dir.join("host-build")
}
