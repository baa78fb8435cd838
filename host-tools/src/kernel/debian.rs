//! The `debian` profile: Debian's signed kernel package instead of a build.
//!
//! `kernel/debian.toml` pins the package (`linux-image-<release>`), its
//! version and the sha256 of its .deb. [`ensure_entry`] fetches the .deb
//! with `apt-get download` into the source cache (`$K1OS_CACHE/sources/`,
//! the packages' cache), checks its sha256, unpacks it with `dpkg-deb -x`
//! and writes its `modules.dep` with `depmod -b` (the package ships none:
//! its postinst runs depmod on the host), all inside the cache — nothing in
//! the host's `/boot` or `/lib/modules` changes. The entry is published with
//! one rename, like a built kernel's:
//!
//! ```text
//! kernel/debian-<key>/
//!   bzImage                 the package's /boot/vmlinuz-<release>, unchanged (signed)
//!   config                  its /boot/config-<release>
//!   modules/<release>/      its /lib/modules/<release>, with modules.dep
//!   inputs.txt              what the key was computed from
//! ```
//!
//! Nothing is stripped or rewritten: the vmlinuz carries Debian's Secure
//! Boot signature and every module its module signature (appended to the
//! file), which a kernel in lockdown checks.
use anyhow::{Context, Result, bail, ensure};
use std::fs;
use std::path::{Path, PathBuf};

use super::{cache_root, file_name, kernel_dir};
use crate::flat_toml;
use crate::hash::{is_sha256, sha256_hex};
use crate::run::Cmd;
use crate::{packages, paths, ui};

/// Bump when the recipe below changes in a way the pin does not show.
const CACHE_FORMAT: &str = "k1os-debian-kernel-v1";
/// The prefix of Debian's kernel image packages; the rest is the release.
const PACKAGE_PREFIX: &str = "linux-image-";

/// `kernel/debian.toml`.
pub fn pin_path() -> PathBuf {
    kernel_dir().join("debian.toml")
}

/// The pinned Debian kernel package, from `kernel/debian.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianPin {
    /// `linux-image-6.1.0-56-amd64`: the signed package.
    pub package: String,
    pub version: String,
    /// Of the .deb.
    pub sha256: String,
    /// The file's text: the cache key.
    text: String,
}

impl DebianPin {
    pub fn load() -> Result<DebianPin> {
        let path = pin_path();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        DebianPin::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Every key is a string; a missing, unknown or mistyped key, a package
    /// that is not a `linux-image-*` or an `-unsigned` one, or a sha256 that
    /// is not 64 hex digits is an error, all reported at once.
    pub fn parse(text: &str) -> Result<DebianPin> {
        let mut table = flat_toml::parse(text)?;
        let mut problems = Vec::new();
        let mut take = |key: &str| table.take_required_str(key, &mut problems);
        let package = take("package");
        let version = take("version");
        let sha256 = take("sha256").to_ascii_lowercase();
        table.unknown_keys(&mut problems);
        if !package.is_empty() && !package.starts_with(PACKAGE_PREFIX) {
            problems.push(format!(
                "package `{package}` is not a kernel image package ({PACKAGE_PREFIX}<release>)"
            ));
        }
        if package.ends_with("-unsigned") {
            problems.push(format!(
                "package `{package}` is the unsigned build: pin the signed {} (its vmlinuz is \
                 what shim accepts under Secure Boot)",
                package.trim_end_matches("-unsigned")
            ));
        }
        if !sha256.is_empty() && !is_sha256(&sha256) {
            problems.push(format!("sha256 `{sha256}` is not 64 hex digits"));
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(DebianPin {
            package,
            version,
            sha256,
            text: text.to_string(),
        })
    }

    /// The kernel release (`uname -r`): `6.1.0-56-amd64`.
    pub fn release(&self) -> &str {
        self.package.trim_start_matches(PACKAGE_PREFIX)
    }
}

/// The unpacked package in the cache.
#[derive(Debug, Clone)]
pub struct DebianKernel {
    pub release: String,
    /// `<entry>/bzImage`: the package's vmlinuz, unchanged.
    pub bzimage: PathBuf,
    /// `<entry>/config`.
    pub config: PathBuf,
    /// `<entry>/modules/<release>`: a `/lib/modules/<release>` tree with
    /// its `modules.dep`.
    pub modules: PathBuf,
    pub entry: PathBuf,
    /// True when the entry was there already.
    pub cached: bool,
}

/// The pinned Debian kernel in the cache: taken from there, or downloaded,
/// verified and unpacked into a new entry (see the module's text). Does not
/// touch `build/kernel/` (`ensure_kernel` copies it there), so the tests can
/// use it without replacing the kernel other tests boot.
pub fn ensure_entry() -> Result<DebianKernel> {
    let pin = DebianPin::load()?;
    let release = pin.release().to_string();
    let inputs = format!(
        "{CACHE_FORMAT}\ndebian.toml sha256={}\n",
        sha256_hex(pin.text.as_bytes())
    );
    let key = sha256_hex(inputs.as_bytes());
    let entry = cache_root().join(format!("debian-{}", &key[..16]));
    let kernel = DebianKernel {
        bzimage: entry.join("bzImage"),
        config: entry.join("config"),
        modules: entry.join("modules").join(&release),
        release,
        entry: entry.clone(),
        cached: false,
    };
    let complete = |k: &DebianKernel| {
        k.bzimage.is_file()
            && k.config.is_file()
            && k.modules.join("modules.dep").is_file()
            && entry.join("inputs.txt").is_file()
    };
    if complete(&kernel) {
        ui::step(&format!(
            "kernel debian: cached, nothing to fetch ({})",
            entry.display()
        ));
        return Ok(DebianKernel {
            cached: true,
            ..kernel
        });
    }
    if entry.exists() {
        // Entries are renamed into place whole: one with a file missing was
        // damaged by hand.
        fs::remove_dir_all(&entry)
            .with_context(|| format!("removing damaged {}", entry.display()))?;
    }

    let sources = paths::cache_dir().join("sources");
    let deb = match packages::cached_source(&sources, &pin.sha256)? {
        Some(deb) => deb,
        None => packages::download_deb(&sources, &pin.package, &pin.version, &pin.sha256)?,
    };
    let root = cache_root();
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let partial = root.join(format!("{}.partial", file_name(&entry)));
    super::build::claim(&partial)?;

    let step = ui::Step::start(format!("kernel debian: unpack {}", file_name(&deb)));
    let tree = partial.join("root");
    Cmd::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree).run()?;
    let boot = tree.join("boot");
    let vmlinuz = boot.join(format!("vmlinuz-{}", kernel.release));
    let config = boot.join(format!("config-{}", kernel.release));
    let modules = tree.join("lib/modules").join(&kernel.release);
    for path in [&vmlinuz, &config, &modules] {
        ensure!(
            path.exists(),
            "{} has no {} (is {} a kernel image package for release {}?)",
            file_name(&deb),
            path.strip_prefix(&tree).unwrap_or(path).display(),
            pin.package,
            kernel.release
        );
    }
    step.done("done");

    let step = ui::Step::start(format!(
        "kernel debian: depmod -b … {} (modules.dep)",
        kernel.release
    ));
    // depmod reads <base>/lib/modules/<release> and writes its indexes
    // there: the cache's copy, never the host's.
    Cmd::new("depmod")
        .arg("-b")
        .arg(&tree)
        .arg(&kernel.release)
        .run()?;
    ensure!(
        modules.join("modules.dep").is_file(),
        "depmod wrote no {}",
        modules.join("modules.dep").display()
    );
    step.done("done");

    let staged = partial.join("entry");
    fs::create_dir_all(staged.join("modules"))
        .with_context(|| format!("creating {}", staged.display()))?;
    let moves = [
        (&vmlinuz, staged.join("bzImage")),
        (&config, staged.join("config")),
        (&modules, staged.join("modules").join(&kernel.release)),
    ];
    for (from, to) in &moves {
        fs::rename(from, to)
            .with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    }
    let inputs_file = staged.join("inputs.txt");
    let inputs = format!(
        "{inputs}package={}\nversion={}\nsha256={}\n",
        pin.package, pin.version, pin.sha256
    );
    fs::write(&inputs_file, inputs)
        .with_context(|| format!("writing {}", inputs_file.display()))?;
    fs::rename(&staged, &entry)
        .with_context(|| format!("renaming {} to {}", staged.display(), entry.display()))?;
    if let Err(err) = fs::remove_dir_all(&partial) {
        ui::note(&format!("could not remove {}: {err}", partial.display()));
    }
    Ok(kernel)
}

/// Whether `path` is a directory holding a `modules.dep`, as
/// `initramfs --kernel-modules` wants; the error says what it is instead.
pub fn check_module_tree(path: &Path) -> Result<()> {
    if !path.is_dir() {
        bail!(
            "{}: not a directory (expected a /lib/modules/<release> tree, e.g. the `debian` \
             profile's build/kernel/modules)",
            path.display()
        );
    }
    if !path.join("modules.dep").is_file() {
        bail!(
            "{}: no modules.dep (run `depmod -b BASE RELEASE` on the tree, or use the `debian` \
             profile's build/kernel/modules, which has one)",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_parses_and_names_its_release() {
        let pin = DebianPin::load().unwrap();
        assert!(pin.package.starts_with(PACKAGE_PREFIX), "{pin:?}");
        assert!(pin.release().ends_with("-amd64"), "{pin:?}");
        // The package the pinned source was built into.
        let source = super::super::Pin::load().unwrap();
        assert_eq!(pin.version, source.debian_version);
    }

    #[test]
    fn bad_pins_are_refused_with_every_problem() {
        let err = DebianPin::parse(
            "package = \"linux-image-6.1.0-56-amd64-unsigned\"\nsha256 = \"abc\"\nextra = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "`version` is missing",
            "unsigned build",
            "not 64 hex digits",
            "extra",
        ] {
            assert!(err.contains(wanted), "{wanted:?} not in {err}");
        }
        let err = DebianPin::parse(&format!(
            "package = \"firmware-misc\"\nversion = \"1\"\nsha256 = \"{}\"\n",
            "0".repeat(64)
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("not a kernel image package"), "{err}");
    }
}
