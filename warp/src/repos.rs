//! Repository indexes: `warp update` fetches and verifies them, every other
//! command reads the verified copies kept in `var/lib/warp/repos/<name>/`.
//!
//! Checks, all before anything is stored: the signature file parses, its key
//! number is a trusted key, the signature matches the exact bytes of
//! `index.json`, the index parses (format 1, this architecture), and its
//! `serial` is not lower than the last one verified for that repository —
//! nor the same with other bytes (a replayed or rolled-back repository
//! could otherwise keep a machine on old, vulnerable versions). The stored
//! pair is verified again when it is loaded, so a damaged or tampered copy
//! is caught too.
use std::fs;
use std::path::Path;

use warp_format::index::{self, Index};
use warp_format::signify::{self, PublicKey, Signature};

use crate::config::Repo;
use crate::context::Ctx;
use crate::error::{Context, Error, Result};
use crate::files;
use crate::fsutil;
use crate::http;

/// `index.json.sig` is two short lines.
const MAX_SIG: u64 = signify::MAX_FILE as u64;
/// The `serial` file holds one number.
const SERIAL_FILE: &str = "serial";

/// A repository with its verified index.
#[derive(Clone, Debug)]
pub struct RepoIndex {
    pub repo: Repo,
    pub index: Index,
}

/// Checks `sig` over `bytes` against the trusted keys and parses the index.
/// `what` names where the pair came from (a URL or a stored file).
pub fn verify(bytes: &[u8], sig: &[u8], keys: &[PublicKey], what: &str) -> Result<Index> {
    let sig_text = std::str::from_utf8(sig).map_err(|_| {
        Error::integrity(format!("{what}.sig: not a signify signature (not UTF-8)"))
    })?;
    let sig =
        Signature::parse(sig_text).map_err(|e| Error::integrity(format!("{what}.sig: {e}")))?;
    signify::verify_with_any(keys, bytes, &sig).map_err(|e| {
        let hint = match e {
            signify::Error::UnknownKey(_) => {
                " (trusted keys: usr/share/warp/keys/ and etc/warp/keys.d/; see `warp key list`)"
            }
            _ => " (the index was changed after it was signed, or signed with another key)",
        };
        Error::integrity(format!("{what}: {e}{hint}"))
    })?;
    Index::parse(bytes).map_err(|e| Error::integrity(format!("{what}: {e}")))
}

/// What `update` found compared with the stored index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Nothing stored yet.
    First,
    /// A higher serial than the stored one (`from`).
    Newer { from: u64 },
    /// The same serial and the same bytes.
    Same,
}

/// The serial rule: `last` is the last verified serial and, when still
/// stored, its index bytes.
pub fn check_serial(
    last: Option<(u64, Option<&[u8]>)>,
    serial: u64,
    bytes: &[u8],
    what: &str,
) -> Result<Freshness> {
    let Some((last, last_bytes)) = last else {
        return Ok(Freshness::First);
    };
    if serial < last {
        return Err(Error::integrity(format!(
            "{what}: index serial {serial} is older than the last seen {last} \
             (a replayed or rolled-back repository)"
        )));
    }
    if serial > last {
        return Ok(Freshness::Newer { from: last });
    }
    match last_bytes {
        Some(b) if b == bytes => Ok(Freshness::Same),
        _ => Err(Error::integrity(format!(
            "{what}: index serial {serial} is the one last seen, but its content differs \
             (a repository must raise the serial whenever the index changes)"
        ))),
    }
}

/// What `update` did for one repository.
#[derive(Clone, Debug)]
pub struct Updated {
    pub freshness: Freshness,
    pub serial: u64,
    pub packages: usize,
}

/// Fetches, verifies and (when it is new) stores one repository's index.
/// On any failure the stored index is left as it was.
pub fn update(ctx: &Ctx, repo: &Repo, keys: &[PublicKey]) -> Result<Updated> {
    let index_url = repo.url.join(index::INDEX_FILE);
    let sig_url = repo.url.join(index::SIGNATURE_FILE);
    ctx.detail(&format!("fetching {index_url}"));
    let bytes = http::get_bytes(&index_url, index::MAX_SIZE)?.ok_or_else(|| {
        Error::network(format!("{index_url}: not found: no repository index there"))
    })?;
    ctx.detail(&format!("fetching {sig_url}"));
    let sig = http::get_bytes(&sig_url, MAX_SIG)?.ok_or_else(|| {
        Error::integrity(format!(
            "no signature at {sig_url} (the index is not signed)"
        ))
    })?;
    let what = index_url.to_string();
    let index = verify(&bytes, &sig, keys, &what)?;

    let dir = ctx.layout.repo_state(&repo.name);
    let stored_bytes = files::read_capped(&dir.join(index::INDEX_FILE), index::MAX_SIZE)?;
    let last = last_serial(&dir, stored_bytes.as_deref())?;
    let freshness = check_serial(
        last.map(|s| (s, stored_bytes.as_deref())),
        index.serial,
        &bytes,
        &what,
    )?;
    let stored_sig = files::read_capped(&dir.join(index::SIGNATURE_FILE), MAX_SIG)?;
    if freshness != Freshness::Same || stored_sig.as_deref() != Some(&sig[..]) {
        store(&dir, &bytes, &sig, index.serial)?;
    }
    Ok(Updated {
        freshness,
        serial: index.serial,
        packages: index.packages.len(),
    })
}

/// The last verified serial: the `serial` file, or the stored index's when
/// that file is missing (read without verifying: it only raises the floor).
fn last_serial(dir: &Path, stored: Option<&[u8]>) -> Result<Option<u64>> {
    let file = dir.join(SERIAL_FILE);
    if let Some(bytes) = files::read_capped(&file, 64)? {
        let text = String::from_utf8_lossy(&bytes);
        return text.trim().parse().map(Some).map_err(|_| {
            Error::failure(format!(
                "{}: `{}` is not a serial number (remove the directory to start over)",
                file.display(),
                text.trim()
            ))
        });
    }
    #[derive(serde::Deserialize)]
    struct SerialOnly {
        serial: u64,
    }
    Ok(stored.and_then(|b| {
        serde_json::from_slice::<SerialOnly>(b)
            .ok()
            .map(|s| s.serial)
    }))
}

/// Stores a verified pair: signature, index, then the serial. A crash in
/// between leaves a pair that fails verification on load (which says to run
/// `warp update`, which repairs it), never an unverified index in use.
fn store(dir: &Path, bytes: &[u8], sig: &[u8], serial: u64) -> Result<()> {
    fsutil::atomic_write(&dir.join(index::SIGNATURE_FILE), sig)?;
    fsutil::atomic_write(&dir.join(index::INDEX_FILE), bytes)?;
    fsutil::atomic_write(&dir.join(SERIAL_FILE), format!("{serial}\n").as_bytes())
}

/// The stored index of `repo`, verified again; `None` when `warp update`
/// has not stored one yet.
pub fn load(repo: &Repo, dir: &Path, keys: &[PublicKey]) -> Result<Option<Index>> {
    let index_file = dir.join(index::INDEX_FILE);
    let Some(bytes) = files::read_capped(&index_file, index::MAX_SIZE)? else {
        return Ok(None);
    };
    let sig_file = dir.join(index::SIGNATURE_FILE);
    let sig = files::read_capped(&sig_file, MAX_SIG)?.ok_or_else(|| {
        Error::integrity(format!(
            "{}: missing, so the stored index of `{}` cannot be trusted; run `warp update`",
            sig_file.display(),
            repo.name
        ))
    })?;
    verify(&bytes, &sig, keys, &index_file.display().to_string())
        .map_err(|e| {
            Error::new(
                e.code,
                format!(
                    "{} (stored index of `{}`; run `warp update`)",
                    e.msg, repo.name
                ),
            )
        })
        .map(Some)
}

/// Every repository's stored, verified index. A repository never updated
/// is a warning (`warp update` first), not an error: the others still work.
pub fn load_all(ctx: &Ctx, repos: &[Repo], keys: &[PublicKey]) -> Result<Vec<RepoIndex>> {
    let mut out = Vec::new();
    for repo in repos {
        match load(repo, &ctx.layout.repo_state(&repo.name), keys)? {
            Some(index) => out.push(RepoIndex {
                repo: repo.clone(),
                index,
            }),
            // An absent file:// repository (the boot media's, not mounted)
            // is not one to update: `warp update` says so itself.
            None if repo.absent_dir().is_some() => ctx.detail(&format!(
                "repository `{}` is absent and has no index",
                repo.name
            )),
            // Not "run `warp update`" alone: the user may just have run it,
            // with this repository out of reach.
            None => ctx.warn(&format!(
                "repository `{}` has no index yet, so none of its packages are offered \
                 (`warp update` fetches it; it has not reached {} so far)",
                repo.name, repo.url
            )),
        }
    }
    Ok(out)
}

/// Forgets a repository's stored index and serial (`warp repo remove`).
pub fn forget(ctx: &Ctx, name: &str) -> Result<()> {
    let dir = ctx.layout.repo_state(name);
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("removing {}", dir.display())),
    }
}

/// The serial stored for a repository, for `warp repo list`.
pub fn stored_serial(ctx: &Ctx, name: &str) -> Result<Option<u64>> {
    let dir = ctx.layout.repo_state(name);
    let stored = files::read_capped(&dir.join(index::INDEX_FILE), index::MAX_SIZE)?;
    last_serial(&dir, stored.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use warp_format::signify::SecretKey;

    fn index(serial: u64) -> Vec<u8> {
        Index {
            format: 1,
            repo: "test".into(),
            arch: "x86_64".into(),
            serial,
            packages: vec![],
        }
        .to_bytes()
    }

    #[test]
    fn serial_rule() {
        let a = index(5);
        assert_eq!(check_serial(None, 5, &a, "u").unwrap(), Freshness::First);
        assert_eq!(
            check_serial(Some((4, None)), 5, &a, "u").unwrap(),
            Freshness::Newer { from: 4 }
        );
        assert_eq!(
            check_serial(Some((5, Some(&a))), 5, &a, "u").unwrap(),
            Freshness::Same
        );
        let e = check_serial(Some((6, Some(&a))), 5, &a, "u").unwrap_err();
        assert_eq!(e.code, Code::Integrity);
        assert!(
            e.msg
                .contains("index serial 5 is older than the last seen 6"),
            "{}",
            e.msg
        );
        let other = index(5).into_iter().chain(*b" ").collect::<Vec<_>>();
        let e = check_serial(Some((5, Some(&a))), 5, &other, "u").unwrap_err();
        assert!(e.msg.contains("content differs"), "{}", e.msg);
        assert!(check_serial(Some((5, None)), 5, &a, "u").is_err());
    }

    #[test]
    fn signatures() {
        let sk = SecretKey::from_random([1; 32], [1; 8]);
        let other = SecretKey::from_random([2; 32], [2; 8]);
        let keys = vec![sk.public()];
        let bytes = index(1);
        let sig = sk.sign(&bytes).to_file("test").into_bytes();
        assert_eq!(verify(&bytes, &sig, &keys, "i").unwrap().serial, 1);

        let mut tampered = bytes.clone();
        tampered[10] ^= 1;
        let e = verify(&tampered, &sig, &keys, "i").unwrap_err();
        assert_eq!(e.code, Code::Integrity);
        assert!(e.msg.contains("does not match"), "{}", e.msg);

        let foreign = other.sign(&bytes).to_file("x").into_bytes();
        let e = verify(&bytes, &foreign, &keys, "i").unwrap_err();
        assert!(
            e.msg.contains("0202020202020202") && e.msg.contains("not a trusted key"),
            "{}",
            e.msg
        );

        let e = verify(&bytes, b"garbage", &keys, "i").unwrap_err();
        assert!(e.msg.starts_with("i.sig: not a signify file"), "{}", e.msg);

        // Signed, but not an index warp reads.
        let bad = br#"{"format":2}"#;
        let sig = sk.sign(bad).to_file("test").into_bytes();
        assert_eq!(
            verify(bad, &sig, &keys, "i").unwrap_err().code,
            Code::Integrity
        );
    }
}
