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
];

/// Files (not programs) the build needs, with their Debian package.
pub const FILES: &[(&str, &str)] = &[
    ("/usr/src/linux-source-6.1.tar.xz", "linux-source-6.1"),
    ("/usr/lib/grub/i386-pc/boot_hybrid.img", "grub-pc-bin"),
    ("/usr/lib/grub/i386-pc/eltorito.img", "grub-pc-bin"),
    ("/usr/lib/grub/x86_64-efi/linux.mod", "grub-efi-amd64-bin"),
    ("/usr/share/ovmf/OVMF.fd", "ovmf"),
    ("/usr/include/libelf.h", "libelf-dev"),
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
];

/// rustup targets the build needs (`warp` and other static std binaries).
pub const RUST_TARGETS: &[&str] = &["x86_64-unknown-linux-musl"];

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
    Missing {
        packages,
        rust_targets,
    }
}

/// `host-tools doctor [--install]`.
pub fn doctor(install: bool) -> Result<()> {
    let m = missing();
    if m.packages.is_empty() && m.rust_targets.is_empty() {
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
    let left = missing();
    if !left.packages.is_empty() || !left.rust_targets.is_empty() {
        bail!(
            "still missing after installing: {:?} {:?}",
            left.packages,
            left.rust_targets
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
