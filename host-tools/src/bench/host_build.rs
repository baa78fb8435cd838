//! Host build timings: a cold build, a rebuild with nothing changed, and a
//! rebuild after a change to `init-nostd` only (its `main.rs` touched).
//!
//! They run in a **snapshot of the checkout** (`build/bench/host-build/src/`:
//! every file `git ls-files` lists, tracked or untracked-but-not-ignored, as
//! it is now), so that other work in the checkout cannot turn "nothing
//! changed" into a rebuild, and the checkout's `build/` and `target/` are not
//! touched. Each build is `cargo run --locked -p host-tools -- <command>`
//! there, as `make iso` does, with its own `CARGO_TARGET_DIR`:
//!
//! - **cold**: a fresh snapshot and an empty target directory, so host-tools,
//!   stage 1 and their crates compile from scratch, as in a fresh clone; the
//!   kernel and package caches (`K1OS_CACHE`) are kept;
//! - **no change**: the same command again;
//! - **touched**: after setting the snapshot's `init-nostd/src/main.rs`
//!   modification time to now.
//!
//! The command is `iso --profile qemu` when this host-tools has the `iso`
//! subcommand, else `initramfs` (and the report says which).
use anyhow::{Context, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::run::Cmd;
use crate::{initramfs, paths, ui};

/// The file "a change to init-nostd only" touches (its mtime, not its content).
pub const TOUCHED: &str = "init-nostd/src/main.rs";

/// What was timed.
#[derive(Clone, Debug)]
pub struct HostBuild {
    /// The command line, as run in the snapshot.
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

/// Times the three builds in `dir` (emptied first). `exe` is this host-tools,
/// asked whether it has the `iso` subcommand.
pub fn measure(exe: &Path, dir: &Path) -> Result<HostBuild> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let src = dir.join("src");
    let target = dir.join("target");
    let step = ui::Step::start("bench: host build, snapshot of the checkout");
    let files = snapshot(&paths::repo_root(), &src)?;
    step.done(&format!("{files} files in {}", src.display()));

    let exe_str = exe.to_str().context("the host-tools path is not UTF-8")?;
    let has_iso = Cmd::new(exe_str).args(["iso", "--help"]).run().is_ok();
    let args: &[&str] = if has_iso {
        &["iso", "--profile", "qemu"]
    } else {
        &["initramfs"]
    };
    let command = format!("cargo run --locked -p host-tools -- {}", args.join(" "));
    let mut note = "in a snapshot of the checkout; cold = fresh snapshot and empty \
                    CARGO_TARGET_DIR (host-tools itself compiles too), kernel and package caches kept"
        .to_string();
    if !has_iso {
        note += "; host-tools has no `iso` subcommand yet: timed `initramfs` instead";
    }
    let epoch = initramfs::source_date_epoch()?.to_string();
    let build = |name: &str| -> Result<Duration> {
        let step = ui::Step::start(format!("bench: host build, {name}: {command}"));
        let start = Instant::now();
        Cmd::new("cargo")
            .args(["run", "--quiet", "--locked", "-p", "host-tools", "--"])
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .env("SOURCE_DATE_EPOCH", &epoch)
            .dir(&src)
            .run_logged(&dir.join(format!("{name}.log")))?;
        let took = start.elapsed();
        step.done("done");
        Ok(took)
    };
    let cold = build("cold")?;
    let no_change = build("no-change")?;
    touch(&src.join(TOUCHED))?;
    let touched = build("touched")?;
    Ok(HostBuild {
        command,
        cold,
        no_change,
        touched,
        note,
    })
}

/// Copies the files of the checkout `root` that git knows or would know
/// (tracked, or untracked and not ignored) into `to`; returns how many.
pub fn snapshot(root: &Path, to: &Path) -> Result<usize> {
    let root_str = root.to_str().context("the checkout path is not UTF-8")?;
    let list = Cmd::new("git")
        .args(["-C", root_str, "ls-files", "-z", "--cached", "--others"])
        .arg("--exclude-standard")
        .read()?;
    let mut n = 0;
    for rel in list.split('\0').filter(|s| !s.is_empty()) {
        let from = root.join(rel);
        // Deleted but still tracked: not part of the working tree.
        let Ok(meta) = std::fs::symlink_metadata(&from) else {
            continue;
        };
        let dest = to.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&from)?;
            std::os::unix::fs::symlink(&target, &dest)
                .with_context(|| format!("linking {}", dest.display()))?;
        } else if meta.is_file() {
            std::fs::copy(&from, &dest)
                .with_context(|| format!("copying {} to {}", from.display(), dest.display()))?;
        } else {
            continue;
        }
        n += 1;
    }
    Ok(n)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_copies_what_git_lists() {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("repo");
        std::fs::create_dir_all(repo.join("src")).unwrap();
        let git = |args: &[&str]| {
            Cmd::new("git")
                .args(["-C", repo.to_str().unwrap()])
                .args(args)
                .run()
                .unwrap()
        };
        git(&["init", "-q"]);
        std::fs::write(repo.join(".gitignore"), "/ignored\n").unwrap();
        std::fs::write(repo.join("src/tracked.rs"), "a").unwrap();
        std::fs::write(repo.join("gone.rs"), "b").unwrap();
        git(&["add", "."]);
        std::fs::remove_file(repo.join("gone.rs")).unwrap();
        std::fs::write(repo.join("untracked.rs"), "c").unwrap();
        std::fs::write(repo.join("ignored"), "d").unwrap();
        let to = tmp.path().join("copy");
        assert_eq!(snapshot(&repo, &to).unwrap(), 3);
        assert_eq!(
            std::fs::read_to_string(to.join("src/tracked.rs")).unwrap(),
            "a"
        );
        assert!(to.join("untracked.rs").is_file() && to.join(".gitignore").is_file());
        assert!(!to.join("ignored").exists() && !to.join("gone.rs").exists());
    }
}
