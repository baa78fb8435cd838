//! The repository's signing keys, in the signify format
//! (`warp_format::signify`): `repo keygen` makes a pair, `repo build` signs
//! with the build key, and the image trusts its public half.
//!
//! **The build key** is `<cache>/repo-key/k1os-build.sec` (and `.pub`),
//! created on first use, so a checkout builds a signed repository, and an
//! image that trusts it, without any setup. `K1OS_REPO_KEY=/path/NAME.sec`
//! signs with another key instead (its public half is derived from it). A
//! secret key is never written into the checkout or `build/`: `keygen`
//! refuses such a directory, and nothing copies a `.sec` anywhere.
use anyhow::{Context, Result, bail, ensure};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use warp_format::signify::{self, PublicKey, SecretKey};

use crate::{paths, ui};

/// The name of the default build key (its files are `NAME.sec`, `NAME.pub`).
pub const BUILD_KEY_NAME: &str = "k1os-build";
/// Signs with this secret key instead of the build key.
pub const KEY_ENV: &str = paths::REPO_KEY_ENV;

/// A secret key, with the name its files carry.
pub struct SigningKey {
    /// `NAME` of `NAME.sec`: the public key is published as `NAME.pub`.
    pub name: String,
    /// The `.sec` file it was read from.
    pub path: PathBuf,
    pub secret: SecretKey,
}

impl SigningKey {
    pub fn public(&self) -> PublicKey {
        self.secret.public()
    }

    /// The text of `NAME.pub`.
    pub fn public_file(&self) -> String {
        self.public().to_file(&public_comment(&self.name))
    }

    /// The text of a detached signature of `message` (`index.json.sig`),
    /// with the comment signify writes: `verify with NAME.pub`.
    pub fn signature_file(&self, message: &[u8]) -> String {
        self.secret
            .sign(message)
            .to_file(&format!("verify with {}.pub", self.name))
    }
}

fn public_comment(name: &str) -> String {
    format!("{name} public key")
}

/// `<cache>/repo-key/`: where the build key lives.
pub fn build_key_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join("repo-key")
}

/// The key `repo build` signs with: `$K1OS_REPO_KEY`, else the build key in
/// `cache_dir`, made now if it does not exist yet.
pub fn signing_key(cache_dir: &Path) -> Result<SigningKey> {
    if let Some(path) = key_from_env() {
        return read_secret(&path).with_context(|| format!("{KEY_ENV}={}", path.display()));
    }
    let dir = build_key_dir(cache_dir);
    let sec = dir.join(format!("{BUILD_KEY_NAME}.sec"));
    if !sec.exists() {
        let (sec, _) = keygen(&dir, BUILD_KEY_NAME)?;
        ui::note(&format!(
            "made the repository build key {} (images built from now on trust it; \
             {KEY_ENV}=/path/NAME.sec signs with another key)",
            sec.display()
        ));
    }
    read_secret(&sec)
}

/// The public key that checks what [`signing_key`] signs, without making
/// anything: `$K1OS_REPO_KEY`'s public half, else the build key's. `None`
/// when there is no build key yet.
pub fn verifying_key(cache_dir: &Path) -> Result<Option<(PublicKey, PathBuf)>> {
    if let Some(path) = key_from_env() {
        let key = read_secret(&path).with_context(|| format!("{KEY_ENV}={}", path.display()))?;
        return Ok(Some((key.public(), path)));
    }
    let sec = build_key_dir(cache_dir).join(format!("{BUILD_KEY_NAME}.sec"));
    if !sec.exists() {
        return Ok(None);
    }
    Ok(Some((read_secret(&sec)?.public(), sec)))
}

/// `$K1OS_REPO_KEY`; a relative path is from the checkout, like the other
/// variables' directories.
fn key_from_env() -> Option<PathBuf> {
    let path = PathBuf::from(paths::env_var(KEY_ENV)?);
    Some(if path.is_relative() {
        paths::repo_root().join(path)
    } else {
        path
    })
}

/// Reads a `NAME.sec` file (no passphrase: signify's `-n`).
pub fn read_secret(path: &Path) -> Result<SigningKey> {
    let text = read_small(path)?;
    let secret = SecretKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| BUILD_KEY_NAME.to_string());
    Ok(SigningKey {
        name,
        path: path.to_path_buf(),
        secret,
    })
}

/// Reads a `.pub` file.
pub fn read_public(path: &Path) -> Result<PublicKey> {
    let text = read_small(path)?;
    PublicKey::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// A signify file's text; longer than any signify file is an error, not a
/// read of whatever the path holds.
fn read_small(path: &Path) -> Result<String> {
    let file = fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut text = String::new();
    file.take(signify::MAX_FILE as u64 + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {} (a signify key is text)", path.display()))?;
    ensure!(
        text.len() <= signify::MAX_FILE,
        "{}: longer than {} bytes, not a signify key",
        path.display(),
        signify::MAX_FILE
    );
    Ok(text)
}

/// Makes a key pair `dir/NAME.sec` (mode 0600) and `dir/NAME.pub` from the
/// system's random source; `dir` is created (mode 0700) when missing.
/// Refuses to replace either file. Returns both paths.
pub fn keygen(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    check_key_name(name)?;
    let sec = dir.join(format!("{name}.sec"));
    let public = dir.join(format!("{name}.pub"));
    for path in [&sec, &public] {
        if fs::symlink_metadata(path).is_ok() {
            bail!(
                "{} already exists: a key is never overwritten (remove it yourself, or choose \
                 another NAME)",
                path.display()
            );
        }
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut random = [0u8; 40];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut random))
        .context("reading 40 random bytes from /dev/urandom")?;
    let mut seed = [0u8; 32];
    let mut keynum = [0u8; 8];
    seed.copy_from_slice(&random[..32]);
    keynum.copy_from_slice(&random[32..]);
    let secret = SecretKey::from_random(seed, keynum);
    write_new(&sec, 0o600, &secret.to_file(&format!("{name} secret key")))?;
    if let Err(e) = write_new(
        &public,
        0o644,
        &secret.public().to_file(&public_comment(name)),
    ) {
        let _ = fs::remove_file(&sec);
        return Err(e);
    }
    Ok((sec, public))
}

/// A key's name: what signify users type, and safe as a file name.
fn check_key_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    ensure!(
        ok,
        "key name `{name}`: use letters, digits, `.`, `_` and `-` (the files are NAME.sec and NAME.pub)"
    );
    Ok(())
}

/// Creates `path` (never replacing anything) with `mode`, writes `text` and
/// syncs it.
fn write_new(path: &Path, mode: u32, text: &str) -> Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Refuses a directory inside the checkout or `build/` for a secret key:
/// the checkout is shared (and `build/` is published), the key is not.
pub fn refuse_public_places(dir: &Path) -> Result<()> {
    let target = resolved(dir);
    for (what, place) in [
        ("the checkout", paths::repo_root()),
        ("the build directory", paths::build_dir()),
    ] {
        let place = resolved(&place);
        if target.starts_with(&place) {
            bail!(
                "{} is inside {what} ({}): a secret key must stay out of it; choose a \
                 directory of your own (the default, without --out, is the cache)",
                dir.display(),
                place.display()
            );
        }
    }
    Ok(())
}

/// `path` made absolute with its existing part's symlinks resolved (what
/// does not exist yet is appended as written).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    loop {
        if let Ok(real) = fs::canonicalize(existing) {
            return rest.iter().rev().fold(real, |p, c| p.join(c));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keygen_makes_a_private_pair_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("keys");
        let (sec, public) = keygen(&dir, "test").unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&sec), 0o600);
        assert_eq!(mode(&public), 0o644);
        assert_eq!(mode(&dir), 0o700);
        let key = read_secret(&sec).unwrap();
        assert_eq!(key.name, "test");
        assert_eq!(read_public(&public).unwrap(), key.public());
        assert_eq!(fs::read_to_string(&public).unwrap(), key.public_file());
        let before = fs::read(&sec).unwrap();
        let err = keygen(&dir, "test").unwrap_err().to_string();
        assert!(err.contains("already exists"), "{err}");
        assert_eq!(fs::read(&sec).unwrap(), before);
        // Two keys differ (random seed and keynum).
        let (sec2, _) = keygen(&dir, "other").unwrap();
        let other = read_secret(&sec2).unwrap();
        assert_ne!(other.public(), key.public());
        assert_ne!(other.secret.keynum, key.secret.keynum);
        for bad in ["", "../x", "a/b", ".hidden", "-n"] {
            assert!(keygen(&dir, bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn resolved_keeps_the_missing_part() {
        let tmp = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(tmp.path()).unwrap();
        assert_eq!(resolved(&tmp.path().join("a/b")), real.join("a/b"));
    }
}
