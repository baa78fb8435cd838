//! The bookkeeping of `./k1os iso`'s steps: what a step is made from
//! ([`Inputs`]: text and file hashes), the stamp that says its outputs were
//! made from exactly that ([`Stamp`]), and the mtime clamping that makes the
//! staged tree reproducible ([`clamp_mtimes`]).
use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::hash::sha256_file;
use crate::initramfs;

/// Bump when a step's recipe changes in a way its inputs don't show.
const STAMP_FORMAT: &str = "k1os-iso-stamp-v1";

/// What a step is made from, as `name=value` lines (file contents by sha256);
/// the stamp key is the sha256 of the lines.
pub struct Inputs {
    lines: String,
}

impl Inputs {
    pub fn new(step: &str) -> Inputs {
        Inputs {
            lines: format!("format={STAMP_FORMAT}\nstep={step}\n"),
        }
    }

    pub fn text(&mut self, name: &str, value: &str) {
        let value = value.replace('\n', "\\n");
        self.lines.push_str(&format!("{name}={value}\n"));
    }

    pub fn file(&mut self, name: &str, path: &Path) -> Result<()> {
        let digest = sha256_file(path)?;
        self.lines.push_str(&format!("{name}=sha256:{digest}\n"));
        Ok(())
    }

    pub fn key(&self) -> String {
        crate::hash::sha256_hex(self.lines.as_bytes())
    }
}

/// `<work>/<name>.stamp`: the key of the inputs a step's outputs were made
/// from, and each output's size and mtime at that time (so an output changed
/// or replaced by hand is rebuilt too).
pub struct Stamp {
    path: PathBuf,
    key: String,
    inputs: String,
}

impl Stamp {
    pub fn new(work: &Path, name: &str, inputs: &Inputs) -> Stamp {
        Stamp {
            path: work.join(format!("{name}.stamp")),
            key: inputs.key(),
            inputs: inputs.lines.clone(),
        }
    }

    fn content(&self, outputs: &[&Path]) -> Option<String> {
        let mut s = format!("{}\n", self.key);
        for output in outputs {
            let meta = fs::metadata(output).ok()?;
            let mtime = meta
                .modified()
                .ok()?
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?;
            s.push_str(&format!(
                "{} {} {}\n",
                meta.len(),
                mtime.as_nanos(),
                output.display()
            ));
        }
        Some(s)
    }

    /// The outputs exist, unchanged since they were made from these inputs.
    pub fn is_fresh(&self, outputs: &[&Path]) -> bool {
        match (self.content(outputs), fs::read_to_string(&self.path)) {
            (Some(now), Ok(recorded)) => now == recorded,
            _ => false,
        }
    }

    pub fn record(&self, outputs: &[&Path]) -> Result<()> {
        let content = self
            .content(outputs)
            .with_context(|| format!("an output of {} is missing", self.path.display()))?;
        fs::write(&self.path, content)
            .with_context(|| format!("writing {}", self.path.display()))?;
        let inputs = self.path.with_extension("inputs");
        fs::write(&inputs, &self.inputs).with_context(|| format!("writing {}", inputs.display()))
    }
}

/// Sets the mtime (and atime) of `path` to `epoch`, without following a symlink's target.
pub(super) fn set_mtime(path: &Path, epoch: u32) -> Result<()> {
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(epoch.into());
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    file.set_times(fs::FileTimes::new().set_accessed(time).set_modified(time))
        .with_context(|| format!("setting the mtime of {}", path.display()))
}

/// Every file and directory under `root` (and `root`) gets the mtime `epoch`;
/// directories after their contents, since adding an entry changes a
/// directory's mtime.
pub fn clamp_mtimes(root: &Path, epoch: u32) -> Result<()> {
    let meta = fs::symlink_metadata(root).with_context(|| format!("reading {}", root.display()))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = fs::read_dir(root)
            .with_context(|| format!("listing {}", root.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("listing {}", root.display()))?;
        entries.sort();
        for entry in entries {
            clamp_mtimes(&entry, epoch)?;
        }
    }
    if meta.file_type().is_symlink() {
        // xorriso -r records symlinks with the volume's dates; nothing to do.
        return Ok(());
    }
    set_mtime(root, epoch)
}

/// Writes `data` unless the file already holds exactly that (so its mtime,
/// and stamps that look at it, stay put).
pub(super) fn write_if_changed(path: &Path, data: &[u8]) -> Result<()> {
    if fs::read(path).ok().as_deref() == Some(data) {
        return Ok(());
    }
    initramfs::write_file(path, data)
}

pub(super) fn file_size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_inputs_and_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.bin");
        fs::write(&out, "1").unwrap();
        let mut inputs = Inputs::new("t");
        inputs.text("a", "1");
        let stamp = Stamp::new(dir.path(), "t", &inputs);
        assert!(!stamp.is_fresh(&[&out]), "never recorded");
        stamp.record(&[&out]).unwrap();
        assert!(stamp.is_fresh(&[&out]));
        inputs.text("b", "2");
        assert!(
            !Stamp::new(dir.path(), "t", &inputs).is_fresh(&[&out]),
            "inputs changed"
        );
        fs::write(&out, "22").unwrap();
        assert!(!stamp.is_fresh(&[&out]), "output changed");
        fs::remove_file(&out).unwrap();
        assert!(!stamp.is_fresh(&[&out]), "output missing");
    }

    #[test]
    fn mtimes_are_clamped_depth_first() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("a/b/f"), "x").unwrap();
        clamp_mtimes(&root, 1_000_000).unwrap();
        for p in [
            root.clone(),
            root.join("a"),
            root.join("a/b"),
            root.join("a/b/f"),
        ] {
            let mtime = fs::metadata(&p).unwrap().modified().unwrap();
            assert_eq!(
                mtime,
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
                "{}",
                p.display()
            );
        }
    }
}
