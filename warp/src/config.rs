//! The repository list and the trusted keys.
//!
//! Repositories: `etc/warp/repositories` when the administrator has one,
//! else the image's `usr/share/warp/repositories`; one `NAME URL` per line,
//! `#` starts a comment. Keys: every `*.pub` (a signify public key) in the
//! image's `usr/share/warp/keys/` and the administrator's
//! `etc/warp/keys.d/`.
use std::fs;
use std::path::{Path, PathBuf};

use warp_format::signify::{self, KeyNum, PublicKey};

use crate::context::Ctx;
use crate::error::{Context, Error, Result};
use crate::files;
use crate::fsutil;
use crate::http::Url;
use crate::layout::Layout;

/// The repository list is a handful of lines; anything bigger is not one.
const MAX_LIST: u64 = 64 << 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    pub name: String,
    pub url: Url,
}

impl Repo {
    /// For a `file://` repository whose directory does not exist, that
    /// directory: the repository is absent, not broken. The image's list
    /// names the boot media's repository (`file:///run/k1os/media/repo/`),
    /// which is not there when stage 1 released the media (`k1os.toram`)
    /// or the media carries no repository; `update` skips it with a line
    /// instead of failing.
    pub fn absent_dir(&self) -> Option<&str> {
        match &self.url {
            Url::File { path } if !Path::new(path).is_dir() => Some(path),
            _ => None,
        }
    }
}

/// A repository name: `[a-z0-9_-]+` (it names a directory under
/// `var/lib/warp/repos/`).
pub fn valid_repo_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// Parses a repository list; `file` names it in errors.
pub fn parse_repositories(text: &str, file: &Path) -> Result<Vec<Repo>> {
    let mut repos: Vec<Repo> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let at = || format!("{}:{}", file.display(), n + 1);
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(name), Some(url), None) = (words.next(), words.next(), words.next()) else {
            return Err(Error::failure(format!(
                "{}: `{line}`: expected `NAME URL`",
                at()
            )));
        };
        if !valid_repo_name(name) {
            return Err(Error::failure(format!(
                "{}: `{name}` is not a repository name (a-z, 0-9, `_` and `-`)",
                at()
            )));
        }
        let url = Url::parse(url).map_err(|e| Error::failure(format!("{}: {e}", at())))?;
        if repos.iter().any(|r| r.name == name) {
            return Err(Error::failure(format!(
                "{}: repository `{name}` is listed twice",
                at()
            )));
        }
        repos.push(Repo {
            name: name.into(),
            url,
        });
    }
    Ok(repos)
}

/// The repository list in use, and the file it came from (`None` when
/// neither file exists: no repositories).
pub fn load_repositories(layout: &Layout) -> Result<(Vec<Repo>, Option<PathBuf>)> {
    for file in [layout.repositories(), layout.default_repositories()] {
        if let Some(bytes) = files::read_capped(&file, MAX_LIST)? {
            let text = String::from_utf8(bytes)
                .map_err(|_| Error::failure(format!("{}: not UTF-8", file.display())))?;
            return Ok((parse_repositories(&text, &file)?, Some(file)));
        }
    }
    Ok((Vec::new(), None))
}

/// Writes the administrator's list (`etc/warp/repositories`) atomically.
pub fn write_repositories(layout: &Layout, repos: &[Repo]) -> Result<()> {
    let mut text = String::from("# warp's repositories: NAME URL (written by `warp repo`)\n");
    for r in repos {
        text.push_str(&format!("{} {}\n", r.name, r.url));
    }
    fsutil::atomic_write(&layout.repositories(), text.as_bytes())
}

/// Who put a key there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// `usr/share/warp/keys/`: shipped in the image, read-only for warp.
    Image,
    /// `etc/warp/keys.d/`: added by the administrator (`warp key add`).
    Admin,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Image => "image",
            Origin::Admin => "administrator",
        }
    }
}

#[derive(Clone, Debug)]
pub struct TrustedKey {
    pub key: PublicKey,
    pub file: PathBuf,
    pub origin: Origin,
}

/// Every trusted key, image keys first, each directory in name order. A
/// file that is not a valid key is a warning naming it (one bad file must
/// not lock the administrator out of every repository), never trusted.
pub fn load_keys(ctx: &Ctx) -> Result<Vec<TrustedKey>> {
    let mut keys = Vec::new();
    for (dir, origin) in [
        (ctx.layout.image_keys(), Origin::Image),
        (ctx.layout.admin_keys(), Origin::Admin),
    ] {
        for file in key_files(&dir)? {
            match read_key(&file) {
                Ok(key) => keys.push(TrustedKey { key, file, origin }),
                Err(e) => ctx.warn(&format!("ignoring {}: {e}", file.display())),
            }
        }
    }
    Ok(keys)
}

/// The public keys alone, for [`signify::verify_with_any`].
pub fn public_keys(keys: &[TrustedKey]) -> Vec<PublicKey> {
    keys.iter().map(|k| k.key.clone()).collect()
}

fn key_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx(|| format!("reading {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.ctx(|| format!("reading {}", dir.display()))?;
        let name = e.file_name();
        if name.to_string_lossy().ends_with(".pub") {
            out.push(dir.join(name));
        }
    }
    out.sort();
    Ok(out)
}

/// Reads and parses one signify public key file.
pub fn read_key(file: &Path) -> Result<PublicKey> {
    let bytes = files::read_capped(file, signify::MAX_FILE as u64)?
        .ok_or_else(|| Error::failure(format!("{}: no such file", file.display())))?;
    let text = String::from_utf8(bytes).map_err(|_| {
        Error::failure(format!(
            "{}: not a signify public key (not UTF-8)",
            file.display()
        ))
    })?;
    PublicKey::parse(&text).map_err(|e| Error::failure(format!("{}: {e}", file.display())))
}

/// `1a2b…` (16 hex digits) → the key number.
pub fn parse_keynum(s: &str) -> Option<KeyNum> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut k = [0u8; 8];
    for (i, byte) in k.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(KeyNum(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_lists() {
        let f = Path::new("etc/warp/repositories");
        let repos = parse_repositories(
            "# comment\n\nk1os http://10.0.2.100/  # trailing comment\n\
             media   file:///run/k1os/media/repo/\n",
            f,
        )
        .unwrap();
        assert_eq!(repos.len(), 2);
        assert_eq!(repos[0].name, "k1os");
        assert_eq!(repos[0].url.to_string(), "http://10.0.2.100/");
        assert_eq!(repos[1].url.to_string(), "file:///run/k1os/media/repo/");
        for (bad, why) in [
            ("k1os", "expected `NAME URL`"),
            ("k1os http://a/ extra", "expected `NAME URL`"),
            ("K1OS http://a/", "not a repository name"),
            ("../x http://a/", "not a repository name"),
            ("k1os https://a/", "HTTPS is not supported yet"),
            ("k1os ftp://a/", "not a repository URL"),
            ("a http://a/\na http://b/", "listed twice"),
        ] {
            let e = parse_repositories(bad, f).unwrap_err();
            assert!(e.msg.contains(why), "{bad}: {}", e.msg);
            assert!(e.msg.starts_with("etc/warp/repositories:"), "{}", e.msg);
        }
    }

    #[test]
    fn absent_file_repositories() {
        let d = tempfile::tempdir().unwrap();
        let repo = |url: String| Repo {
            name: "media".into(),
            url: Url::parse(&url).unwrap(),
        };
        let here = format!("file://{}/", d.path().display());
        assert_eq!(repo(here).absent_dir(), None);
        let gone = format!("file://{}/repo/", d.path().display());
        assert_eq!(
            repo(gone).absent_dir(),
            Some(format!("{}/repo/", d.path().display()).as_str())
        );
        // A file where the directory should be is not a repository either.
        fs::write(d.path().join("f"), "").unwrap();
        assert!(
            repo(format!("file://{}/f", d.path().display()))
                .absent_dir()
                .is_some()
        );
        // HTTP repositories are never absent: only a fetch can tell.
        assert_eq!(repo("http://10.0.2.100/".into()).absent_dir(), None);
    }

    #[test]
    fn list_round_trip_and_precedence() {
        let d = tempfile::tempdir().unwrap();
        let layout = Layout::new(d.path());
        assert_eq!(load_repositories(&layout).unwrap(), (vec![], None));
        fs::create_dir_all(d.path().join("usr/share/warp")).unwrap();
        fs::write(layout.default_repositories(), "k1os http://h/\n").unwrap();
        let (repos, from) = load_repositories(&layout).unwrap();
        assert_eq!(from, Some(layout.default_repositories()));
        let mut more = repos.clone();
        more.push(Repo {
            name: "local".into(),
            url: Url::parse("file:///srv/repo/").unwrap(),
        });
        write_repositories(&layout, &more).unwrap();
        let (back, from) = load_repositories(&layout).unwrap();
        assert_eq!(from, Some(layout.repositories()));
        assert_eq!(back, more);
    }

    #[test]
    fn keys() {
        let d = tempfile::tempdir().unwrap();
        let ctx = Ctx {
            layout: Layout::new(d.path()),
            dry_run: false,
            quiet: true,
            verbose: false,
            wait: false,
        };
        let sk = signify::SecretKey::from_random([7; 32], [1, 2, 3, 4, 5, 6, 7, 8]);
        fs::create_dir_all(ctx.layout.image_keys()).unwrap();
        fs::create_dir_all(ctx.layout.admin_keys()).unwrap();
        fs::write(
            ctx.layout.image_keys().join("k1os.pub"),
            sk.public().to_file("k1os"),
        )
        .unwrap();
        fs::write(ctx.layout.admin_keys().join("broken.pub"), "garbage").unwrap();
        fs::write(ctx.layout.admin_keys().join("notakey.txt"), "garbage").unwrap();
        let keys = load_keys(&ctx).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].origin, Origin::Image);
        assert_eq!(keys[0].key.keynum.to_string(), "0102030405060708");
        assert_eq!(parse_keynum("0102030405060708"), Some(keys[0].key.keynum));
        assert_eq!(parse_keynum("01020304050607"), None);
        assert_eq!(parse_keynum("010203040506070g"), None);
    }
}
