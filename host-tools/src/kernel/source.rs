//! Where the kernel tree comes from: the pinned tarball, verified against
//! `kernel/pin.toml`, or `--kernel-source` (another tarball, or an unpacked
//! tree).
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};

use super::{Pin, pin};
use crate::hash::sha256_file;
use crate::ui;

/// Where the kernel tree comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A tarball (the pinned one or `--source FILE`), with its sha256.
    Tarball { path: PathBuf, sha256: String },
    /// An unpacked, clean tree (`--source DIR`), with its Makefile's version.
    Dir { path: PathBuf, version: String },
}

impl Source {
    /// What identifies the tree in the cache key. A directory is identified by
    /// its path and version only: edits inside it are not noticed.
    pub(super) fn identity(&self) -> String {
        match self {
            Source::Tarball { sha256, .. } => format!("tarball sha256={sha256}"),
            Source::Dir { path, version } => {
                format!("dir path={} version={version}", path.display())
            }
        }
    }
}

/// What `kernel --kernel-source PATH` (and `iso --kernel-source`) says when
/// PATH does not exist.
pub fn missing_source_message(source: &Path) -> String {
    format!(
        "the kernel source {} (--kernel-source) does not exist: pass a kernel tarball \
         (linux-*.tar.xz) or an unpacked kernel tree, or leave --kernel-source out to build \
         the pinned source (kernel/pin.toml)",
        source.display()
    )
}

/// Resolves `--kernel-source` (or the pinned tarball when `None`, verified by
/// [`verify_pinned`]).
pub fn resolve_source(pin: &Pin, source: Option<&Path>) -> Result<Source> {
    let Some(source) = source else {
        return verify_pinned(pin);
    };
    if !source.exists() {
        bail!("{}", missing_source_message(source));
    }
    let meta = fs::metadata(source)
        .with_context(|| format!("kernel source {} (--kernel-source)", source.display()))?;
    let path =
        fs::canonicalize(source).with_context(|| format!("resolving {}", source.display()))?;
    if meta.is_dir() {
        let makefile = path.join("Makefile");
        let text = fs::read_to_string(&makefile).with_context(|| {
            format!(
                "{} is not a kernel source tree: reading {}",
                path.display(),
                makefile.display()
            )
        })?;
        let version = makefile_version(&text).with_context(|| {
            format!(
                "{}: no VERSION/PATCHLEVEL/SUBLEVEL lines: not a kernel Makefile",
                makefile.display()
            )
        })?;
        if version != pin.version {
            ui::note(&format!(
                "{} is Linux {version}, not the pinned {}",
                path.display(),
                pin.version
            ));
        }
        Ok(Source::Dir { path, version })
    } else {
        let sha256 = sha256_file(&path)?;
        if sha256 != pin.sha256 {
            // Read now, so that a file that is no kernel tarball stops here
            // rather than after extracting it.
            let version = pin::tarball_version(&path)?;
            ui::note(&format!(
                "{} (Linux {version}) is not the pinned tarball (sha256 {sha256}): \
                 building it as given, in a cache entry of its own",
                path.display()
            ));
        }
        Ok(Source::Tarball { path, sha256 })
    }
}

/// What `kernel` checks before it builds the pinned source: the tarball at
/// the pin's `path` exists, has the pinned sha256, and its top Makefile says
/// the pinned version. Each failure says what to do: install the pinned
/// version, re-pin on purpose (`./k1os kernel pin`), or build another source.
pub fn verify_pinned(pin: &Pin) -> Result<Source> {
    let path = &pin.path;
    let pin_file = pin.file().display();
    let install = match pin.debian() {
        Some((pkg, debver)) => format!(
            "install the pinned version with `./k1os doctor --install` or \
             `apt-get install {pkg}={debver}`"
        ),
        None => format!(
            "put the pinned tarball back at {} (it comes from no Debian package)",
            path.display()
        ),
    };
    let elsewhere = format!(
        "to build another source once, pass --kernel-source TARBALL|DIR (for example the \
         upstream {})",
        pin.upstream
    );
    if !path.exists() {
        bail!(
            "the pinned kernel source {} is missing (Linux {}, sha256 {}): {install}; or {elsewhere}",
            path.display(),
            pin.version,
            pin.sha256
        );
    }
    let actual = sha256_file(path)?;
    if actual != pin.sha256 {
        let probably = match pin.debian() {
            Some((pkg, debver)) => format!(
                " The installed {pkg} is probably not version {debver} (Debian updates it in \
                 place)."
            ),
            None => String::new(),
        };
        bail!(
            "{} is not the tarball {pin_file} pins: sha256 mismatch: expected sha256 {}, \
             actual sha256 {actual}.{probably} Either {install}; or move K1OS to the installed \
             kernel on purpose: `./k1os kernel pin` rewrites {pin_file} from it (version, \
             Debian version, sha256, build epoch), to commit alone; or {elsewhere}",
            path.display(),
            pin.sha256,
        );
    }
    let version = pin::tarball_version(path)?;
    if version != pin.version {
        bail!(
            "{} has the pinned sha256 but is Linux {version}, while {pin_file} says version = \
             \"{}\": the pin was edited by hand; `./k1os kernel pin --kernel-source {}` \
             rewrites it from the tarball",
            path.display(),
            pin.version,
            path.display()
        );
    }
    Ok(Source::Tarball {
        path: path.clone(),
        sha256: actual,
    })
}

/// `6.1.192` from a kernel Makefile's VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION lines.
pub fn makefile_version(makefile: &str) -> Option<String> {
    let get = |key: &str| {
        makefile.lines().take(20).find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let extra = get("EXTRAVERSION").unwrap_or_default();
    Some(format!(
        "{}.{}.{}{extra}",
        get("VERSION")?,
        get("PATCHLEVEL")?,
        get("SUBLEVEL")?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::tests::tiny_tarball;

    fn pin_at(path: &Path, sha256: &str) -> Pin {
        Pin {
            path: path.to_path_buf(),
            sha256: sha256.to_string(),
            ..Pin::load().unwrap()
        }
    }

    #[test]
    fn a_missing_pinned_tarball_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linux-source-6.1.tar.xz");
        let sha = "0".repeat(64);
        let err = resolve_source(&pin_at(&path, &sha), None)
            .unwrap_err()
            .to_string();
        for needle in [
            &path.display().to_string(),
            "missing",
            &sha,
            "./k1os doctor --install",
            "apt-get install linux-source-6.1=6.1.192-2",
            "--kernel-source",
        ] {
            assert!(err.contains(needle), "`{needle}` not in: {err}");
        }
    }

    #[test]
    fn a_pinned_tarball_with_another_checksum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = tiny_tarball(
            dir.path(),
            "linux-source-6.1.tar.xz",
            "linux-source-6.1",
            "6.1.192",
        );
        let actual = sha256_file(&path).unwrap();
        let expected = "0".repeat(64);
        let err = resolve_source(&pin_at(&path, &expected), None)
            .unwrap_err()
            .to_string();
        for needle in [
            &path.display().to_string(),
            "sha256 mismatch",
            &format!("expected sha256 {expected}"),
            &format!("actual sha256 {actual}"),
            "./k1os doctor --install",
            "`./k1os kernel pin`",
            "--kernel-source",
        ] {
            assert!(err.contains(needle), "`{needle}` not in: {err}");
        }
        let ok = resolve_source(&pin_at(&path, &actual), None).unwrap();
        assert_eq!(
            ok,
            Source::Tarball {
                path: path.clone(),
                sha256: actual.clone()
            }
        );
        // The right bytes, but a version edited by hand in pin.toml.
        let edited = Pin {
            version: "6.1.191".to_string(),
            ..pin_at(&path, &actual)
        };
        let err = verify_pinned(&edited).unwrap_err().to_string();
        assert!(
            err.contains("has the pinned sha256 but is Linux 6.1.192")
                && err.contains("kernel pin"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_or_bogus_kernel_source_is_refused_with_a_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let pin = Pin::load().unwrap();
        let missing = dir.path().join("nonexistent");
        let err = resolve_source(&pin, Some(&missing)).unwrap_err();
        assert_eq!(err.to_string(), missing_source_message(&missing));
        assert!(
            err.to_string()
                .contains("(--kernel-source) does not exist: pass a kernel tarball")
        );
        let not_a_tarball = dir.path().join("notes.txt");
        fs::write(&not_a_tarball, "hello").unwrap();
        let err = format!(
            "{:#}",
            resolve_source(&pin, Some(&not_a_tarball)).unwrap_err()
        );
        assert!(err.contains("is not a kernel tarball"), "{err}");
        let other = tiny_tarball(
            dir.path(),
            "linux-6.1.999.tar.xz",
            "linux-6.1.999",
            "6.1.999",
        );
        let source = resolve_source(&pin, Some(&other)).unwrap();
        assert!(matches!(source, Source::Tarball { .. }), "built as given");
    }

    #[test]
    fn a_source_dir_is_identified_by_path_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let pin = Pin::load().unwrap();
        assert!(
            resolve_source(&pin, Some(dir.path())).is_err(),
            "no Makefile: not a kernel tree"
        );
        fs::write(
            dir.path().join("Makefile"),
            "VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n",
        )
        .unwrap();
        let source = resolve_source(&pin, Some(dir.path())).unwrap();
        let path = fs::canonicalize(dir.path()).unwrap();
        assert_eq!(
            source.identity(),
            format!("dir path={} version=6.1.192", path.display())
        );
    }

    #[test]
    fn makefile_versions() {
        let mk = "# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\nEXTRAVERSION =\nNAME = x\n";
        assert_eq!(makefile_version(mk).as_deref(), Some("6.1.192"));
        let mk = "VERSION = 6\nPATCHLEVEL = 8\nSUBLEVEL = 0\nEXTRAVERSION = -rc1\n";
        assert_eq!(makefile_version(mk).as_deref(), Some("6.8.0-rc1"));
        assert_eq!(makefile_version("all:\n"), None);
    }
}
