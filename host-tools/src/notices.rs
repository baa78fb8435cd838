//! `THIRD-PARTY-NOTICES`: what the image ships that K1OS did not write — every
//! package (name, version, licence, where its source is) and every Rust crate
//! compiled into a binary that ships (name, version, licence) — and the licence
//! texts of those crates.
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::packages::Package;
use crate::paths;
use crate::run::Cmd;

/// Where in the image the notices and licence texts go.
pub const NOTICES_PATH: &str = "usr/share/doc/k1os/THIRD-PARTY-NOTICES";
pub const LICENSES_DIR: &str = "usr/share/doc/k1os/licenses";

/// The MIT licence's text (without a copyright line: each crate's own files,
/// or its `authors`, carry that).
const MIT_TEXT: &str =
    "Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the \"Software\"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED \"AS IS\", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
";

/// The workspace binaries that ship in images: stage 1 (the initramfs
/// `/init`) and warp (`/usr/bin/warp`, from `packages/warp`).
pub const SHIPPED_BINARIES: &[&str] = &["init-nostd", "warp"];

/// A crate compiled into a shipped binary.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Crate {
    pub name: String,
    pub version: String,
    pub license: String,
    /// The directory of its sources (for its licence files).
    pub dir: PathBuf,
}

/// The target a shipped binary is built for: warp's is static musl
/// ([`crate::warp_build`]), stage 1's gnu ([`crate::initramfs`]).
pub fn target_of(binary: &str) -> &'static str {
    match binary {
        "warp" => crate::warp_build::WARP_TARGET,
        _ => crate::initramfs::STAGE1_TARGET,
    }
}

/// The crates linked into the workspace package `root` built for its
/// target ([`target_of`]):
/// `cargo tree -p root`'s normal dependencies, transitively, with the
/// features a build of `root` turns on. Proc-macros (they run in the
/// compiler) and build-only or dev-dependencies put no code into the binary
/// and are left out; so is the workspace's own code. Each crate's directory,
/// for its licence files, comes from `cargo metadata`.
///
/// Not `cargo metadata`'s dependency graph: it merges the features of the
/// whole workspace, and listed `errno` and `libc`, which stage 1 never
/// compiles (rustix takes them only with features other packages enable).
pub fn shipped_crates(root: &str) -> Result<Vec<Crate>> {
    let manifest = paths::repo_root().join("Cargo.toml");
    let tree = Cmd::new("cargo")
        .args(["tree", "--locked", "-p", root, "--target", target_of(root)])
        .args(["-e", "normal,no-proc-macro", "--prefix", "none"])
        .args(["--format", "{p}|{l}"])
        .arg("--manifest-path")
        .arg(&manifest)
        .read()?;
    let metadata = Cmd::new("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .arg("--manifest-path")
        .arg(&manifest)
        .read()?;
    crates_from_tree(&tree, &metadata)
}

/// The pure half of [`shipped_crates`]: `cargo tree --format "{p}|{l}"`
/// lines (`rustix v1.1.6|MIT OR Apache-2.0`, ` (*)` after a repeated one,
/// `name v0.1.0 (/path)|…` for a crate of the workspace), with each crate's
/// directory from `cargo metadata` output.
pub fn crates_from_tree(tree: &str, metadata: &str) -> Result<Vec<Crate>> {
    let meta: Value = serde_json::from_str(metadata).context("parsing `cargo metadata` output")?;
    let packages = meta["packages"]
        .as_array()
        .context("`cargo metadata`: no packages")?;
    let mut crates = BTreeSet::new();
    for line in tree.lines() {
        let line = line.trim_end_matches(" (*)");
        let Some((package, license)) = line.split_once('|') else {
            bail!("`cargo tree`: unexpected line `{line}`");
        };
        let words: Vec<&str> = package.split_whitespace().collect();
        let (Some(name), Some(version)) = (
            words.first(),
            words.get(1).and_then(|v| v.strip_prefix('v')),
        ) else {
            bail!("`cargo tree`: unexpected line `{line}`");
        };
        if words.get(2).is_some_and(|w| w.starts_with("(/")) {
            continue; // our own workspace crates
        }
        if license.trim().is_empty() {
            bail!("crate {name} declares no licence (field `license`): K1OS cannot ship it");
        }
        let Some(manifest) = packages
            .iter()
            .find(|p| p["name"] == *name && p["version"] == version && !p["source"].is_null())
            .and_then(|p| p["manifest_path"].as_str())
        else {
            bail!("`cargo metadata` does not know the crate {name} {version}");
        };
        crates.insert(Crate {
            name: name.to_string(),
            version: version.to_string(),
            license: license.to_string(),
            dir: Path::new(manifest)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default(),
        });
    }
    Ok(crates.into_iter().collect())
}

/// The text of `THIRD-PARTY-NOTICES`. `kernel` is the pinned Linux source the
/// image's kernel is built from (it ships on the boot media next to the
/// image); `modules`, the release whose kernel modules the image carries in
/// `/lib/modules/<release>` (the `debian` profile's), if any.
pub fn render(
    packages: &[Package],
    crates: &[(&str, Vec<Crate>)],
    kernel: Option<&crate::kernel::Pin>,
    modules: Option<&str>,
) -> String {
    let mut out = String::from(
        "THIRD-PARTY NOTICES for K1OS\n\
         ============================\n\n\
         K1OS itself is licensed under the Apache License 2.0. This image also\n\
         contains the software below, under its own licences. Licence texts are\n\
         in /usr/share/doc/k1os/licenses/ and, for packages, where each package\n\
         installs them (/usr/share/doc/<package>/).\n\n\
         Packages\n--------\n\n",
    );
    for p in packages {
        out += &format!("{} {}\n  licence: {}\n", p.name, p.version, p.license);
        for s in &p.sources {
            out += &format!("  source: {}\n", s.describe());
        }
        if let Some(upstream) = &p.upstream {
            out += &format!("  upstream: {upstream}\n");
        }
        if p.license.contains("GPL") {
            out += "  This is free software under the GNU GPL: the complete corresponding\n  \
                    source is available from the upstream location above, and from the\n  \
                    K1OS project on request, for at least three years.\n";
        }
        out.push('\n');
    }
    if let Some(pin) = kernel {
        out += &format!(
            "Linux {}\n  licence: GPL-2.0-only WITH Linux-syscall-note\n  \
             source: Debian package {}={} ({}, sha256 {})\n  upstream: {}\n  \
             The complete corresponding source is that tarball; it is available from\n  \
             Debian and kernel.org, and from the K1OS project on request.\n\n",
            pin.version,
            pin.debian_package,
            pin.debian_version,
            pin.tarball,
            pin.sha256,
            pin.upstream
        );
    }
    if let Some(release) = modules {
        out += &format!(
            "Linux kernel modules {release} (/lib/modules/{release})\n  \
             licence: GPL-2.0-only (some modules dual-licensed with it, as each module's\n  \
             MODULE_LICENSE says)\n  \
             source: shipped as they came, signatures included; for the `debian` kernel\n  \
             profile, Debian's package linux-image-{release}, built by Debian from the\n  \
             Linux source above, whose complete corresponding source that is.\n\n"
        );
    }
    for (binary, list) in crates {
        out += &format!("Rust crates compiled into {binary}\n");
        out += &"-".repeat(28 + binary.len());
        out += "\n\n";
        for c in list {
            out += &format!("{} {}  ({})\n", c.name, c.version, c.license);
        }
        out.push('\n');
    }
    out
}

/// Licence files of a crate (`LICENSE`, `LICENSE-MIT`, `COPYING`, …).
pub fn license_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_ascii_uppercase();
            p.is_file()
                && (name.starts_with("LICENSE")
                    || name.starts_with("LICENCE")
                    || name.starts_with("COPYING"))
        })
        .collect();
    files.sort();
    files
}

/// Writes `THIRD-PARTY-NOTICES` and the crates' licence files under `root`
/// (a root filesystem staging tree; `modules`: the kernel release whose
/// modules it carries, see [`render`]). Returns the notices' path.
pub fn write_into(root: &Path, packages: &[Package], modules: Option<&str>) -> Result<PathBuf> {
    let mut crates = Vec::new();
    for binary in SHIPPED_BINARIES {
        crates.push((*binary, shipped_crates(binary)?));
    }
    let licenses = root.join(LICENSES_DIR);
    for (_, list) in &crates {
        for c in list {
            let files = license_files(&c.dir);
            let dest = licenses.join(format!("{}-{}", c.name, c.version));
            std::fs::create_dir_all(&dest)
                .with_context(|| format!("creating {}", dest.display()))?;
            if files.is_empty() {
                // Some crates (ufmt-write) are published without a licence
                // file: say so, and point at the standard texts they declare.
                let note = format!(
                    "{} {} is published without a licence file. It declares the licence\n\
                     `{}`; the standard texts are in ../standard/.\n",
                    c.name, c.version, c.license
                );
                std::fs::write(dest.join("LICENSE-NOTE"), note)?;
            }
            for f in files {
                let target = dest.join(f.file_name().unwrap_or_default());
                std::fs::copy(&f, &target)
                    .with_context(|| format!("copying {} to {}", f.display(), target.display()))?;
            }
        }
    }
    let apache = paths::repo_root().join("LICENSE");
    let standard = licenses.join("standard");
    std::fs::create_dir_all(&standard)?;
    std::fs::copy(&apache, standard.join("Apache-2.0"))
        .with_context(|| format!("copying {}", apache.display()))?;
    std::fs::write(standard.join("MIT"), MIT_TEXT)?;
    let path = root.join(NOTICES_PATH);
    std::fs::create_dir_all(path.parent().unwrap_or(root))?;
    let pin = crate::kernel::Pin::load()?;
    std::fs::write(&path, render(packages, &crates, Some(&pin), modules))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage1_crates_are_its_linked_dependencies_only() {
        let crates = shipped_crates("init-nostd").unwrap();
        let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        for expected in ["rustix", "linux-raw-sys", "heapless", "ufmt"] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        // A proc-macro, a dev-dependency and host-tools' own dependencies put
        // no code in /init; nor do rustix's optional errno and libc, which
        // only the workspace's merged features turn on.
        for absent in [
            "ufmt-macros",
            "tempfile",
            "clap",
            "init-nostd",
            "errno",
            "libc",
        ] {
            assert!(
                !names.contains(&absent),
                "{absent} should not be listed: {names:?}"
            );
        }
    }

    #[test]
    fn every_shipped_crate_gets_a_licence_directory() {
        let root = tempfile::tempdir().unwrap();
        let notices = write_into(root.path(), &[], None).unwrap();
        assert!(notices.ends_with(NOTICES_PATH));
        for c in shipped_crates("init-nostd").unwrap() {
            let dir = root
                .path()
                .join(LICENSES_DIR)
                .join(format!("{}-{}", c.name, c.version));
            let files = std::fs::read_dir(&dir).unwrap().count();
            assert!(files > 0, "{} is empty", dir.display());
        }
        assert!(
            root.path()
                .join(LICENSES_DIR)
                .join("standard/MIT")
                .is_file()
        );
    }

    #[test]
    fn notices_name_every_package_and_crate() {
        let packages = crate::packages::load(&crate::packages::packages_dir()).unwrap();
        let crates = shipped_crates("init-nostd").unwrap();
        let pin = crate::kernel::Pin::load().unwrap();
        let text = render(
            &packages,
            &[("init-nostd", crates.clone())],
            Some(&pin),
            None,
        );
        assert!(
            text.contains(&format!("Linux {}", pin.version)),
            "the kernel is listed"
        );
        assert!(
            !text.contains("kernel modules"),
            "none shipped, none listed"
        );
        let with_modules = render(&packages, &[], Some(&pin), Some("6.1.0-56-amd64"));
        assert!(
            with_modules.contains(
                "Linux kernel modules 6.1.0-56-amd64 (/lib/modules/6.1.0-56-amd64)\n  licence: GPL-2.0-only"
            ),
            "{with_modules}"
        );
        for p in &packages {
            assert!(
                text.contains(&format!(
                    "{} {}\n  licence: {}",
                    p.name, p.version, p.license
                )),
                "{}",
                p.name
            );
        }
        for c in &crates {
            assert!(
                text.contains(&format!("{} {}  ({})", c.name, c.version, c.license)),
                "{}",
                c.name
            );
        }
        assert!(
            text.contains("corresponding\n  source"),
            "GPL packages say where the source is"
        );
    }
}
