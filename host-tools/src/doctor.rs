//! What the build needs on the host, and how to get it on Debian/Ubuntu.
//!
//! `doctor` checks programs, files, the pinned kernel source package, rustup
//! targets and cargo tools, scoped by purpose (`--for build` is what `make iso`
//! needs; `--for test` adds QEMU, firmware and the test-only tools, among them
//! what the fuzz smoke pass needs: `cargo-fuzz` and the nightly toolchain that
//! `fuzz/rust-toolchain.toml` pins).
//!
//! `doctor --install` asks apt for the **whole** set of the purpose in one
//! transaction, never only the missing packages: a partial request lets apt
//! solve a smaller problem, and on a machine with a newer `qemu-utils` (from
//! backports) it removed `qemu-utils` to install Debian's `qemu-system-x86`. The
//! transaction is simulated first (`apt-get -s`); when apt would remove a
//! package or cannot solve it because an installed package is from another
//! release, that package is requested at the version the archive offers
//! (`pkg=version`, a downgrade apt must be allowed to make); what still
//! conflicts stops the install with apt's own explanation.
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::path::Path;

use crate::run::{self, Cmd};
use crate::{kernel, paths, ui};

/// What the host is being prepared for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Purpose {
    /// Build the kernel, initramfs, root filesystem, ISO and data images (`make iso`).
    Build,
    /// Everything `build` needs, plus QEMU, firmware and the test tools (`make test`).
    Test,
}

impl Purpose {
    /// Whether a thing needed for `need` is needed for `self`.
    fn includes(self, need: Purpose) -> bool {
        need <= self
    }
}

/// Host programs the build and the tests run: the program, the Debian package
/// that provides it, and the first purpose that needs it.
pub const PROGRAMS: &[(&str, &str, Purpose)] = &[
    // kernel
    ("make", "make", Purpose::Build),
    ("gcc", "gcc", Purpose::Build),
    ("bc", "bc", Purpose::Build),
    ("flex", "flex", Purpose::Build),
    ("bison", "bison", Purpose::Build),
    ("xz", "xz-utils", Purpose::Build),
    ("tar", "tar", Purpose::Build),
    ("patch", "patch", Purpose::Build),
    // SOURCE_DATE_EPOCH from the last commit; package sources
    ("git", "git", Purpose::Build),
    ("apt-get", "apt", Purpose::Build),
    ("dpkg-deb", "dpkg", Purpose::Build),
    // the `debian` kernel profile: modules.dep of the unpacked package
    ("depmod", "kmod", Purpose::Build),
    // root filesystem, ISO, data images
    ("zstd", "zstd", Purpose::Build),
    ("gzip", "gzip", Purpose::Build),
    ("mksquashfs", "squashfs-tools", Purpose::Build),
    ("unsquashfs", "squashfs-tools", Purpose::Build),
    ("xorriso", "xorriso", Purpose::Build),
    ("grub-mkimage", "grub-common", Purpose::Build),
    ("mformat", "mtools", Purpose::Build),
    ("mcopy", "mtools", Purpose::Build),
    ("mmd", "mtools", Purpose::Build),
    ("mkfs.ext4", "e2fsprogs", Purpose::Build),
    // make-persist on a block device
    ("wipefs", "util-linux", Purpose::Build),
    ("lsblk", "util-linux", Purpose::Build),
    // boots, test images and their oracles
    ("qemu-system-x86_64", "qemu-system-x86", Purpose::Test),
    ("qemu-img", "qemu-utils", Purpose::Test),
    ("e2fsck", "e2fsprogs", Purpose::Test),
    ("debugfs", "e2fsprogs", Purpose::Test),
    ("dumpe2fs", "e2fsprogs", Purpose::Test),
    ("busybox", "busybox-static", Purpose::Test),
    ("sgdisk", "gdisk", Purpose::Test),
    // init-nostd's probe tests make real images and ask blkid
    ("mkfs.vfat", "dosfstools", Purpose::Test),
    ("sfdisk", "fdisk", Purpose::Test),
    ("blkid", "util-linux", Purpose::Test),
    ("losetup", "mount", Purpose::Test),
    // the reference dm-verity tool: the root image's hash tree is checked
    // against it (tests/verity_tree.rs), and the verity tests use it
    ("veritysetup", "cryptsetup-bin", Purpose::Test),
    // the reference verifier of warp's signify signatures (tests/repo.rs)
    ("signify-openbsd", "signify-openbsd", Purpose::Test),
    // tests/warp.rs: a second warp against a held lock, a root on a tiny tmpfs
    ("flock", "util-linux", Purpose::Test),
    ("mount", "mount", Purpose::Test),
];

/// Files (not programs) the build needs, with their Debian package. The kernel
/// source tarball is not here: it comes from `kernel/pin.toml`, with its version.
pub const FILES: &[(&str, &str, Purpose)] = &[
    (
        "/usr/lib/grub/i386-pc/boot_hybrid.img",
        "grub-pc-bin",
        Purpose::Build,
    ),
    (
        "/usr/lib/grub/i386-pc/cdboot.img",
        "grub-pc-bin",
        Purpose::Build,
    ),
    (
        "/usr/lib/grub/x86_64-efi/linux.mod",
        "grub-efi-amd64-bin",
        Purpose::Build,
    ),
    ("/usr/include/libelf.h", "libelf-dev", Purpose::Build),
    ("/usr/include/openssl/ssl.h", "libssl-dev", Purpose::Build),
    ("/usr/share/ovmf/OVMF.fd", "ovmf", Purpose::Test),
    // Secure Boot: the firmware and its store with Microsoft's keys
    // (`vm::OVMF_SECBOOT_CODE`, `vm::OVMF_SECBOOT_VARS`; tests/secure_boot.rs).
    (
        "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
        "ovmf",
        Purpose::Test,
    ),
    ("/usr/share/OVMF/OVMF_VARS_4M.ms.fd", "ovmf", Purpose::Test),
];

/// rustup targets the build needs: static std binaries for the image (`warp`,
/// the package manager being built, links against musl).
pub const RUST_TARGETS: &[&str] = &["x86_64-unknown-linux-musl"];

/// Cargo subcommands the test command runs, pinned: `(crate, version)`.
/// `cargo-deny` checks dependency licences and duplicates (`deny.toml`);
/// `cargo-fuzz` builds and runs the fuzz targets (`fuzz/`, ci/fuzz-smoke.sh).
pub const CARGO_TOOLS: &[(&str, &str)] = &[("cargo-deny", "0.20.2"), ("cargo-fuzz", "0.13.2")];

/// The file that pins the fuzz targets' nightly toolchain (cargo fuzz needs
/// nightly), relative to the checkout. rustup reads it in `fuzz/`; doctor
/// reads it to know what to install.
pub const FUZZ_TOOLCHAIN_FILE: &str = "fuzz/rust-toolchain.toml";

/// The command that fixes what `doctor` reports.
const INSTALL_HINT: &str = "./k1os doctor --install";

/// The Debian package that provides `program`, if the build knows it.
pub fn package_of(program: &str) -> Option<&'static str> {
    PROGRAMS
        .iter()
        .find(|(p, _, _)| *p == program)
        .map(|(_, pkg, _)| *pkg)
}

/// A Debian package the build wants at one exact version (the kernel source).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedPackage {
    pub name: String,
    pub version: String,
    /// Why it is pinned, for messages: `kernel/pin.toml`.
    pub pinned_in: String,
}

impl PinnedPackage {
    /// `linux-source-6.1=6.1.192-2`: what apt is asked for.
    pub fn request(&self) -> String {
        format!("{}={}", self.name, self.version)
    }
}

/// The kernel source package as `kernel/pin.toml` pins it (`None` when the pin
/// is a tarball no Debian package provides), and the tarball's path.
fn kernel_source_pin() -> Result<(Option<PinnedPackage>, std::path::PathBuf)> {
    let pin = kernel::Pin::load()?;
    let package = pin.debian().map(|(name, version)| PinnedPackage {
        name: name.to_string(),
        version: version.to_string(),
        pinned_in: "kernel/pin.toml".to_string(),
    });
    Ok((package, pin.path.clone()))
}

/// Debian packages the purpose needs, without versions, sorted and unique.
pub fn packages_for(purpose: Purpose) -> Vec<&'static str> {
    let set: BTreeSet<&'static str> = PROGRAMS
        .iter()
        .chain(FILES)
        .filter(|(_, _, need)| purpose.includes(*need))
        .map(|(_, pkg, _)| *pkg)
        .collect();
    set.into_iter().collect()
}

/// One thing the host lacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lack {
    /// A program or file that the Debian package provides.
    Package {
        what: String,
        package: String,
    },
    /// The pinned package is absent or at another version (`installed`).
    PinnedVersion {
        pin: PinnedPackage,
        installed: Option<String>,
    },
    /// The pinned kernel tarball, which no Debian package provides.
    Tarball(std::path::PathBuf),
    /// `rustup` or `cargo` itself: no install command can fix that for us.
    Toolchain(&'static str),
    RustTarget(&'static str),
    /// A rustup toolchain (the fuzz targets' nightly), by channel.
    RustToolchain {
        channel: String,
        pinned_in: &'static str,
    },
    CargoTool {
        name: &'static str,
        version: &'static str,
    },
}

impl Lack {
    /// One line for the report.
    pub fn describe(&self) -> String {
        match self {
            Lack::Package { what, package } => format!("{what} (package {package})"),
            Lack::PinnedVersion {
                pin,
                installed: None,
            } => format!(
                "{} {} (pinned in {}) is not installed",
                pin.name, pin.version, pin.pinned_in
            ),
            Lack::PinnedVersion {
                pin,
                installed: Some(v),
            } => format!(
                "{} {v} is installed, but {} pins {}",
                pin.name, pin.pinned_in, pin.version
            ),
            Lack::Tarball(path) => format!(
                "the kernel tarball {} that kernel/pin.toml pins (no Debian package provides it)",
                path.display()
            ),
            Lack::Toolchain(tool) => format!(
                "`{tool}` is not on PATH: install Rust with rustup (https://rustup.rs), \
                 then open a new shell"
            ),
            Lack::RustTarget(t) => format!("rustup target {t}"),
            Lack::RustToolchain { channel, pinned_in } => {
                format!("rustup toolchain {channel} (pinned in {pinned_in}, for cargo fuzz)")
            }
            Lack::CargoTool { name, version } => format!("cargo tool {name} {version}"),
        }
    }

    /// How to fix just this one by hand.
    pub fn fix(&self) -> String {
        match self {
            Lack::Package { package, .. } => format!("sudo apt-get install {package}"),
            Lack::PinnedVersion { pin, .. } => {
                format!("sudo apt-get install --allow-downgrades {}", pin.request())
            }
            Lack::Tarball(path) => format!(
                "download the `upstream` tarball of kernel/pin.toml to {}",
                path.display()
            ),
            Lack::Toolchain(_) => "https://rustup.rs".to_string(),
            Lack::RustTarget(t) => format!("rustup target add {t}"),
            Lack::RustToolchain { channel, .. } => rustup_toolchain_install(channel).join(" "),
            Lack::CargoTool { name, version } => {
                format!("cargo install {name} --version {version} --locked")
            }
        }
    }

    fn needs_apt(&self) -> bool {
        matches!(self, Lack::Package { .. } | Lack::PinnedVersion { .. })
    }
}

/// What the host lacks for `purpose`.
pub fn missing(purpose: Purpose) -> Result<Vec<Lack>> {
    let mut lacks = Vec::new();
    for (program, package, need) in PROGRAMS {
        if purpose.includes(*need) && run::which(program).is_none() {
            lacks.push(Lack::Package {
                what: format!("program `{program}`"),
                package: package.to_string(),
            });
        }
    }
    for (file, package, need) in FILES {
        if purpose.includes(*need) && !Path::new(file).exists() {
            lacks.push(Lack::Package {
                what: format!("file {file}"),
                package: package.to_string(),
            });
        }
    }
    match kernel_source_pin()? {
        (Some(pin), tarball) => {
            let installed = installed_version(&pin.name);
            if installed.as_deref() != Some(pin.version.as_str()) || !tarball.exists() {
                lacks.push(Lack::PinnedVersion { pin, installed });
            }
        }
        (None, tarball) if !tarball.exists() => lacks.push(Lack::Tarball(tarball)),
        (None, _) => {}
    }
    if run::which("rustup").is_none() {
        lacks.push(Lack::Toolchain("rustup"));
    } else {
        let installed = Cmd::new("rustup")
            .args(["target", "list", "--installed"])
            .read()
            .unwrap_or_default();
        for target in RUST_TARGETS {
            if !installed.lines().any(|l| l.trim() == *target) {
                lacks.push(Lack::RustTarget(target));
            }
        }
        if purpose.includes(Purpose::Test) {
            let channel = fuzz_toolchain(&paths::repo_root().join(FUZZ_TOOLCHAIN_FILE))?;
            let toolchains = Cmd::new("rustup")
                .args(["toolchain", "list"])
                .read()
                .unwrap_or_default();
            if !toolchain_installed(&toolchains, &channel) {
                lacks.push(Lack::RustToolchain {
                    channel,
                    pinned_in: FUZZ_TOOLCHAIN_FILE,
                });
            }
        }
    }
    if run::which("cargo").is_none() {
        lacks.push(Lack::Toolchain("cargo"));
    } else if purpose.includes(Purpose::Test) {
        for (name, version) in CARGO_TOOLS {
            if !cargo_tool_installed(name, version) {
                lacks.push(Lack::CargoTool { name, version });
            }
        }
    }
    Ok(lacks)
}

/// The channel `[toolchain] channel = "…"` of a rust-toolchain.toml file.
pub fn fuzz_toolchain(file: &Path) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading {} (the fuzz targets' toolchain)", file.display()))?;
    toolchain_channel(&text).with_context(|| format!("in {}", file.display()))
}

/// [`fuzz_toolchain`] on the file's text.
pub fn toolchain_channel(text: &str) -> Result<String> {
    let doc = crate::flat_toml::parse(text)?;
    let Some(crate::flat_toml::Value::Table(toolchain)) = doc.get("toolchain").map(|e| &e.value)
    else {
        bail!("no [toolchain] table");
    };
    match toolchain.get("channel").map(|e| &e.value) {
        Some(crate::flat_toml::Value::Str(channel)) if !channel.trim().is_empty() => {
            Ok(channel.trim().to_string())
        }
        _ => bail!("[toolchain] has no `channel = \"…\"`"),
    }
}

/// Whether `rustup toolchain list`'s output has `channel`: listed with the
/// host triple after it (`nightly-2026-05-20-x86_64-unknown-linux-gnu`), and
/// maybe `(default)`. A triple starts with a letter, a date with a digit, so
/// `nightly` is not taken for `nightly-2026-05-20-…`.
pub fn toolchain_installed(list: &str, channel: &str) -> bool {
    list.lines().any(|line| {
        let name = line.split_whitespace().next().unwrap_or_default();
        name == channel
            || name
                .strip_prefix(channel)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|triple| triple.starts_with(|c: char| c.is_ascii_alphabetic()))
    })
}

/// `rustup toolchain install CHANNEL --profile minimal`: rustc, cargo and std
/// are all cargo fuzz needs.
fn rustup_toolchain_install(channel: &str) -> Vec<String> {
    [
        "rustup",
        "toolchain",
        "install",
        channel,
        "--profile",
        "minimal",
    ]
    .map(String::from)
    .to_vec()
}

/// The installed version of a Debian package, if it is installed and
/// configured (`dpkg-query` says `ii`); `None` on a host without dpkg.
pub fn installed_version(package: &str) -> Option<String> {
    run::which("dpkg-query")?;
    let out = Cmd::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Abbrev} ${Version}", package])
        .output_unchecked()
        .ok()?;
    // `ii  6.1.192-2`: installed and configured.
    let (status, version) = out.stdout.split_once(' ')?;
    (out.success && status.starts_with("ii")).then(|| version.trim().to_string())
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

// The install plan

/// What apt is asked for: every package of the purpose, the pinned ones at
/// their version. Empty when apt has nothing to do.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Plan {
    /// `apt-get install` arguments: `name` or `name=version`.
    pub requests: Vec<String>,
    /// Pass `--allow-downgrades`: some request is older than what is installed.
    pub allow_downgrades: bool,
    /// Packages requested at the archive's version instead of the installed
    /// one, with the reason: `(package, installed, archive)`.
    pub downgrades: Vec<(String, String, String)>,
}

impl Plan {
    /// The whole set for `purpose` when any of `lacks` needs apt, else nothing:
    /// asking for the missing packages only lets apt remove the others.
    pub fn for_lacks(purpose: Purpose, pins: &[PinnedPackage], lacks: &[Lack]) -> Plan {
        if !lacks.iter().any(Lack::needs_apt) {
            return Plan::default();
        }
        let mut requests: Vec<String> = packages_for(purpose)
            .into_iter()
            .filter(|p| !pins.iter().any(|pin| pin.name == *p))
            .map(str::to_string)
            .collect();
        requests.extend(pins.iter().map(PinnedPackage::request));
        requests.sort();
        let allow_downgrades = lacks.iter().any(|l| {
            matches!(
                l,
                Lack::PinnedVersion {
                    installed: Some(_),
                    ..
                }
            )
        });
        Plan {
            requests,
            allow_downgrades,
            downgrades: Vec::new(),
        }
    }

    /// The package names the plan asks for, without versions.
    pub fn names(&self) -> Vec<&str> {
        self.requests
            .iter()
            .map(|r| r.split_once('=').map_or(r.as_str(), |(n, _)| n))
            .collect()
    }

    fn apt_args(&self, simulate: bool) -> Vec<String> {
        let mut args: Vec<String> = ["install", "-y", "-q", "--no-install-recommends"]
            .map(String::from)
            .to_vec();
        if simulate {
            args.insert(1, "-s".to_string());
        }
        if self.allow_downgrades {
            args.push("--allow-downgrades".to_string());
        }
        args.extend(self.requests.iter().cloned());
        args
    }

    /// Requests `package` at `version` (replacing an unversioned request).
    fn pin(&mut self, package: &str, installed: &str, version: &str) {
        for request in &mut self.requests {
            let name = request.split_once('=').map_or(request.as_str(), |(n, _)| n);
            if name == package {
                *request = format!("{package}={version}");
            }
        }
        self.allow_downgrades = true;
        self.downgrades.push((
            package.to_string(),
            installed.to_string(),
            version.to_string(),
        ));
    }
}

/// What `apt-get -s install …` said it would do.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Simulation {
    /// apt found a solution (exit status 0).
    pub solvable: bool,
    /// Packages it would remove (`Remv name [version]`).
    pub removes: Vec<String>,
    /// Packages it would downgrade (apt's "will be DOWNGRADED" list: an `Inst`
    /// line does not say whether the new version is older).
    pub downgrades: Vec<String>,
    /// Packages named as the subject of an unmet dependency (` name : Breaks: …`).
    pub broken: Vec<String>,
    /// Requested versions apt does not know: `(package, version)`.
    pub unknown_versions: Vec<(String, String)>,
    /// apt's explanation (unmet dependencies and `E:` lines), for messages.
    pub explanation: Vec<String>,
}

impl Simulation {
    /// Parses apt-get's output (run with `LANG=C`).
    pub fn parse(text: &str, solvable: bool) -> Simulation {
        let mut sim = Simulation {
            solvable,
            ..Simulation::default()
        };
        let mut in_unmet = false;
        let mut in_downgraded = false;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("Remv ") {
                if let Some(name) = rest.split_whitespace().next() {
                    sim.removes.push(name.to_string());
                }
                continue;
            }
            if line.starts_with("The following packages will be DOWNGRADED") {
                in_downgraded = true;
                continue;
            }
            if in_downgraded {
                if line.starts_with("  ") {
                    sim.downgrades
                        .extend(line.split_whitespace().map(str::to_string));
                    continue;
                }
                in_downgraded = false;
            }
            if line.starts_with("The following packages have unmet dependencies") {
                in_unmet = true;
                continue;
            }
            if in_unmet && line.starts_with(' ') {
                sim.explanation.push(line.trim().to_string());
                // ` qemu-utils : Breaks: …`; continuation lines have no ` : `.
                if let Some((name, _)) = line.trim().split_once(" : ") {
                    sim.broken.push(name.trim().to_string());
                }
                continue;
            }
            in_unmet = false;
            if let Some(err) = line.strip_prefix("E: ") {
                sim.explanation.push(line.to_string());
                // E: Version '6.1.100-1' for 'linux-source-6.1' was not found
                if let Some(rest) = err.strip_prefix("Version '")
                    && let Some((version, rest)) = rest.split_once("' for '")
                    && let Some((package, _)) = rest.split_once('\'')
                {
                    sim.unknown_versions
                        .push((package.to_string(), version.to_string()));
                }
            }
        }
        sim.removes.sort();
        sim.removes.dedup();
        sim.broken.sort();
        sim.broken.dedup();
        sim
    }

    /// Needed packages apt would remove or cannot keep: what must be fixed.
    pub fn conflicts<'a>(&self, needed: &[&'a str]) -> Vec<&'a str> {
        needed
            .iter()
            .copied()
            .filter(|n| self.removes.iter().any(|r| r == n) || self.broken.iter().any(|b| b == n))
            .collect()
    }

    /// Whether installing would go as planned: solvable, nothing removed.
    pub fn is_clean(&self) -> bool {
        self.solvable && self.removes.is_empty()
    }
}

/// One package's `apt-cache policy`: the installed version and the versions the
/// configured archives offer, by priority.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Policy {
    pub installed: Option<String>,
    pub candidate: Option<String>,
    /// `(version, priority)` of every version some archive offers (the dpkg
    /// status file, which only says what is installed, is not an archive).
    pub archive: Vec<(String, i32)>,
}

impl Policy {
    /// Parses `LANG=C apt-cache policy PACKAGE` for one package.
    pub fn parse(text: &str) -> Policy {
        let mut policy = Policy::default();
        let none = |v: &str| (v != "(none)").then(|| v.to_string());
        let mut version: Option<String> = None;
        let mut in_table = false;
        for line in text.lines() {
            let trimmed = line.trim();
            if let Some(v) = trimmed.strip_prefix("Installed: ") {
                policy.installed = none(v.trim());
            } else if let Some(v) = trimmed.strip_prefix("Candidate: ") {
                policy.candidate = none(v.trim());
            } else if trimmed == "Version table:" {
                in_table = true;
            } else if in_table {
                // ` *** 1:10.0.2+… 100` or `     1:7.2+… 500`: a version line;
                // `        500 http://… Packages`: a source of the version above.
                let words: Vec<&str> = trimmed
                    .trim_start_matches("*** ")
                    .split_whitespace()
                    .collect();
                match words.as_slice() {
                    [v, _priority] if !v.chars().all(|c| c.is_ascii_digit()) => {
                        version = Some(v.to_string());
                    }
                    [priority, source, ..] => {
                        let is_archive = *source != "/var/lib/dpkg/status";
                        if let (Some(v), Ok(p), true) = (&version, priority.parse(), is_archive)
                            && !policy.archive.iter().any(|(a, _)| a == v)
                        {
                            policy.archive.push((v.clone(), p));
                        }
                    }
                    _ => {}
                }
            }
        }
        policy
    }

    /// The version apt would choose from the archives alone: the highest
    /// priority, then the first listed (apt lists versions newest first).
    pub fn archive_version(&self) -> Option<&str> {
        let best = self.archive.iter().map(|(_, p)| *p).max()?;
        self.archive
            .iter()
            .find(|(_, p)| *p == best)
            .map(|(v, _)| v.as_str())
    }
}

/// Makes `plan` installable: each needed package apt would remove, or that
/// blocks the solution, is requested at its archive version when the installed
/// one is from elsewhere. `policy_of` answers `apt-cache policy` for a package.
/// Fails naming the conflict when that cannot help.
pub fn resolve(
    mut plan: Plan,
    sim: &Simulation,
    mut policy_of: impl FnMut(&str) -> Result<Policy>,
) -> Result<Plan> {
    if let Some((package, version)) = sim.unknown_versions.first() {
        let policy = policy_of(package)?;
        let offered = policy.archive_version().unwrap_or("nothing");
        bail!(
            "{package} {version} is not in the archive any more (apt offers {offered}). \
             Move K1OS to the new kernel on purpose: `sudo apt-get install {package}`, then \
             `./k1os kernel pin` rewrites kernel/pin.toml for the installed tarball; commit that \
             (the kernel is rebuilt once)"
        );
    }
    let names: Vec<String> = plan.names().iter().map(|s| s.to_string()).collect();
    let needed: Vec<&str> = names.iter().map(String::as_str).collect();
    let conflicts = sim.conflicts(&needed);
    let mut fixed = false;
    for package in &conflicts {
        // Already requested at the archive's version: nothing more to pick.
        if plan.downgrades.iter().any(|(p, _, _)| p == package) {
            continue;
        }
        let policy = policy_of(package)?;
        let (Some(installed), Some(archive)) = (&policy.installed, policy.archive_version()) else {
            continue;
        };
        if installed != archive {
            plan.pin(package, installed, archive);
            fixed = true;
        }
    }
    if !fixed {
        bail!("{}", conflict_message(sim, &conflicts, &needed));
    }
    Ok(plan)
}

/// Why apt cannot install the set, in apt's words, and what to do.
fn conflict_message(sim: &Simulation, conflicts: &[&str], needed: &[&str]) -> String {
    let mut msg =
        String::from("apt cannot install what the build needs without breaking something:");
    let removed_needed: Vec<&String> = sim
        .removes
        .iter()
        .filter(|r| needed.contains(&r.as_str()))
        .collect();
    let removed_other: Vec<&String> = sim
        .removes
        .iter()
        .filter(|r| !needed.contains(&r.as_str()))
        .collect();
    if !removed_needed.is_empty() {
        msg += &format!(
            "\n  it would remove {} (the build needs them)",
            join(&removed_needed)
        );
    }
    if !removed_other.is_empty() {
        msg += &format!(
            "\n  it would remove {} (installed on this machine)",
            join(&removed_other)
        );
    }
    for line in &sim.explanation {
        msg += &format!("\n  apt: {line}");
    }
    if !conflicts.is_empty() {
        msg += &format!(
            "\n  the conflicting packages ({}) are already at the archive's version, so \
             K1OS cannot pick another",
            conflicts.join(", ")
        );
    }
    msg += "\nResolve it by hand (`apt-cache policy <package>` shows where each version comes \
            from), then run `./k1os doctor --install` again. Nothing was installed.";
    msg
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

// Running it

/// `apt-get` as root: directly when root, else through sudo.
fn apt(args: &[String]) -> Cmd {
    let mut cmd = if is_root() {
        Cmd::new("apt-get")
    } else {
        Cmd::new("sudo").arg("apt-get")
    };
    cmd = cmd
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("LANG", "C");
    cmd
}

fn simulate(plan: &Plan) -> Result<Simulation> {
    // Simulation needs no root; plain apt-get, so no password prompt.
    let out = Cmd::new("apt-get")
        .args(plan.apt_args(true))
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .output_unchecked()?;
    Ok(Simulation::parse(
        &format!("{}\n{}", out.stdout, out.stderr),
        out.success,
    ))
}

fn policy(package: &str) -> Result<Policy> {
    let text = Cmd::new("apt-cache")
        .args(["policy", package])
        .env("LANG", "C")
        .env("LC_ALL", "C")
        .read()?;
    Ok(Policy::parse(&text))
}

/// The simulated, resolved plan: one that apt says it can install without
/// removing anything. Each round may request more packages at the archive's
/// version; a round that finds nothing new to request stops with apt's reasons.
fn checked_plan(mut plan: Plan) -> Result<Plan> {
    for _ in 0..2 {
        let sim = simulate(&plan)?;
        if sim.is_clean() {
            return Ok(plan);
        }
        plan = resolve(plan, &sim, policy)?;
    }
    let sim = simulate(&plan)?;
    if sim.is_clean() {
        return Ok(plan);
    }
    let needed = plan.names();
    bail!(
        "{}",
        conflict_message(&sim, &sim.conflicts(&needed), &needed)
    )
}

fn report(lacks: &[Lack]) {
    for lack in lacks {
        ui::line(&format!("missing: {}", lack.describe()));
    }
}

/// `host-tools doctor [--install] [--for build|test]`.
pub fn doctor(purpose: Purpose, install: bool) -> Result<()> {
    let scope = match purpose {
        Purpose::Build => "the build (`make iso`)",
        Purpose::Test => "the build and the tests (`make test`)",
    };
    let lacks = missing(purpose)?;
    if lacks.is_empty() {
        ui::step(&format!("everything {scope} needs is installed"));
        summary(purpose);
        return Ok(());
    }
    report(&lacks);
    if let Some(Lack::Toolchain(tool)) = lacks.iter().find(|l| matches!(l, Lack::Toolchain(_))) {
        bail!(
            "`{tool}` is not installed: install Rust with rustup (https://rustup.rs), open a new \
             shell, then run `{INSTALL_HINT}`"
        );
    }
    if !install {
        bail!(
            "{} missing for {scope}; run `{INSTALL_HINT}{}` (apt-get runs through sudo unless \
             you are root; rustup targets and toolchains and cargo tools install for you, the user)",
            lacks.len(),
            match purpose {
                Purpose::Build => " --for build",
                Purpose::Test => "",
            }
        );
    }
    if lacks.iter().any(Lack::needs_apt) {
        if run::which("apt-get").is_none() {
            bail!(
                "apt-get is not available: this is not a Debian/Ubuntu machine. Install these \
                 packages with your distribution's tools: {}",
                packages_for(purpose).join(" ")
            );
        }
        let (pin, _) = kernel_source_pin()?;
        ui::step("apt-get update");
        apt(&["update".to_string(), "-q".to_string()]).run_interactive()?;
        let plan = Plan::for_lacks(purpose, pin.as_slice(), &lacks);
        ui::step(&format!(
            "simulate installing the whole set ({} packages) with apt-get -s",
            plan.requests.len()
        ));
        let plan = checked_plan(plan)?;
        for (package, installed, archive) in &plan.downgrades {
            ui::note(&format!(
                "{package} {installed} is installed but not from the configured archives \
                 and conflicts with the rest of the set: installing the archive's {archive}"
            ));
        }
        ui::step(&format!("apt-get install {}", plan.requests.join(" ")));
        apt(&plan.apt_args(false))
            .run_interactive()
            .context("installing the build's Debian packages")?;
    }
    for lack in &lacks {
        match lack {
            Lack::RustTarget(target) => {
                ui::step(&format!("rustup target add {target}"));
                Cmd::new("rustup").args(["target", "add", target]).run()?;
            }
            Lack::RustToolchain { channel, .. } => {
                let argv = rustup_toolchain_install(channel);
                ui::step(&format!("{} (for cargo fuzz, once)", argv.join(" ")));
                Cmd::new(&argv[0]).args(&argv[1..]).run()?;
            }
            Lack::CargoTool { name, version } => {
                ui::step(&format!(
                    "cargo install {name} --version {version} --locked (a few minutes, once)"
                ));
                Cmd::new("cargo")
                    .args(["install", name, "--version", version, "--locked"])
                    .run()?;
            }
            _ => {}
        }
    }
    let left = missing(purpose)?;
    if !left.is_empty() {
        let lines: Vec<String> = left
            .iter()
            .map(|l| format!("  {}: fix with `{}`", l.describe(), l.fix()))
            .collect();
        bail!("still missing after installing:\n{}", lines.join("\n"));
    }
    ui::step(&format!("everything {scope} needs is installed"));
    summary(purpose);
    Ok(())
}

/// With `--verbose`: what was checked and where the build goes.
fn summary(purpose: Purpose) {
    let programs = PROGRAMS
        .iter()
        .filter(|(_, _, n)| purpose.includes(*n))
        .count();
    let files = FILES
        .iter()
        .filter(|(_, _, n)| purpose.includes(*n))
        .count();
    ui::detail(&format!(
        "checked {programs} programs, {files} files, the kernel source package, {} rustup \
         target(s){}",
        RUST_TARGETS.len(),
        if purpose.includes(Purpose::Test) {
            ", cargo-deny, cargo-fuzz and the fuzz targets' nightly toolchain"
        } else {
            ""
        }
    ));
    ui::detail(&format!("checkout  {}", paths::repo_root().display()));
    ui::detail(&format!("build dir {}", paths::build_dir().display()));
    ui::detail(&format!("cache     {}", paths::cache_dir().display()));
}

fn is_root() -> bool {
    Cmd::new("id")
        .arg("-u")
        .read()
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fuzz_toolchain_is_read_from_its_file() {
        let text = "# why\n[toolchain]\nchannel = \"nightly-2026-05-20\"\nprofile = \"minimal\"\n";
        assert_eq!(toolchain_channel(text).unwrap(), "nightly-2026-05-20");
        let err = toolchain_channel("channel = \"nightly\"\n").unwrap_err();
        assert!(err.to_string().contains("no [toolchain] table"), "{err}");
        let err = toolchain_channel("[toolchain]\nprofile = \"minimal\"\n").unwrap_err();
        assert!(err.to_string().contains("channel"), "{err}");
        // The checkout's own file names a dated nightly.
        let ours = fuzz_toolchain(&paths::repo_root().join(FUZZ_TOOLCHAIN_FILE)).unwrap();
        assert!(ours.starts_with("nightly-"), "{ours}");
    }

    #[test]
    fn toolchains_are_matched_by_channel_and_triple() {
        let list = "stable-x86_64-unknown-linux-gnu (active, default)\n\
                    nightly-2026-05-20-x86_64-unknown-linux-gnu\n\
                    1.95.0-x86_64-unknown-linux-gnu\n";
        assert!(toolchain_installed(list, "nightly-2026-05-20"));
        assert!(toolchain_installed(list, "stable"));
        assert!(toolchain_installed(list, "1.95.0"));
        // A dated nightly is not the moving `nightly`, nor another date.
        assert!(!toolchain_installed(list, "nightly"));
        assert!(!toolchain_installed(list, "nightly-2026-05-21"));
        assert!(!toolchain_installed(list, "nightly-2026-05-2"));
        assert!(!toolchain_installed("", "nightly-2026-05-20"));
    }

    #[test]
    fn a_missing_toolchain_says_how_to_install_it() {
        let lack = Lack::RustToolchain {
            channel: "nightly-2026-05-20".into(),
            pinned_in: FUZZ_TOOLCHAIN_FILE,
        };
        assert_eq!(
            lack.fix(),
            "rustup toolchain install nightly-2026-05-20 --profile minimal"
        );
        assert!(lack.describe().contains(FUZZ_TOOLCHAIN_FILE));
        assert!(!lack.needs_apt());
    }
}
