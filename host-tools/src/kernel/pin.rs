//! The pin: `kernel/pin.toml`, the one kernel source K1OS builds, and
//! `./k1os kernel pin`, which rewrites it from a tarball (how a maintainer
//! moves K1OS to another kernel on purpose, in one commit).
use anyhow::{Context, Result, bail};
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::{makefile_version, pin_path};
use crate::flat_toml::{self, Value};
use crate::hash::{is_sha256, sha256_file};
use crate::run::{self, Cmd};

/// Where Debian 12's `linux-source-6.1` installs its tarball: what `kernel
/// pin` reads when given no `--kernel-source`.
pub const DEFAULT_TARBALL: &str = "/usr/src/linux-source-6.1.tar.xz";

/// The pinned kernel source, from `kernel/pin.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub version: String,
    /// The Debian package that installs the tarball at `path`, and its
    /// version; both empty when the pinned tarball comes from no Debian
    /// package (`kernel pin` on another tarball).
    pub debian_package: String,
    pub debian_version: String,
    pub tarball: String,
    pub path: PathBuf,
    pub sha256: String,
    pub upstream: String,
    /// KBUILD_BUILD_TIMESTAMP, as seconds since 1970.
    pub build_epoch: i64,
    /// The file's text: part of the cache key.
    pub(super) text: String,
    /// The file it was read from, for messages.
    pub(super) file: PathBuf,
}
impl Pin {
    /// `kernel/pin.toml`.
    pub fn load() -> Result<Pin> {
        Pin::load_from(&pin_path())
    }

    /// A pin file elsewhere (`kernel pin --pin FILE`, tests).
    pub fn load_from(path: &Path) -> Result<Pin> {
        let text =
            fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut pin = Pin::parse(&text).with_context(|| format!("parsing {}", path.display()))?;
        pin.file = path.to_path_buf();
        Ok(pin)
    }

    /// The file this pin was read from (`kernel/pin.toml` unless loaded from
    /// elsewhere).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The Debian package and version the pinned tarball comes from, if any.
    pub fn debian(&self) -> Option<(&str, &str)> {
        (!self.debian_package.is_empty() && !self.debian_version.is_empty())
            .then_some((self.debian_package.as_str(), self.debian_version.as_str()))
    }

    /// Parses the pin (with [`flat_toml`]): every key is a string, except
    /// `build_epoch`, a number of seconds (an integer or a string of one).
    /// A missing, unknown or mistyped key is an error; all are reported at
    /// once, one per line.
    pub fn parse(text: &str) -> Result<Pin> {
        let mut table = flat_toml::parse(text)?;
        let mut problems = Vec::new();
        let mut take = |key: &str| table.take_required_str(key, &mut problems);
        let version = take("version");
        let debian_package = take("debian_package");
        let debian_version = take("debian_version");
        let tarball = take("tarball");
        let path = PathBuf::from(take("path"));
        let sha256 = take("sha256").to_ascii_lowercase();
        let upstream = take("upstream");
        let build_epoch = match table.take("build_epoch") {
            None => {
                problems.push("the key `build_epoch` is missing".to_string());
                0
            }
            Some(entry) => match &entry.value {
                Value::Str(v) | Value::Int(v) => v.parse().unwrap_or_else(|_| {
                    problems.push(format!(
                        "line {}: build_epoch `{v}` is not a number",
                        entry.line
                    ));
                    0
                }),
                _ => {
                    problems.push(format!(
                        "line {}: `build_epoch` must be a number of seconds",
                        entry.line
                    ));
                    0
                }
            },
        };
        table.unknown_keys(&mut problems);
        if !sha256.is_empty() && !is_sha256(&sha256) {
            problems.push(format!("sha256 `{sha256}` is not 64 hex digits"));
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(Pin {
            version,
            debian_package,
            debian_version,
            tarball,
            path,
            sha256,
            upstream,
            build_epoch,
            text: text.to_string(),
            file: pin_path(),
        })
    }
}

// ---------------------------------------------------------------------------
// What a tarball says about itself

/// Everything `kernel pin` writes into pin.toml, read from a tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarballFacts {
    /// The tarball, as an absolute path.
    pub path: PathBuf,
    /// Its top Makefile's VERSION.PATCHLEVEL.SUBLEVEL(EXTRAVERSION).
    pub version: String,
    pub sha256: String,
    /// The newest mtime of its entries (see [`newest_mtime`]).
    pub build_epoch: i64,
    /// The installed Debian package that owns the file, and its version.
    pub debian: Option<(String, String)>,
}

/// Reads a kernel tarball: its top Makefile's version, its sha256, the newest
/// mtime inside it and the Debian package that installed it, if any.
pub fn inspect_tarball(path: &Path) -> Result<TarballFacts> {
    if !path.exists() {
        bail!(
            "the kernel source {} (--kernel-source) does not exist: pass the kernel tarball to \
             pin, for example {DEFAULT_TARBALL} (`apt-get install linux-source-6.1`, or \
             `./k1os doctor --install`)",
            path.display()
        );
    }
    if path.is_dir() {
        bail!(
            "{} is a directory: `kernel pin` pins a tarball (pin.toml records the sha256 of a \
             file); pack the tree, or build it unpinned with `./k1os kernel --kernel-source DIR`",
            path.display()
        );
    }
    let path = fs::canonicalize(path).with_context(|| format!("resolving {}", path.display()))?;
    let version = tarball_version(&path)?;
    let sha256 = sha256_file(&path)?;
    let build_epoch = newest_mtime(&path)?;
    let debian = debian_owner(&path)?;
    Ok(TarballFacts {
        path,
        version,
        sha256,
        build_epoch,
        debian,
    })
}

/// The version in a kernel tarball's top Makefile (`<top>/Makefile`, read
/// with `tar --occurrence=1`, so tar stops there instead of decompressing the
/// whole archive: about half a second for Debian's tarball).
pub fn tarball_version(path: &Path) -> Result<String> {
    let makefile = Cmd::new("tar")
        .arg("-xOf")
        .arg(path)
        .args([
            "--wildcards",
            "--no-wildcards-match-slash",
            "--occurrence=1",
            "*/Makefile",
        ])
        .read()
        .with_context(|| {
            format!(
                "{} is not a kernel tarball: it has no top-level <dir>/Makefile",
                path.display()
            )
        })?;
    makefile_version(&makefile).with_context(|| {
        format!(
            "{}: its top Makefile has no VERSION/PATCHLEVEL/SUBLEVEL lines: not a kernel tarball",
            path.display()
        )
    })
}

/// The newest modification time of the entries of a tarball, in seconds since
/// 1970, from `tar --full-time -tv` in UTC (the whole archive is read: about
/// 15 s for Debian's tarball).
///
/// Why this and not the tarball file's own mtime: it is a property of the
/// bytes the sha256 pins, so anyone re-pinning the same tarball gets the same
/// `build_epoch`, whereas the file's mtime depends on how it reached the disk
/// (`cp`, a download, a backup restore).
pub fn newest_mtime(path: &Path) -> Result<i64> {
    let listing = Cmd::new("tar")
        .arg("--full-time")
        .arg("-tvf")
        .arg(path)
        .env("TZ", "UTC")
        .env("LC_ALL", "C")
        .read()?;
    listing
        .lines()
        .filter_map(listing_mtime)
        .max()
        .with_context(|| format!("{}: no entry with a date in `tar -tv`", path.display()))
}

/// The mtime of one `tar --full-time -tv` line (`-rw-r--r-- 0/0 59 2026-11-06
/// 18:15:16 linux/.cocciconfig`), read as UTC.
pub fn listing_mtime(line: &str) -> Option<i64> {
    let words: Vec<&str> = line.split_whitespace().collect();
    // The date is the first word shaped like one; the name comes after it.
    let at = words.iter().take(6).position(|w| parse_date(w).is_some())?;
    let (y, m, d) = parse_date(words[at])?;
    let time = words.get(at + 1)?;
    let time = time.split('.').next()?; // tar may print fractions of a second
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, s] = hms[..] else { return None };
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + s)
}

fn parse_date(word: &str) -> Option<(i64, i64, i64)> {
    let parts: Vec<&str> = word.split('-').collect();
    let [y, m, d] = parts[..] else { return None };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    Some((y.parse().ok()?, m.parse().ok()?, d.parse().ok()?))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm, the
/// inverse of `format_utc`'s).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The installed Debian package that owns `path` (`dpkg -S`) and its version
/// (`doctor::installed_version`); `None` on a host without dpkg, for a file no
/// package installed, or when that package is not fully installed.
fn debian_owner(path: &Path) -> Result<Option<(String, String)>> {
    if run::which("dpkg").is_none() {
        return Ok(None);
    }
    let out = Cmd::new("dpkg").arg("-S").arg(path).output_unchecked()?;
    if !out.success {
        return Ok(None);
    }
    let Some(package) = dpkg_search_package(&out.stdout, path) else {
        return Ok(None);
    };
    Ok(crate::doctor::installed_version(&package).map(|version| (package, version)))
}

/// The package of `dpkg -S`'s line for exactly `path` (`pkg[:arch][, other]:
/// /path`); a diversion line (`diversion by …`) is skipped.
pub fn dpkg_search_package(stdout: &str, path: &Path) -> Option<String> {
    let wanted = path.to_string_lossy();
    stdout.lines().find_map(|line| {
        let (packages, file) = line.rsplit_once(": ")?;
        if file.trim() != wanted || packages.starts_with("diversion by") {
            return None;
        }
        let first = packages.split(',').next()?.trim();
        let name = first.split(':').next()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    })
}

// ---------------------------------------------------------------------------
// Rewriting pin.toml

/// One field `kernel pin` changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: &'static str,
    pub old: String,
    pub new: String,
}

/// What re-pinning did to the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub text: String,
    pub changes: Vec<Change>,
    /// How many mentions of the old version in comments now name the new one.
    pub comment_mentions: usize,
}

/// kernel.org's URL of the upstream release `version` (`6.1.192`), or `None`
/// for a version kernel.org does not publish so (`6.8.0-rc1`, `6.1`).
pub fn upstream_url(version: &str) -> Option<String> {
    let parts: Vec<&str> = version.split('.').collect();
    if parts.len() < 2
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    // kernel.org calls x.y.0 `linux-x.y`.
    let name = version.strip_suffix(".0").unwrap_or(version);
    Some(format!(
        "https://cdn.kernel.org/pub/linux/kernel/v{}.x/linux-{name}.tar.xz",
        parts[0]
    ))
}

/// The new text of `pin` (read from its file) for the tarball `facts`: each
/// value that changes is replaced where it stands (the spans the reader
/// found), written the way it was (a string, or a bare integer); comments,
/// blank lines and the order stay, except that mentions of the old version in
/// comment lines follow the new one. `upstream` follows the version when it
/// was kernel.org's URL of the old version.
pub fn rewrite(pin: &Pin, facts: &TarballFacts) -> Rewrite {
    let (debian_package, debian_version) = facts.debian.clone().unwrap_or_default();
    let upstream = match (upstream_url(&pin.version), upstream_url(&facts.version)) {
        (Some(old), Some(new)) if old == pin.upstream => new,
        _ => pin.upstream.clone(),
    };
    let tarball = facts
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new: [(&'static str, String); 8] = [
        ("version", facts.version.clone()),
        ("debian_package", debian_package),
        ("debian_version", debian_version),
        ("tarball", tarball),
        ("path", facts.path.display().to_string()),
        ("sha256", facts.sha256.clone()),
        ("upstream", upstream),
        ("build_epoch", facts.build_epoch.to_string()),
    ];
    let table = flat_toml::parse(&pin.text).expect("Pin::parse read this text");
    // (where, what replaces it, the change), in the file's order.
    let mut edits: Vec<(Range<usize>, String, Change)> = Vec::new();
    for (key, value_new) in new {
        let Some(entry) = table.get(key) else {
            continue;
        };
        let old = match &entry.value {
            Value::Str(s) | Value::Int(s) => s.clone(),
            _ => continue,
        };
        if old == value_new {
            continue;
        }
        let written = match entry.value {
            Value::Int(_) => value_new.clone(),
            _ => flat_toml::string(&value_new),
        };
        edits.push((
            entry.span.clone(),
            written,
            Change {
                key,
                old,
                new: value_new,
            },
        ));
    }
    edits.sort_by_key(|(span, ..)| span.start);
    let mut values = pin.text.clone();
    for (span, written, _) in edits.iter().rev() {
        values.replace_range(span.clone(), written);
    }
    let mut comment_mentions = 0;
    let mut text = String::with_capacity(values.len());
    for line in values.split_inclusive('\n') {
        if line.trim_start().starts_with('#') && pin.version != facts.version {
            let (replaced, n) = replace_version(line, &pin.version, &facts.version);
            comment_mentions += n;
            text += &replaced;
        } else {
            text += line;
        }
    }
    Rewrite {
        text,
        changes: edits.into_iter().map(|(_, _, change)| change).collect(),
        comment_mentions,
    }
}

/// `line` with every `old` version that is not part of a longer version
/// (`6.1.19` in `6.1.192`) replaced by `new`, and how many were.
fn replace_version(line: &str, old: &str, new: &str) -> (String, usize) {
    let mut out = String::with_capacity(line.len());
    let mut n = 0;
    let mut copied = 0;
    for (at, _) in line.match_indices(old) {
        let before = line[..at].chars().next_back();
        let mut after = line[at + old.len()..].chars();
        let longer = before.is_some_and(|c| c.is_ascii_digit() || c == '.')
            || match after.next() {
                Some(c) if c.is_ascii_digit() => true,
                Some('.') => after.next().is_some_and(|c| c.is_ascii_digit()),
                _ => false,
            };
        if !longer {
            out += &line[copied..at];
            out += new;
            copied = at + old.len();
            n += 1;
        }
    }
    out += &line[copied..];
    (out, n)
}

/// Writes `text` to `path` through a temporary file and a rename, so that an
/// interrupted `kernel pin` leaves the old pin whole.
pub fn write_atomically(path: &Path, text: &str) -> Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::tests::tiny_tarball;

    #[test]
    fn the_pin_file_parses() {
        let pin = Pin::load().unwrap();
        assert_eq!(pin.version, "6.1.192");
        assert_eq!(pin.tarball, "linux-source-6.1.tar.xz");
        assert_eq!(pin.path, Path::new(DEFAULT_TARBALL));
        assert_eq!(
            pin.sha256,
            "4d415b3d364834fd818270e88813e90323bbfce4f519a0e6bd4940ddcd7df693"
        );
        assert_eq!(pin.file(), pin_path());
        assert_eq!(pin.debian(), Some(("linux-source-6.1", "6.1.192-2")));
        assert!(Pin::parse("version = \"1\"\n").is_err());
    }

    #[test]
    fn a_bad_pin_names_every_problem_with_its_line() {
        let err = Pin::parse(
            "version = \"6.1.192\"\ndebian_package = 6\ntarball = \"t\"\npath = \"/p\"\n\
             sha256 = \"abc\"\nupstream = \"u\"\nbuild_epoch = \"soon\"\ncolour = \"red\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err.lines().collect::<Vec<_>>(),
            [
                "line 2: `debian_package` must be a string",
                "the key `debian_version` is missing",
                "line 7: build_epoch `soon` is not a number",
                "line 8: unknown key `colour`",
                "sha256 `abc` is not 64 hex digits",
            ]
        );
        let err = Pin::parse("version = \"6.1.192\"\nversion = \"6.1.193\"\n").unwrap_err();
        assert!(err.to_string().starts_with("line 2: "), "{err}");
    }

    #[test]
    fn rewriting_keeps_trailing_comments_and_an_integer_epoch() {
        let old = Pin::load().unwrap();
        let text = old
            .text
            .replace(
                "build_epoch = \"1794824260\"",
                "build_epoch = 1794824260 # seconds",
            )
            .replace(
                "debian_version = \"6.1.192-2\"",
                "debian_version = \"6.1.192-2\" # 6.1.192 in a trailing comment",
            );
        let old = Pin::parse(&text).unwrap();
        assert_eq!(old.build_epoch, 1_794_824_260);
        let rewrite = rewrite(
            &old,
            &facts("6.1.200", Some(("linux-source-6.1", "6.1.200-1"))),
        );
        assert!(
            rewrite
                .text
                .contains("\nbuild_epoch = 1800000000 # seconds\n"),
            "{}",
            rewrite.text
        );
        assert!(
            rewrite
                .text
                .contains("\ndebian_version = \"6.1.200-1\" # 6.1.192 in a trailing comment\n"),
            "only comment lines follow the version: {}",
            rewrite.text
        );
        let new = Pin::parse(&rewrite.text).unwrap();
        assert_eq!(new.build_epoch, 1_800_000_000);
        assert_eq!(new.version, "6.1.200");
    }

    #[test]
    fn tar_listing_dates_are_read_as_utc() {
        let line = "-rw-r--r-- 0/0           73943 2026-11-16 10:17:40 linux-source-6.1/Makefile";
        assert_eq!(listing_mtime(line), Some(1_794_824_260));
        let line = "drwxr-xr-x root/root 0 1970-01-01 00:00:00 a dir/";
        assert_eq!(listing_mtime(line), Some(0));
        let line = "lrwxrwxrwx 0/0 0 2000-02-29 00:00:00.5 l -> 2001-01-01 00:00:00";
        assert_eq!(
            listing_mtime(line),
            Some(951_782_400),
            "the first date, fraction dropped"
        );
        let line = "crw-r--r-- 0/0 1,3 2023-11-14 22:13:20 dev/null";
        assert_eq!(listing_mtime(line), Some(1_700_000_000));
        assert_eq!(
            listing_mtime("tar: Removing leading `/' from member names"),
            None
        );
        for epoch in [0, 951_782_400, 1_700_000_000, 1_794_824_260] {
            let days = epoch / 86_400;
            // format_utc and days_from_civil are inverses.
            let text = crate::kernel::format_utc(epoch);
            let words: Vec<&str> = text.split_whitespace().collect();
            let month = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ]
            .iter()
            .position(|m| *m == words[1])
            .unwrap() as i64
                + 1;
            let day: i64 = words[2].parse().unwrap();
            let year: i64 = words[5].parse().unwrap();
            assert_eq!(days_from_civil(year, month, day), days, "{text}");
        }
    }

    #[test]
    fn dpkg_search_output_is_read() {
        let path = Path::new(DEFAULT_TARBALL);
        let out = "linux-source-6.1: /usr/src/linux-source-6.1.tar.xz\n";
        assert_eq!(
            dpkg_search_package(out, path).as_deref(),
            Some("linux-source-6.1")
        );
        let out = "diversion by foo from: /usr/src/linux-source-6.1.tar.xz\n\
                   linux-source-6.1:all, other: /usr/src/linux-source-6.1.tar.xz\n";
        assert_eq!(
            dpkg_search_package(out, path).as_deref(),
            Some("linux-source-6.1")
        );
        let out = "linux-source-6.1: /usr/src/linux-source-6.1.tar.xz.sig\n";
        assert_eq!(dpkg_search_package(out, path), None, "another file");
    }

    #[test]
    fn upstream_urls_follow_kernel_org() {
        assert_eq!(
            upstream_url("6.1.192").as_deref(),
            Some("https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.192.tar.xz")
        );
        assert_eq!(
            upstream_url("6.2.0").as_deref(),
            Some("https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.2.tar.xz")
        );
        assert_eq!(upstream_url("6.8.0-rc1"), None);
    }

    #[test]
    fn versions_in_comments_are_replaced_whole() {
        let line = "# upstream 6.1.19, linux-6.1.19/ and 6.1.192 and 16.1.19 and 6.1.19.1.";
        assert_eq!(
            replace_version(line, "6.1.19", "6.1.200"),
            (
                "# upstream 6.1.200, linux-6.1.200/ and 6.1.192 and 16.1.19 and 6.1.19.1."
                    .to_string(),
                2
            )
        );
    }

    fn facts(version: &str, debian: Option<(&str, &str)>) -> TarballFacts {
        TarballFacts {
            path: PathBuf::from(DEFAULT_TARBALL),
            version: version.to_string(),
            sha256: "ab".repeat(32),
            build_epoch: 1_800_000_000,
            debian: debian.map(|(p, v)| (p.to_string(), v.to_string())),
        }
    }

    #[test]
    fn rewriting_changes_the_values_in_place_and_keeps_the_comments() {
        let old = Pin::load().unwrap();
        let rewrite = rewrite(
            &old,
            &facts("6.1.200", Some(("linux-source-6.1", "6.1.200-1"))),
        );
        let changed: Vec<(&str, &str, &str)> = rewrite
            .changes
            .iter()
            .map(|c| (c.key, c.old.as_str(), c.new.as_str()))
            .collect();
        let new_sha = "ab".repeat(32);
        assert_eq!(
            changed,
            [
                ("version", "6.1.192", "6.1.200"),
                ("debian_version", "6.1.192-2", "6.1.200-1"),
                ("sha256", old.sha256.as_str(), new_sha.as_str()),
                (
                    "upstream",
                    "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.192.tar.xz",
                    "https://cdn.kernel.org/pub/linux/kernel/v6.x/linux-6.1.200.tar.xz"
                ),
                ("build_epoch", "1794824260", "1800000000"),
            ]
        );
        let old_lines: Vec<&str> = old.text.lines().collect();
        let new_lines: Vec<&str> = rewrite.text.lines().collect();
        assert_eq!(old_lines.len(), new_lines.len(), "no line added or dropped");
        for (o, n) in old_lines.iter().zip(&new_lines) {
            if o.starts_with('#') || o.is_empty() {
                assert_eq!(*n, o.replace("6.1.192", "6.1.200"), "comments stay");
            }
        }
        assert!(rewrite.comment_mentions > 0);
        assert!(rewrite.text.contains("\nversion = \"6.1.200\"\n"));
        assert!(rewrite.text.contains("\nbuild_epoch = \"1800000000\"\n"));
        let new = Pin::parse(&rewrite.text).unwrap();
        assert_eq!(new.sha256, new_sha);
        assert_eq!(new.debian(), Some(("linux-source-6.1", "6.1.200-1")));

        let again = super::rewrite(
            &new,
            &facts("6.1.200", Some(("linux-source-6.1", "6.1.200-1"))),
        );
        assert!(again.changes.is_empty(), "{:?}", again.changes);
        assert_eq!(again.text, rewrite.text);
    }

    #[test]
    fn a_tarball_of_no_debian_package_empties_the_debian_fields() {
        let old = Pin::load().unwrap();
        let rewrite = rewrite(&old, &facts("6.1.192", None));
        let new = Pin::parse(&rewrite.text).unwrap();
        assert_eq!(new.debian(), None);
        assert_eq!(new.debian_package, "");
        assert_eq!(
            rewrite.comment_mentions, 0,
            "same version: comments untouched"
        );
    }

    #[test]
    fn a_tarball_is_inspected() {
        let dir = tempfile::tempdir().unwrap();
        let tarball = tiny_tarball(
            dir.path(),
            "linux-6.1.999.tar.xz",
            "linux-6.1.999",
            "6.1.999",
        );
        let facts = inspect_tarball(&tarball).unwrap();
        assert_eq!(facts.version, "6.1.999");
        assert_eq!(facts.sha256, sha256_file(&tarball).unwrap());
        assert_eq!(
            facts.build_epoch, 1_700_000_000,
            "the newest mtime inside, not the file's"
        );
        assert_eq!(
            facts.debian, None,
            "no Debian package owns a temporary file"
        );
        assert_eq!(facts.path, fs::canonicalize(&tarball).unwrap());

        let err = inspect_tarball(&dir.path().join("none.tar.xz")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = inspect_tarball(dir.path()).unwrap_err();
        assert!(err.to_string().contains("is a directory"), "{err}");
        let text = dir.path().join("notes.txt");
        fs::write(&text, "hello").unwrap();
        let err = format!("{:#}", inspect_tarball(&text).unwrap_err());
        assert!(err.contains("is not a kernel tarball"), "{err}");
    }
}
