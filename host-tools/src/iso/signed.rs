//! Debian's signed UEFI boot chain, the UEFI path of the `debian` profile's
//! ISO: Microsoft-signed shim as `/EFI/BOOT/BOOTX64.EFI`, Debian-signed GRUB
//! (`gcdx64`, the image for CDs and removable media) as
//! `/EFI/BOOT/grubx64.efi`, next to it, where shim looks for it.
//!
//! `kernel/debian-efi.toml` pins both packages (name, version, sha256 of the
//! .deb, the file taken from it). [`fetch`] takes each .deb from the source
//! cache or downloads it with `apt-get download` (checked against the pin),
//! unpacks it with `dpkg-deb -x` into a scratch directory and copies the
//! one file out, byte for byte: a signature covers the whole binary, so any
//! change would make the firmware or shim refuse it.
//!
//! Under Secure Boot each stage checks the next: the firmware checks shim
//! against Microsoft's key, shim checks GRUB against Debian's, GRUB asks
//! shim to check the kernel (Debian's, `kernel/debian.toml`), and the kernel
//! then runs in lockdown, loading only signed modules. K1OS's own GRUB and
//! kernels are refused at the first or third step.
use anyhow::{Context, Result, bail, ensure};
use std::fs;
use std::path::{Path, PathBuf};

use crate::flat_toml::{self, Value};
use crate::hash::is_sha256;
use crate::run::Cmd;
use crate::{kernel, packages, paths};

/// The file the signed GRUB (`gcdx64`) searches every device for when it
/// starts (`search --file /.disk/info`): the device holding it is where it
/// reads `/boot/grub/grub.cfg` from. Only the `debian` profile's ISO has it.
pub const DISK_INFO_PATH: &str = "/.disk/info";
/// Where shim looks for the second stage: the directory it was loaded from,
/// under this name.
pub const SECOND_STAGE_PATH: &str = "/EFI/BOOT/grubx64.efi";

/// `kernel/debian-efi.toml`.
pub fn pin_path() -> PathBuf {
    kernel::kernel_dir().join("debian-efi.toml")
}

/// One pinned Debian package and the file the ESP takes from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPackage {
    pub package: String,
    pub version: String,
    /// Of the .deb.
    pub sha256: String,
    /// The binary's path inside the package (relative).
    pub file: String,
}

/// The pinned chain, from `kernel/debian-efi.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedChain {
    /// Becomes `/EFI/BOOT/BOOTX64.EFI`.
    pub shim: SignedPackage,
    /// Becomes `/EFI/BOOT/grubx64.efi`.
    pub grub: SignedPackage,
    /// The file's text: what the ISO's GRUB stamp hashes (the sha256s pin
    /// the binaries, so the text pins the ESP's content).
    pub text: String,
}

impl SignedChain {
    pub fn load() -> Result<SignedChain> {
        let path = pin_path();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        SignedChain::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Two tables, `[shim]` and `[grub]`, each with the string keys
    /// `package`, `version`, `sha256` and `file`; every problem (a missing,
    /// unknown or mistyped key, a sha256 that is not 64 hex digits, an
    /// absolute `file`) is reported at once.
    pub fn parse(text: &str) -> Result<SignedChain> {
        let mut doc = flat_toml::parse(text)?;
        let mut problems = Vec::new();
        let mut package = |name: &str, problems: &mut Vec<String>| -> SignedPackage {
            let mut table = match doc.take(name) {
                Some(flat_toml::Entry {
                    value: Value::Table(t),
                    ..
                }) => t,
                Some(entry) => {
                    problems.push(format!("line {}: `{name}` must be a table", entry.line));
                    flat_toml::Table::default()
                }
                None => {
                    problems.push(format!("the table `[{name}]` is missing"));
                    flat_toml::Table::default()
                }
            };
            let mut take = |key: &str, problems: &mut Vec<String>| {
                if table.get(key).is_none() && table.line > 0 {
                    problems.push(format!("[{name}]: the key `{key}` is missing"));
                }
                table.take_str(key, problems).unwrap_or_default()
            };
            let p = SignedPackage {
                package: take("package", problems),
                version: take("version", problems),
                sha256: take("sha256", problems).to_ascii_lowercase(),
                file: take("file", problems),
            };
            let mut unknown = Vec::new();
            table.unknown_keys(&mut unknown);
            problems.extend(unknown.into_iter().map(|u| format!("[{name}]: {u}")));
            if !p.sha256.is_empty() && !is_sha256(&p.sha256) {
                problems.push(format!(
                    "[{name}]: sha256 `{}` is not 64 hex digits",
                    p.sha256
                ));
            }
            if p.file.starts_with('/') || p.file.split('/').any(|c| c == "..") {
                problems.push(format!(
                    "[{name}]: file `{}` must be a path inside the package, relative and \
                     without `..` (as in `usr/lib/shim/shimx64.efi.signed`)",
                    p.file
                ));
            }
            p
        };
        let shim = package("shim", &mut problems);
        let grub = package("grub", &mut problems);
        doc.unknown_keys(&mut problems);
        if !problems.is_empty() {
            bail!("{}", problems.join("\n"));
        }
        Ok(SignedChain {
            shim,
            grub,
            text: text.to_string(),
        })
    }
}

/// The two binaries, fetched: paths in the ISO's work directory.
#[derive(Debug, Clone)]
pub struct SignedBinaries {
    /// shim: `/EFI/BOOT/BOOTX64.EFI`.
    pub shim: PathBuf,
    /// GRUB: `/EFI/BOOT/grubx64.efi`.
    pub grub: PathBuf,
}

/// Where [`fetch`] puts the binaries in `work` (the ISO's work directory).
pub fn binaries_in(work: &Path) -> SignedBinaries {
    SignedBinaries {
        shim: work.join("shimx64.efi"),
        grub: work.join("grubx64.efi"),
    }
}

/// Both packages from the source cache (downloaded with `apt-get download`
/// the first time, sha256-checked either way), unpacked with `dpkg-deb -x`
/// into `<work>/signed/`; their pinned files copied to [`binaries_in`].
pub fn fetch(chain: &SignedChain, work: &Path) -> Result<SignedBinaries> {
    let sources = paths::cache_dir().join("sources");
    let out = binaries_in(work);
    let scratch = work.join("signed");
    for (p, to) in [(&chain.shim, &out.shim), (&chain.grub, &out.grub)] {
        let deb = match packages::cached_source(&sources, &p.sha256)? {
            Some(deb) => deb,
            None => packages::download_deb(&sources, &p.package, &p.version, &p.sha256)?,
        };
        let tree = scratch.join(&p.package);
        if tree.exists() {
            fs::remove_dir_all(&tree).with_context(|| format!("removing {}", tree.display()))?;
        }
        // dpkg-deb makes the tree's last directory, not its parents.
        fs::create_dir_all(&scratch).with_context(|| format!("creating {}", scratch.display()))?;
        Cmd::new("dpkg-deb").arg("-x").arg(&deb).arg(&tree).run()?;
        let file = tree.join(&p.file);
        ensure!(
            file.is_file(),
            "the Debian package {}={} has no /{} (kernel/debian-efi.toml names it as `file`; \
             `dpkg-deb -c {}` lists what it has)",
            p.package,
            p.version,
            p.file,
            deb.display()
        );
        fs::copy(&file, to)
            .with_context(|| format!("copying {} to {}", file.display(), to.display()))?;
    }
    fs::remove_dir_all(&scratch).with_context(|| format!("removing {}", scratch.display()))?;
    Ok(out)
}

/// The text of `/.disk/info`: what the medium is. Only its presence matters
/// to GRUB; Debian's media say what they are in it, and so does this.
pub fn disk_info(release: &str) -> String {
    format!("K1OS boot medium (Debian's signed boot chain: shim, GRUB, Linux {release})\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pin_parses() {
        let chain = SignedChain::load().unwrap();
        assert_eq!(chain.shim.package, "shim-signed");
        assert!(chain.shim.file.ends_with("shimx64.efi.signed"), "{chain:?}");
        assert_eq!(chain.grub.package, "grub-efi-amd64-signed");
        // The removable-media image, whose config searches for /.disk/info.
        assert!(chain.grub.file.ends_with("gcdx64.efi.signed"), "{chain:?}");
    }

    #[test]
    fn bad_pins_are_refused_with_every_problem() {
        let err = SignedChain::parse(
            "[shim]\npackage = \"shim-signed\"\nsha256 = \"abc\"\nfile = \"/usr/x\"\ncolour = \"r\"\n\
             [other]\nx = \"y\"\n",
        )
        .unwrap_err()
        .to_string();
        for wanted in [
            "[shim]: the key `version` is missing",
            "[shim]: sha256 `abc` is not 64 hex digits",
            "[shim]: file `/usr/x` must be a path inside the package",
            "[shim]: line 5: unknown key `colour`",
            "the table `[grub]` is missing",
            "unknown table `[other]`",
        ] {
            assert!(err.contains(wanted), "{wanted:?} not in:\n{err}");
        }
        let err = SignedChain::parse("shim = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 1: `shim` must be a table"), "{err}");
    }
}
