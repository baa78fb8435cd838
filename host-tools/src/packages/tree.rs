//! Directory trees: their content hash (part of a package's key) and the
//! copy that merges a package's output into a sysroot or the root filesystem.
use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::hash::{sha256_file, sha256_hex};

/// sha256 of a directory's content: for every entry, sorted by path, its
/// relative path, its type, for files the executable bit and the content's
/// sha256, for symlinks the target. Owners, other mode bits and times are
/// left out (a package's key: its build script sets the modes it ships).
pub fn tree_hash(dir: &Path) -> Result<String> {
    hash_tree(dir, false)
}

/// [`tree_hash`] with every entry's permission bits (`mode & 0o7777`) too:
/// everything of a tree that `mksquashfs -all-root -all-time` records, so
/// equal hashes mean equal images (the root filesystem's stamp).
pub fn tree_hash_with_modes(dir: &Path) -> Result<String> {
    hash_tree(dir, true)
}

fn hash_tree(dir: &Path, with_modes: bool) -> Result<String> {
    let mut text: Vec<u8> = Vec::new();
    let mut entries = Vec::new();
    walk(dir, Path::new(""), &mut entries)?;
    for (rel, meta) in entries {
        let full = dir.join(&rel);
        text.extend_from_slice(rel.as_os_str().as_encoded_bytes());
        text.push(b'\0');
        let ft = meta.file_type();
        if ft.is_symlink() {
            let target = fs::read_link(&full)
                .with_context(|| format!("reading the link {}", full.display()))?;
            text.push(b'l');
            text.extend_from_slice(target.as_os_str().as_encoded_bytes());
        } else if ft.is_dir() {
            text.push(b'd');
        } else if ft.is_file() {
            text.push(if meta.permissions().mode() & 0o100 != 0 {
                b'x'
            } else {
                b'f'
            });
            text.extend_from_slice(sha256_file(&full)?.as_bytes());
        } else {
            bail!("{} is not a file, directory or symlink", full.display());
        }
        if with_modes {
            text.extend_from_slice(format!(" {:o}", meta.permissions().mode() & 0o7777).as_bytes());
        }
        text.push(b'\n');
    }
    Ok(sha256_hex(&text))
}

/// Every entry under `dir` (relative paths, sorted, directories before their
/// content), without following symlinks.
pub fn walk(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<std::ffi::OsString> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("reading {}", dir.display()))?;
    names.sort();
    for name in names {
        let rel = rel.join(&name);
        let full = root.join(&rel);
        let meta =
            fs::symlink_metadata(&full).with_context(|| format!("reading {}", full.display()))?;
        let is_dir = meta.is_dir();
        out.push((rel.clone(), meta));
        if is_dir {
            walk(root, &rel, out)?;
        }
    }
    Ok(())
}

/// Copies the tree `from` into `to` (merging directories), keeping modes
/// and symlinks. With `owners`, records which package put each path there and
/// fails when two packages install the same file or symlink, or the same
/// directory with different modes.
pub fn copy_tree(
    from: &Path,
    to: &Path,
    mut owners: Option<(&str, &mut BTreeMap<PathBuf, String>)>,
) -> Result<()> {
    let mut entries = Vec::new();
    walk(from, Path::new(""), &mut entries)?;
    for (rel, meta) in entries {
        let src = from.join(&rel);
        let dst = to.join(&rel);
        let existing = fs::symlink_metadata(&dst).ok();
        if let Some((pkg, map)) = owners.as_mut() {
            if let Some(old) = &existing {
                let other = map.get(&rel).cloned().unwrap_or_else(|| "?".into());
                let both_dirs = old.is_dir() && meta.is_dir();
                if !both_dirs {
                    bail!("`{other}` and `{pkg}` both install /{}", rel.display());
                }
                let (a, b) = (
                    old.permissions().mode() & 0o7777,
                    meta.permissions().mode() & 0o7777,
                );
                ensure!(
                    a == b,
                    "`{other}` and `{pkg}` both make the directory /{} with different modes ({a:o} and {b:o})",
                    rel.display()
                );
                continue;
            }
            map.insert(rel.clone(), pkg.to_string());
        }
        let t = meta.file_type();
        if t.is_dir() {
            if existing.is_none() {
                fs::create_dir(&dst).with_context(|| format!("creating {}", dst.display()))?;
            }
            fs::set_permissions(
                &dst,
                fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
            )
            .with_context(|| format!("setting the mode of {}", dst.display()))?;
        } else if t.is_symlink() {
            let target = fs::read_link(&src)
                .with_context(|| format!("reading the link {}", src.display()))?;
            if existing.is_some() {
                fs::remove_file(&dst).with_context(|| format!("replacing {}", dst.display()))?;
            }
            std::os::unix::fs::symlink(&target, &dst)
                .with_context(|| format!("creating the link {}", dst.display()))?;
        } else {
            if existing.is_some() {
                fs::remove_file(&dst).with_context(|| format!("replacing {}", dst.display()))?;
            }
            fs::copy(&src, &dst)
                .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_hash_sees_content_links_and_exec_bits() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir(d.join("etc")).unwrap();
        fs::write(d.join("etc/a"), "1").unwrap();
        let h1 = tree_hash(d).unwrap();
        assert_eq!(h1, tree_hash(d).unwrap());
        fs::set_permissions(d.join("etc/a"), fs::Permissions::from_mode(0o755)).unwrap();
        let h2 = tree_hash(d).unwrap();
        assert_ne!(h1, h2);
        std::os::unix::fs::symlink("a", d.join("etc/b")).unwrap();
        let h3 = tree_hash(d).unwrap();
        assert_ne!(h2, h3);
        fs::write(d.join("etc/a"), "2").unwrap();
        assert_ne!(h3, tree_hash(d).unwrap());
    }

    #[test]
    fn the_hash_with_modes_sees_every_permission_bit() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        fs::create_dir(d.join("etc")).unwrap();
        fs::write(d.join("etc/shadow"), "root:*:1::::::\n").unwrap();
        fs::set_permissions(d.join("etc/shadow"), fs::Permissions::from_mode(0o644)).unwrap();
        let (plain, moded) = (tree_hash(d).unwrap(), tree_hash_with_modes(d).unwrap());
        assert_ne!(plain, moded);
        // 0640: not the executable bit, so the package key stays, the
        // image's stamp does not.
        fs::set_permissions(d.join("etc/shadow"), fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(plain, tree_hash(d).unwrap());
        assert_ne!(moded, tree_hash_with_modes(d).unwrap());
        let moded = tree_hash_with_modes(d).unwrap();
        fs::set_permissions(d.join("etc"), fs::Permissions::from_mode(0o700)).unwrap();
        assert_ne!(
            moded,
            tree_hash_with_modes(d).unwrap(),
            "a directory's mode"
        );
    }
}
