//! What the build needs on the host, and how to get it on Debian/Ubuntu.
use anyhow::{Result, bail};
use std::path::Path;

use crate::run::{self, Cmd};
use crate::ui;

/// Host programs the build, the tests and the benchmarks run, with the Debian
/// package that provides each.
pub const PROGRAMS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    ("xorriso", "xorriso"),
    ("grub-mkimage", "grub-common"),
    ("mformat", "mtools"),
    ("mcopy", "mtools"),
    ("mmd", "mtools"),
    ("mksquashfs", "squashfs-tools"),
    ("unsquashfs", "squashfs-tools"),
    ("mkfs.ext4", "e2fsprogs"),
    ("e2fsck", "e2fsprogs"),
    ("debugfs", "e2fsprogs"),
    ("mkfs.vfat", "dosfstools"),
    ("cpio", "cpio"),
    ("busybox", "busybox-static"),
    ("sfdisk", "fdisk"),
    ("sgdisk", "gdisk"),
    ("bc", "bc"),
    ("flex", "flex"),
    ("bison", "bison"),
    ("make", "make"),
    ("gcc", "gcc"),
    ("xz", "xz-utils"),
    ("zstd", "zstd"),
    ("gzip", "gzip"),
    ("dumpe2fs", "e2fsprogs"),
    ("apt-get", "apt"),
    ("dpkg-deb", "dpkg"),
    ("git", "git"),
];

/// Files (not programs) the build needs, with their Debian package.
pub const FILES: &[(&str, &str)] = &[
    ("/usr/src/linux-source-6.1.tar.xz", "linux-source-6.1"),
    ("/usr/lib/grub/i386-pc/boot_hybrid.img", "grub-pc-bin"),
    ("/usr/lib/grub/i386-pc/cdboot.img", "grub-pc-bin"),
    ("/usr/lib/grub/x86_64-efi/linux.mod", "grub-efi-amd64-bin"),
    ("/usr/share/ovmf/OVMF.fd", "ovmf"),
    ("/usr/include/libelf.h", "libelf-dev"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
];

/// rustup targets the build needs (`warp` and other static std binaries).
pub const RUST_TARGETS: &[&str] = &["x86_64-unknown-linux-musl"];

/// Cargo subcommands the test command runs, pinned: `(crate, version)`.
/// `cargo-deny` checks dependency licences and duplicates (`deny.toml`).
pub const CARGO_TOOLS: &[(&str, &str)] = &[("cargo-deny", "0.20.2")];

/// The Debian package that provides `program`, if the build knows it.
pub fn package_of(program: &str) -> Option<&'static str> {
    PROGRAMS
        .iter()
        .find(|(p, _)| *p == program)
        .map(|(_, pkg)| *pkg)
}

/// What is missing: Debian packages (deduplicated) and rustup targets.
pub struct Missing {
    pub packages: Vec<&'static str>,
    pub rust_targets: Vec<&'static str>,
    pub cargo_tools: Vec<(&'static str, &'static str)>,
}

impl Missing {
    fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.rust_targets.is_empty() && self.cargo_tools.is_empty()
    }
}

pub fn missing() -> Missing {
    let mut packages: Vec<&'static str> = Vec::new();
    for (program, pkg) in PROGRAMS {
        if run::which(program).is_none() {
            ui::step(&format!("missing program `{program}` (package {pkg})"));
            packages.push(pkg);
        }
    }
    for (file, pkg) in FILES {
        if !Path::new(file).exists() {
            ui::step(&format!("missing file {file} (package {pkg})"));
            packages.push(pkg);
        }
    }
    packages.sort();
    packages.dedup();
    let installed = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .read()
        .unwrap_or_default();
    let rust_targets = RUST_TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .inspect(|t| ui::step(&format!("missing rustup target {t}")))
        .collect();
    let cargo_tools = CARGO_TOOLS
        .iter()
        .copied()
        .filter(|(name, version)| !cargo_tool_installed(name, version))
        .inspect(|(name, version)| ui::step(&format!("missing cargo tool {name} {version}")))
        .collect();
    Missing {
        packages,
        rust_targets,
        cargo_tools,
    }
}

/// Whether `cargo <tool> --version` answers with the pinned version
/// (`cargo-deny 0.20.2`).
fn cargo_tool_installed(name: &str, version: &str) -> bool {
    let subcommand = name.trim_start_matches("cargo-");
    Cmd::new("cargo")
        .args([subcommand, "--version"])
        .read()
        .is_ok_and(|out| out.split_whitespace().any(|word| word == version))
}

/// `host-tools doctor [--install]`.
pub fn doctor(install: bool) -> Result<()> {
    let m = missing();
    if m.is_empty() {
        ui::step("everything the build needs is installed");
        return Ok(());
    }
    if !install {
        bail!(
            "missing: {}; run `host-tools doctor --install` (Debian/Ubuntu, as root or with sudo)",
            m.packages
                .iter()
                .copied()
                .chain(m.rust_targets.iter().copied())
                .chain(m.cargo_tools.iter().map(|(name, _)| *name))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !m.packages.is_empty() {
        let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
        let apt = |args: &[&str]| {
            let mut all: Vec<&str> = sudo.to_vec();
            all.push("apt-get");
            all.extend_from_slice(args);
            Cmd::new(all[0])
                .args(&all[1..])
                .env("DEBIAN_FRONTEND", "noninteractive")
        };
        ui::step("apt-get update");
        apt(&["update", "-q"]).run_interactive()?;
        ui::step(&format!("apt-get install {}", m.packages.join(" ")));
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(m.packages.iter().copied());
        apt(&args).run_interactive()?;
    }
    for target in &m.rust_targets {
        ui::step(&format!("rustup target add {target}"));
        Cmd::new("rustup").args(["target", "add", target]).run()?;
    }
    for (name, version) in &m.cargo_tools {
        ui::step(&format!(
            "cargo install {name} --version {version} --locked (a few minutes, once)"
        ));
        Cmd::new("cargo")
            .args(["install", name, "--version", version, "--locked"])
            .run()?;
    }
    let left = missing();
    if !left.is_empty() {
        bail!(
            "still missing after installing: {:?} {:?} {:?}",
            left.packages,
            left.rust_targets,
            left.cargo_tools
        );
    }
    ui::step("everything the build needs is installed");
    Ok(())
}

fn is_root() -> bool {
    Cmd::new("id")
        .arg("-u")
        .read()
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}
