//! The formats of `warp`, K1OS's package manager, in one place that both
//! sides share: `warp` (which reads and checks them) and `host-tools repo`
//! (which writes them), as `k1os_contract` is for stage 1. The prose
//! description is `docs/warp.md`.
//!
//! - [`version`]: version order (dpkg's) and constraints (`name>=1.2`).
//! - [`signify`]: Ed25519 keys and detached signatures in the signify/usign
//!   format (`signify -V` checks what we sign).
//! - [`paths`]: where a package may put files (`usr/local/`, `opt/`) and the
//!   shape of a path (no `..`, no absolute path, …).
//! - [`manifest`]: `.WARP/manifest.json`, the first member of an archive.
//! - [`index`]: `index.json`, the signed list of a repository's packages.
//! - [`archive`]: the `.warp` tar stream, written reproducibly and read with
//!   every entry checked against the manifest.
pub mod archive;
pub mod index;
pub mod manifest;
pub mod paths;
pub mod signify;
pub mod version;

/// The lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Whether `s` is 64 lower-case hex digits, as every sha256 in the formats is.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A package name: 1–64 of `a-z 0-9 - _ . +`, starting with a letter or digit.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.+".contains(&b))
}
