//! `host-tools iso`: the K1OS boot medium, `build/k1os.iso` — an ISO 9660
//! image that boots from a CD and, written raw to a USB stick or a disk, from
//! that too; on BIOS and on UEFI.
//!
//! **Layout** (`docs/boot-contract.md`, "Boot media"): volume ID `K1OS`;
//! `/boot/vmlinuz`, `/boot/initramfs.img`, `/boot/grub/grub.cfg` (rendered
//! from `iso/grub.cfg.in`), `/system.squashfs`; `/boot/grub/bios.img`, the BIOS
//! El Torito image (`grub-mkimage -O i386-pc-eltorito`); GPT partition 2, an
//! EFI system partition appended after the ISO 9660 data, holding
//! `EFI/BOOT/BOOTX64.EFI` (`grub-mkimage -O x86_64-efi`); `/repo`, warp's
//! signed repository (what `./k1os repo build` makes: archives,
//! `index.json`, `index.json.sig`), which the image's default repository
//! list names as `file:///run/k1os/media/repo/`, so packages install from
//! the stick without a network; GRUB's
//! `boot_hybrid.img` in the MBR, so a BIOS boots the stick. Both GRUB images
//! carry the same embedded config (`iso/early.cfg.in`): find the volume
//! labelled `K1OS`, load its `grub.cfg`. This is the recipe
//! `grub-mkrescue` uses, minus `grub-mkrescue`, whose output changes from run
//! to run.
//!
//! **The `debian` profile** boots under Secure Boot: its ESP holds Debian's
//! signed chain instead of K1OS's `BOOTX64.EFI` — shim as `BOOTX64.EFI`,
//! Debian's signed GRUB as `grubx64.efi` ([`signed`], pinned in
//! `kernel/debian-efi.toml`) — and the ISO has `/.disk/info`, the file that
//! GRUB's built-in config searches for before it reads `/boot/grub/grub.cfg`
//! (the same menu). The BIOS image is K1OS's, as for every profile.
//!
//! **A build is a list of named steps** ([`build`]), each printed with its
//! elapsed time: check the host and the inputs (every problem at once) →
//! kernel (cached by [`kernel::ensure_kernel`]) → root filesystem
//! ([`root_filesystem`], the one seam with `host-tools rootfs`) → its
//! dm-verity tree checked ([`verity::read`]) → the initramfs that trusts it
//! (so the ISO's stage 1 refuses any other image) → the
//! repository ([`repository`], the one seam with `host-tools repo build`) →
//! GRUB images and ESP → `grub.cfg` → the ISO. The GRUB step and the ISO step are skipped
//! when their stamp (a hash of every input, in `<out>/iso/*.stamp`) matches,
//! so a rebuild with nothing changed only re-checks.
//!
//! **Reproducible**: `SOURCE_DATE_EPOCH` (default: the last commit's time,
//! [`initramfs::source_date_epoch`]) goes to `xorriso` (volume dates, GPT
//! GUIDs, file dates), to mtools (FAT timestamps) and to the repository (its
//! archives' mtimes and its index's serial; Ed25519 signatures are
//! deterministic, so the signature is too); every file and directory
//! of the staging tree gets that mtime; `TZ=UTC`; the FAT serial is fixed.
//! Two builds of the same inputs are byte-identical (`host-tools/tests/iso.rs`
//! checks it).
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};

use k1os_contract::cmdline::Mode;
use k1os_contract::contract::{self, key};

use crate::initramfs::{self, Compression};
use crate::kernel::{self, Profile};
use crate::repo::build as repo_build;
use crate::run::{self, Cmd};
use crate::{notices, paths, rootfs, ui, verity};

pub mod signed;
pub mod stamp;

use stamp::{Inputs, Stamp, clamp_mtimes, file_size, set_mtime, write_if_changed};

/// The ISO's file name in the output directory (`build/k1os.iso`).
pub const ISO_NAME: &str = "k1os.iso";
/// Paths inside the ISO (`docs/boot-contract.md`, "Boot media").
pub const KERNEL_PATH: &str = "/boot/vmlinuz";
/// The root image's third-party notices, repeated at the root of the media so
/// they can be read without booting.
pub const NOTICES_PATH: &str = "/THIRD-PARTY-NOTICES";
pub const INITRD_PATH: &str = "/boot/initramfs.img";
pub const GRUB_DIR: &str = "/boot/grub";
pub const GRUB_CFG_PATH: &str = "/boot/grub/grub.cfg";
/// The BIOS El Torito image (`cdboot.img` + GRUB's core), inside the ISO
/// because El Torito and `boot_hybrid.img` load it from there.
pub const BIOS_IMAGE_PATH: &str = "/boot/grub/bios.img";
/// The UEFI loader inside the ESP: the removable-media path every firmware tries.
pub const EFI_LOADER_PATH: &str = "/EFI/BOOT/BOOTX64.EFI";
/// warp's signed repository on the media. Stage 1 mounts the media at
/// `/run/k1os/media`, so the image's default repository list
/// (`packages/warp/build.sh`) names it `file:///run/k1os/media/repo/`.
pub const REPO_PATH: &str = "/repo";

/// Menu titles; tests and `host-tools qemu` choose entries by title
/// ([`crate::vm::Console::select_entry`]).
pub const TITLE_AUTO: &str = "K1OS";
pub const TITLE_RAM: &str = "K1OS (RAM mode)";
pub const TITLE_DEBUG: &str = "K1OS (debug)";
/// Seconds the GRUB menu waits before booting the first entry.
pub const MENU_TIMEOUT_S: u32 = 3;
/// The consoles every entry gets: the screen, then the first serial port
/// (the last `console=` is `/dev/console`, where stage 2's shell runs).
pub const CONSOLES: &[&str] = &["console=tty0", "console=ttyS0,115200"];
/// Seconds usb-storage waits after binding a stick before it scans it for
/// disks (`usb-storage.delay_use`, every entry; the kernel's default is 1).
/// The wait is for devices that answer badly right after enumeration; the
/// SCSI scan and sd retry a disk that is not ready yet, and the 1 s is most of
/// the time a USB boot spends in stage 1 (measured under TCG, q35 + OVMF: see
/// `docs/boot-contract.md`). A stick that needs it can get it back from
/// GRUB's editor (`e`): `usb-storage.delay_use=1`.
pub const USB_STORAGE_DELAY_USE_S: u32 = 0;
/// Kernel words the debug entry adds: all kernel messages, with timestamps.
pub const DEBUG_KERNEL_WORDS: &[&str] = &["loglevel=7", "printk.time=1"];

/// GRUB modules built into the BIOS image (dependencies are added by
/// `grub-mkimage`). Nothing is loaded from the ISO at run time.
pub const BIOS_MODULES: &[&str] = &[
    "biosdisk",
    "iso9660",
    "part_msdos",
    "part_gpt",
    "search",
    "search_label",
    "linux",
    "normal",
    "configfile",
    "serial",
    "terminal",
    "echo",
    "test",
    "true",
    "sleep",
    "ls",
    "cat",
    "halt",
    "reboot",
];
/// GRUB modules built into `BOOTX64.EFI`.
pub const EFI_MODULES: &[&str] = &[
    "iso9660",
    "part_msdos",
    "part_gpt",
    "fat",
    "search",
    "search_label",
    "linux",
    "normal",
    "configfile",
    "serial",
    "terminal",
    "echo",
    "test",
    "true",
    "sleep",
    "ls",
    "cat",
    "halt",
    "reboot",
    "efi_gop",
    "efi_uga",
    "all_video",
];

/// GRUB's platform directories and the hybrid MBR.
pub const GRUB_LIB: &str = "/usr/lib/grub";
pub const BOOT_HYBRID_IMG: &str = "/usr/lib/grub/i386-pc/boot_hybrid.img";
/// GPT type GUID of an EFI system partition.
pub const ESP_TYPE_GUID: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";

/// Host programs the ISO steps run (the kernel build checks its own).
const PROGRAMS: &[&str] = &[
    "grub-mkimage",
    "xorriso",
    "mformat",
    "mmd",
    "mcopy",
    "cargo",
];
/// Host programs `host-tools rootfs` needs whatever the packages (which
/// check their own).
const ROOTFS_PROGRAMS: &[&str] = &["mksquashfs"];
/// Host files the ISO steps read, with their Debian packages.
const FILES: &[(&str, &str)] = &[
    (BOOT_HYBRID_IMG, "grub-pc-bin"),
    ("/usr/lib/grub/i386-pc/cdboot.img", "grub-pc-bin"),
    ("/usr/lib/grub/i386-pc/moddep.lst", "grub-pc-bin"),
    ("/usr/lib/grub/x86_64-efi/moddep.lst", "grub-efi-amd64-bin"),
];

/// `iso/` in the checkout: the templates.
pub fn templates_dir() -> PathBuf {
    paths::repo_root().join("iso")
}

/// `<out>/k1os.iso`.
pub fn iso_path(out: &Path) -> PathBuf {
    out.join(ISO_NAME)
}

/// `<out>/iso/`: the ISO's intermediate files and stamps.
pub fn work_dir(out: &Path) -> PathBuf {
    out.join("iso")
}

// ---------------------------------------------------------------------------
// The menu and the GRUB configs

/// One GRUB menu entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MenuEntry {
    pub title: &'static str,
    /// The kernel command line, word by word.
    pub words: Vec<String>,
}

fn mode_word(mode: Mode) -> String {
    format!("{}={}", key::MODE, mode.as_str())
}

/// The menu, in order: "K1OS" (auto mode, the default), "K1OS (RAM mode)",
/// "K1OS (debug)". Every `k1os.*` word comes from the contract's constants.
pub fn menu_entries() -> Vec<MenuEntry> {
    let base = |extra: &[String]| -> Vec<String> {
        CONSOLES
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
            .chain([format!("usb-storage.delay_use={USB_STORAGE_DELAY_USE_S}")])
            .collect()
    };
    let mut debug = vec![mode_word(Mode::Auto), key::DEBUG.to_string()];
    debug.extend(DEBUG_KERNEL_WORDS.iter().map(|s| s.to_string()));
    vec![
        MenuEntry {
            title: TITLE_AUTO,
            words: base(&[mode_word(Mode::Auto)]),
        },
        MenuEntry {
            title: TITLE_RAM,
            words: base(&[mode_word(Mode::Ram)]),
        },
        MenuEntry {
            title: TITLE_DEBUG,
            words: base(&debug),
        },
    ]
}

/// Fills `@NAME@` placeholders and drops `##` lines; an unknown or unfilled
/// placeholder is an error naming the template.
pub fn render(template: &str, name: &str, values: &[(&str, String)]) -> Result<String> {
    let mut out = String::new();
    for line in template
        .lines()
        .filter(|l| !l.trim_start().starts_with("##"))
    {
        let mut line = line.to_string();
        for (key, value) in values {
            line = line.replace(&format!("@{key}@"), value);
        }
        if let Some(start) = line.find('@')
            && let Some(len) = line[start + 1..].find('@')
        {
            let placeholder = &line[start..start + len + 2];
            if placeholder[1..placeholder.len() - 1]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == '_')
            {
                bail!(
                    "{name}: unknown placeholder {placeholder} in `{}`",
                    line.trim()
                );
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

fn read_template(file: &str) -> Result<(PathBuf, String)> {
    let path = templates_dir().join(file);
    let text = fs::read_to_string(&path)
        .with_context(|| format!("reading the template {}", path.display()))?;
    Ok((path, text))
}

/// `/boot/grub/grub.cfg`, from `iso/grub.cfg.in` and [`menu_entries`].
pub fn grub_cfg() -> Result<String> {
    let (path, template) = read_template("grub.cfg.in")?;
    let entries = menu_entries();
    let cmdline = |title: &str| -> String {
        entries
            .iter()
            .find(|e| e.title == title)
            .expect("every title has an entry")
            .words
            .join(" ")
    };
    render(
        &template,
        &path.display().to_string(),
        &[
            ("TIMEOUT", MENU_TIMEOUT_S.to_string()),
            ("KERNEL", KERNEL_PATH.to_string()),
            ("INITRD", INITRD_PATH.to_string()),
            ("TITLE_AUTO", TITLE_AUTO.to_string()),
            ("TITLE_RAM", TITLE_RAM.to_string()),
            ("TITLE_DEBUG", TITLE_DEBUG.to_string()),
            ("CMDLINE_AUTO", cmdline(TITLE_AUTO)),
            ("CMDLINE_RAM", cmdline(TITLE_RAM)),
            ("CMDLINE_DEBUG", cmdline(TITLE_DEBUG)),
        ],
    )
}

/// The config embedded in both GRUB images, from `iso/early.cfg.in`.
pub fn early_cfg() -> Result<String> {
    let (path, template) = read_template("early.cfg.in")?;
    render(
        &template,
        &path.display().to_string(),
        &[
            ("MEDIA_LABEL", contract::MEDIA_LABEL.to_string()),
            ("GRUB_DIR", GRUB_DIR.to_string()),
            ("GRUB_CFG", GRUB_CFG_PATH.to_string()),
        ],
    )
}

// ---------------------------------------------------------------------------
// The build

/// What `host-tools iso` builds, and from what.
#[derive(Clone, Debug)]
pub struct Options {
    pub profile: Profile,
    /// A kernel tarball or tree instead of the pinned source.
    pub kernel_source: Option<PathBuf>,
    /// Output directory: `<out>/k1os.iso`, `<out>/initramfs.img`, `<out>/iso/`.
    pub out: PathBuf,
    /// A ready root filesystem image to ship instead of building one.
    pub system: Option<PathBuf>,
}

/// One line of the final size table.
#[derive(Clone, Debug)]
pub struct Artefact {
    pub what: &'static str,
    pub path: PathBuf,
    pub size: u64,
}

/// What [`build`] made.
#[derive(Clone, Debug)]
pub struct Built {
    pub iso: PathBuf,
    /// False when the stamp matched and the ISO was left as it was.
    pub rebuilt: bool,
    pub epoch: u32,
    pub artefacts: Vec<Artefact>,
}

/// Builds `<out>/k1os.iso` and whatever it needs that is missing or stale.
pub fn build(opts: &Options) -> Result<Built> {
    let step = ui::Step::start("check the host and the inputs");
    check(opts)?;
    step.done("done");

    let epoch = initramfs::source_date_epoch()?;
    let work = work_dir(&opts.out);
    fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    let kernel = kernel::ensure_kernel(opts.profile, opts.kernel_source.as_deref())?;

    // The image first: the initramfs trusts it (its root hash is packed in).
    let system = root_filesystem(opts, kernel.modules.as_deref())?;
    let step = ui::Step::start("the image's dm-verity hash tree");
    let trust = verity::read(&system)?;
    step.done(&format!(
        "root hash {}, tree {}",
        trust.root_hex(),
        ui::human_size(trust.tree_bytes)
    ));

    let step = ui::Step::start("initramfs (trusting that image)");
    let initrd = initramfs::build(
        &opts.out,
        // Debian's modules: 2.4 MiB with gzip, 1.8 with zstd (its kernel
        // unpacks both).
        match kernel.modules {
            Some(_) => Compression::Zstd,
            None => Compression::Gzip,
        },
        Some(&trust),
        kernel.modules.as_deref(),
    )?;
    step.done(&format!(
        "{} ({})",
        initrd.image.display(),
        ui::human_size(initrd.image_size)
    ));

    let repo = repository(opts)?;

    // Debian's kernel boots under Secure Boot through Debian's signed chain;
    // the kernels K1OS builds through its own GRUB, which no firmware with
    // Secure Boot on accepts.
    let chain = match opts.profile.is_built() {
        true => None,
        false => Some(signed::SignedChain::load()?),
    };
    let grub = grub_images(&work, epoch, chain.as_ref())?;
    // The signed GRUB finds the medium by this file.
    let disk_info = match chain {
        Some(_) => {
            let path = work.join("disk-info");
            let release = kernel::debian::DebianPin::load()?.release().to_string();
            write_if_changed(&path, signed::disk_info(&release).as_bytes())?;
            Some(path)
        }
        None => None,
    };

    let step = ui::Step::start("grub.cfg");
    let cfg = work.join("grub.cfg");
    write_if_changed(&cfg, grub_cfg()?.as_bytes())?;
    step.done("done");

    let notices = work.join("THIRD-PARTY-NOTICES");
    extract_notices(&system, &notices)?;

    let iso = iso_path(&opts.out);
    let inputs = IsoInputs {
        kernel: &kernel.bzimage,
        initrd: &initrd.image,
        system: &system,
        grub_cfg: &cfg,
        bios_image: &grub.bios,
        esp: &grub.esp,
        notices: &notices,
        repo: &repo,
        disk_info: disk_info.as_deref(),
    };
    let rebuilt = assemble(&inputs, &work, &iso, epoch)?;

    let mut artefacts: Vec<Artefact> = [
        ("kernel (/boot/vmlinuz)", kernel.bzimage.clone()),
        ("initramfs (/boot/initramfs.img)", initrd.image.clone()),
        ("root filesystem (/system.squashfs)", system.clone()),
        ("GRUB for BIOS (/boot/grub/bios.img)", grub.bios.clone()),
    ]
    .into_iter()
    .chain(grub.efi.iter().map(|f| (f.what, f.path.clone())))
    .chain([
        ("EFI system partition", grub.esp.clone()),
        ("ISO", iso.clone()),
    ])
    .map(|(what, path)| Artefact {
        what,
        size: file_size(&path),
        path,
    })
    .collect();
    // Before the ISO's own line, which stays last.
    artefacts.insert(
        3,
        Artefact {
            what: "repository (/repo)",
            size: repo
                .files
                .iter()
                .map(|f| file_size(&repo.dir.join(f)))
                .sum(),
            path: repo.dir.clone(),
        },
    );
    Ok(Built {
        iso,
        rebuilt,
        epoch,
        artefacts,
    })
}

/// The validation pass: every missing program, file, template or input is
/// reported in one error, before anything is built.
pub fn check(opts: &Options) -> Result<()> {
    let mut problems: Vec<String> = Vec::new();
    let mut programs: Vec<&str> = PROGRAMS.to_vec();
    if opts.system.is_none() {
        programs.extend_from_slice(ROOTFS_PROGRAMS);
    }
    for program in programs {
        if let Err(err) = run::check_program(program) {
            problems.push(err.to_string());
        }
    }
    for (file, pkg) in FILES {
        if !Path::new(file).exists() {
            problems.push(format!(
                "{file} is missing: it comes with the Debian package `{pkg}` \
                 (run `./k1os doctor --install`, or `apt-get install {pkg}`)"
            ));
        }
    }
    match &opts.kernel_source {
        Some(source) if !source.exists() => problems.push(format!(
            "the kernel source {} (--kernel-source) does not exist: pass a kernel tarball \
             (linux-*.tar.xz) or an unpacked kernel tree, or leave --kernel-source out to build \
             the pinned source (kernel/pin.toml)",
            source.display()
        )),
        Some(_) => {}
        // Debian's kernel is downloaded (kernel/debian.toml), not built:
        // the pinned source is not needed.
        None if !opts.profile.is_built() => {}
        None => match kernel::Pin::load() {
            Ok(pin) if !pin.path.exists() => problems.push(format!(
                "the pinned kernel source {} (Linux {}) is missing: install it with \
                 `./k1os doctor --install` or `apt-get install {}`, or pass \
                 --kernel-source TARBALL|DIR",
                pin.path.display(),
                pin.version,
                pin.debian_package
            )),
            Ok(_) => {}
            Err(err) => problems.push(format!("{err:#}")),
        },
    }
    if !opts.profile.is_built() {
        // Debian's signed shim and GRUB, unpacked from their packages.
        if let Err(err) = signed::SignedChain::load() {
            problems.push(format!("{err:#}"));
        }
        if let Err(err) = run::check_program("dpkg-deb") {
            problems.push(err.to_string());
        }
    }
    if let Some(system) = &opts.system
        && !system.is_file()
    {
        problems.push(format!(
            "the root filesystem image {} (--system) does not exist",
            system.display()
        ));
    }
    for rendered in [grub_cfg(), early_cfg()] {
        if let Err(err) = rendered {
            problems.push(format!("{err:#}"));
        }
    }
    match problems.len() {
        0 => Ok(()),
        1 => bail!("cannot build the ISO: {}", problems[0]),
        _ => bail!("cannot build the ISO:\n  - {}", problems.join("\n  - ")),
    }
}

/// The root filesystem image that becomes the ISO's `/system.squashfs`:
/// **the one place the ISO gets it from.** `--system` ships a given image;
/// otherwise [`rootfs::build`] builds the packages (cached) and packs
/// `<out>/rootfs/` into `<out>/system.squashfs` (`build/system.squashfs` by
/// default, the same file `host-tools rootfs` makes), with `kernel_modules`
/// (the kernel's `/lib/modules/<release>` tree, for the `debian` profile)
/// as the image's `/lib/modules/<release>`.
pub fn root_filesystem(opts: &Options, kernel_modules: Option<&Path>) -> Result<PathBuf> {
    if let Some(system) = &opts.system {
        ui::step(&format!("root filesystem: {} (--system)", system.display()));
        return Ok(system.clone());
    }
    let step = ui::Step::start("root filesystem (./k1os rootfs)");
    let mut rootfs_opts = rootfs::Options::default_for_checkout(rootfs::Compression::Zstd);
    rootfs_opts.staging = opts.out.join("rootfs");
    rootfs_opts.image = opts
        .out
        .join(contract::DEFAULT_IMAGE.trim_start_matches('/'));
    rootfs_opts.settings.work_dir = opts.out.join("packages");
    rootfs_opts.kernel_modules = kernel_modules.map(Path::to_path_buf);
    let built = rootfs::build(&rootfs_opts, |b| {
        let what = if b.cached { "cached" } else { "built" };
        ui::detail(&format!(
            "package {} {}: {what} ({:.1} s)",
            b.name,
            b.version,
            b.elapsed.as_secs_f64()
        ));
    })?;
    let rebuilt = built.packages.iter().filter(|b| !b.cached).count();
    let kept = match built.packed {
        true => "",
        false => ", up to date",
    };
    let modules = match &built.modules_release {
        Some(release) => format!(", the modules of {release}"),
        None => String::new(),
    };
    step.done(&format!(
        "{} packages ({rebuilt} built){modules}, {} ({}{kept})",
        built.packages.len(),
        built.image.display(),
        ui::human_size(built.size)
    ));
    Ok(built.image)
}

/// The repository that becomes the ISO's `/repo`.
pub struct MediaRepo {
    /// `<out>/repo/` (`build/repo/` by default, where `./k1os repo build`
    /// puts it too).
    pub dir: PathBuf,
    /// Its files, sorted: the archives, `index.json`, `index.json.sig`, the
    /// signing key's `.pub`.
    pub files: Vec<String>,
}

/// The signed repository of the checkout's `repository = true` packages,
/// built by [`repo_build::build`] into `<out>/repo/` (packages cached like
/// the image's; the build key, or `$K1OS_REPO_KEY`, signs it: the key whose
/// public half the image trusts). The serial is `SOURCE_DATE_EPOCH`, so a
/// newer ISO's repository is newer for warp too.
pub fn repository(opts: &Options) -> Result<MediaRepo> {
    let step = ui::Step::start("repository (./k1os repo build)");
    let mut repo_opts = repo_build::Options::default_for_checkout();
    repo_opts.out = opts.out.join(REPO_PATH.trim_start_matches('/'));
    repo_opts.settings.work_dir = opts.out.join("packages");
    let built = repo_build::build(&repo_opts, |b| {
        let what = if b.cached { "cached" } else { "built" };
        ui::detail(&format!(
            "package {} {}: {what} ({:.1} s)",
            b.name,
            b.version,
            b.elapsed.as_secs_f64()
        ));
    })?;
    // Everything `repo build` left in the directory, which it keeps to
    // exactly its outputs (stale archives and keys removed); its temporary
    // files start with a dot and are gone once it returned.
    let mut files = Vec::new();
    for entry in
        fs::read_dir(&built.dir).with_context(|| format!("reading {}", built.dir.display()))?
    {
        let entry = entry.with_context(|| format!("reading {}", built.dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if !entry.file_type()?.is_file() {
            bail!(
                "{}: not a regular file; a repository directory holds only files",
                entry.path().display()
            );
        }
        files.push(name);
    }
    files.sort();
    let bytes: u64 = built.packages.iter().map(|p| p.size).sum();
    step.done(&format!(
        "{} package{}, {} (serial {}, key {})",
        built.packages.len(),
        if built.packages.len() == 1 { "" } else { "s" },
        ui::human_size(bytes),
        built.serial,
        built.keynum
    ));
    Ok(MediaRepo {
        dir: built.dir,
        files,
    })
}

/// Copies `THIRD-PARTY-NOTICES` out of the root image (where `host-tools
/// rootfs` writes it) to `to`, for the root of the media.
fn extract_notices(system: &Path, to: &Path) -> Result<()> {
    let text = Cmd::new("unsquashfs")
        .arg("-cat")
        .arg(system)
        .arg(notices::NOTICES_PATH)
        .read()
        .with_context(|| {
            format!(
                "{} has no /{} (images made by `./k1os rootfs` have it)",
                system.display(),
                notices::NOTICES_PATH
            )
        })?;
    write_if_changed(to, text.as_bytes())
}

/// The GRUB images of a build.
pub struct GrubImages {
    /// `bios.img`: i386-pc El Torito (cdboot.img + core).
    pub bios: PathBuf,
    /// What the ESP holds: K1OS's `BOOTX64.EFI`, or Debian's signed shim
    /// and GRUB.
    pub efi: Vec<EspFile>,
    /// `efi.img`: the FAT image appended as the EFI system partition.
    pub esp: PathBuf,
}

/// A file of the EFI system partition.
pub struct EspFile {
    /// For the size table.
    pub what: &'static str,
    /// Its path in the ESP.
    pub esp_path: &'static str,
    /// The file in the work directory.
    pub path: PathBuf,
}

/// `grub-mkimage` for BIOS and the ESP, unless the stamp says nothing they
/// are made from changed. The ESP holds `grub-mkimage`'s `BOOTX64.EFI`, or,
/// with `chain` (the `debian` profile), Debian's signed shim and GRUB
/// ([`signed`]).
fn grub_images(work: &Path, epoch: u32, chain: Option<&signed::SignedChain>) -> Result<GrubImages> {
    let step = ui::Step::start(match chain {
        None => "GRUB images (BIOS El Torito, UEFI BOOTX64.EFI, ESP)",
        Some(_) => "GRUB images (BIOS El Torito; ESP: Debian's signed shim and GRUB)",
    });
    let efi = match chain {
        None => vec![EspFile {
            what: "GRUB for UEFI (BOOTX64.EFI)",
            esp_path: EFI_LOADER_PATH,
            path: work.join("BOOTX64.EFI"),
        }],
        Some(_) => {
            let signed = signed::binaries_in(work);
            vec![
                EspFile {
                    what: "shim, Microsoft-signed (BOOTX64.EFI)",
                    esp_path: EFI_LOADER_PATH,
                    path: signed.shim,
                },
                EspFile {
                    what: "GRUB, Debian-signed (grubx64.efi)",
                    esp_path: signed::SECOND_STAGE_PATH,
                    path: signed.grub,
                },
            ]
        }
    };
    let images = GrubImages {
        bios: work.join("bios.img"),
        efi,
        esp: work.join("efi.img"),
    };
    let early = early_cfg()?;
    let mut inputs = Inputs::new("grub");
    inputs.text("early.cfg", &early);
    inputs.text("bios modules", &BIOS_MODULES.join(" "));
    inputs.text("SOURCE_DATE_EPOCH", &epoch.to_string());
    inputs.text(
        "grub-mkimage",
        Cmd::new("grub-mkimage").arg("--version").read()?.trim(),
    );
    inputs.text(
        "mformat",
        Cmd::new("mformat")
            .arg("--version")
            .read()?
            .lines()
            .next()
            .unwrap_or(""),
    );
    let mut platforms = vec![("i386-pc", BIOS_MODULES)];
    match chain {
        None => {
            inputs.text("efi modules", &EFI_MODULES.join(" "));
            platforms.push(("x86_64-efi", EFI_MODULES));
        }
        // The pin's sha256s fix the binaries.
        Some(chain) => inputs.text("debian-efi.toml", &chain.text),
    }
    for (platform, modules) in platforms {
        let dir = Path::new(GRUB_LIB).join(platform);
        for file in ["kernel.img", "moddep.lst", "cdboot.img"] {
            let path = dir.join(file);
            if path.exists() {
                inputs.file(&format!("{platform}/{file}"), &path)?;
            }
        }
        for module in modules {
            inputs.file(
                &format!("{platform}/{module}.mod"),
                &dir.join(format!("{module}.mod")),
            )?;
        }
    }
    let stamp = Stamp::new(work, "grub", &inputs);
    let outputs: Vec<&Path> = [images.bios.as_path(), &images.esp]
        .into_iter()
        .chain(images.efi.iter().map(|f| f.path.as_path()))
        .collect();
    if stamp.is_fresh(&outputs) {
        step.done("up to date");
        return Ok(images);
    }
    let early_path = work.join("early.cfg");
    fs::write(&early_path, &early).with_context(|| format!("writing {}", early_path.display()))?;
    let mkimage = |format: &str, out: &Path, modules: &[&str]| {
        Cmd::new("grub-mkimage")
            .args(["-O", format, "-p", GRUB_DIR, "-c"])
            .arg(&early_path)
            .arg("-o")
            .arg(out)
            .args(modules.iter().copied())
            .run()
    };
    mkimage("i386-pc-eltorito", &images.bios, BIOS_MODULES)?;
    match chain {
        None => mkimage("x86_64-efi", &images.efi[0].path, EFI_MODULES)?,
        Some(chain) => {
            signed::fetch(chain, work)?;
        }
    }
    make_esp(&images.efi, &images.esp, epoch)?;
    stamp.record(&outputs)?;
    let sizes: Vec<String> = [("bios.img", &images.bios)]
        .into_iter()
        .chain(
            images
                .efi
                .iter()
                .map(|f| (f.esp_path.rsplit('/').next().unwrap_or(f.esp_path), &f.path)),
        )
        .chain([("ESP", &images.esp)])
        .map(|(name, path)| format!("{name} {}", ui::human_size(file_size(path))))
        .collect();
    step.done(&sizes.join(", "));
    Ok(images)
}

/// The FAT image of the EFI system partition: `files` (all in
/// `/EFI/BOOT/`) and room to spare, made with mtools (no loop device, no
/// root). The serial is 0 and every timestamp `epoch`.
fn make_esp(files: &[EspFile], esp: &Path, epoch: u32) -> Result<()> {
    const MIB: u64 = 1024 * 1024;
    // The FAT's own tables and directories take up to ~1 MiB of a small
    // image: shim and the signed GRUB (1 + 3.7 MiB) do not fit in 5 MiB.
    let payload: u64 = files.iter().map(|f| file_size(&f.path)).sum();
    let slack = if files.len() > 1 { MIB } else { 256 * 1024 };
    let size = (payload + slack).div_ceil(MIB) * MIB;
    let _ = fs::remove_file(esp);
    let file = fs::File::create(esp).with_context(|| format!("creating {}", esp.display()))?;
    file.set_len(size)
        .with_context(|| format!("sizing {}", esp.display()))?;
    drop(file);
    let mtools = |program: &str| {
        Cmd::new(program)
            .env("SOURCE_DATE_EPOCH", epoch.to_string())
            .env("TZ", "UTC")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(esp)
    };
    mtools("mformat").args(["-N", "0", "::"]).run()?;
    mtools("mmd").args(["::/EFI", "::/EFI/BOOT"]).run()?;
    for f in files {
        set_mtime(&f.path, epoch)?;
        mtools("mcopy")
            .arg("-m")
            .arg(&f.path)
            .arg(format!("::{}", f.esp_path))
            .run()?;
    }
    Ok(())
}

/// The files that go into the ISO.
struct IsoInputs<'a> {
    kernel: &'a Path,
    initrd: &'a Path,
    system: &'a Path,
    grub_cfg: &'a Path,
    bios_image: &'a Path,
    esp: &'a Path,
    notices: &'a Path,
    repo: &'a MediaRepo,
    /// [`signed::DISK_INFO_PATH`], with Debian's signed chain.
    disk_info: Option<&'a Path>,
}

/// Stages the tree, clamps its mtimes and runs `xorriso`, unless the stamp
/// matches. Returns whether the ISO was (re)built.
fn assemble(inputs: &IsoInputs, work: &Path, iso: &Path, epoch: u32) -> Result<bool> {
    let step = ui::Step::start(format!("ISO {}", iso.display()));
    let xorriso_version = Cmd::new("xorriso").arg("-version").read()?;
    let mut key = Inputs::new("iso");
    key.text("SOURCE_DATE_EPOCH", &epoch.to_string());
    key.text("xorriso", xorriso_version.lines().next().unwrap_or(""));
    key.text("volume id", contract::MEDIA_LABEL);
    key.file(KERNEL_PATH, inputs.kernel)?;
    key.file(INITRD_PATH, inputs.initrd)?;
    key.file(contract::DEFAULT_IMAGE, inputs.system)?;
    key.file(GRUB_CFG_PATH, inputs.grub_cfg)?;
    key.file(BIOS_IMAGE_PATH, inputs.bios_image)?;
    key.file("ESP", inputs.esp)?;
    key.file(NOTICES_PATH, inputs.notices)?;
    for file in &inputs.repo.files {
        key.file(&format!("{REPO_PATH}/{file}"), &inputs.repo.dir.join(file))?;
    }
    key.file("MBR", Path::new(BOOT_HYBRID_IMG))?;
    if let Some(info) = inputs.disk_info {
        key.file(signed::DISK_INFO_PATH, info)?;
    }
    let stamp = Stamp::new(work, "iso", &key);
    if stamp.is_fresh(&[iso]) {
        step.done("up to date");
        return Ok(false);
    }

    let root = work.join("root");
    if root.exists() {
        fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    }
    let image = contract::DEFAULT_IMAGE;
    let repo_files: Vec<(String, PathBuf)> = inputs
        .repo
        .files
        .iter()
        .map(|f| (format!("{REPO_PATH}/{f}"), inputs.repo.dir.join(f)))
        .collect();
    // An empty repository still has its index: the directory always exists.
    fs::create_dir_all(root.join(REPO_PATH.trim_start_matches('/')))
        .with_context(|| format!("creating {REPO_PATH} in {}", root.display()))?;
    for (dest, src) in [
        (KERNEL_PATH, inputs.kernel),
        (INITRD_PATH, inputs.initrd),
        (GRUB_CFG_PATH, inputs.grub_cfg),
        (BIOS_IMAGE_PATH, inputs.bios_image),
        (image, inputs.system),
        (NOTICES_PATH, inputs.notices),
    ]
    .into_iter()
    .chain(inputs.disk_info.map(|info| (signed::DISK_INFO_PATH, info)))
    .chain(repo_files.iter().map(|(d, s)| (d.as_str(), s.as_path())))
    {
        let to = root.join(dest.trim_start_matches('/'));
        fs::create_dir_all(to.parent().expect("staged files are in a directory"))
            .with_context(|| format!("creating the directory of {}", to.display()))?;
        fs::copy(src, &to)
            .with_context(|| format!("copying {} to {}", src.display(), to.display()))?;
    }
    clamp_mtimes(&root, epoch)?;

    let partial = iso.with_file_name(format!(".{ISO_NAME}.partial"));
    let _ = fs::remove_file(&partial);
    Cmd::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-iso-level", "3", "-r"])
        .args(["-V", contract::MEDIA_LABEL])
        .arg("-o")
        .arg(&partial)
        // BIOS, CD: El Torito, no emulation, GRUB's boot info patched in.
        .args(["-eltorito-boot", BIOS_IMAGE_PATH.trim_start_matches('/')])
        .args([
            "-no-emul-boot",
            "-boot-load-size",
            "4",
            "-boot-info-table",
            "--grub2-boot-info",
        ])
        // BIOS, disk: GRUB's hybrid MBR loads the same image; the ISO 9660
        // data is partition 1, starting 16 blocks in with its own superblock.
        .args([
            "--grub2-mbr",
            BOOT_HYBRID_IMG,
            "--mbr-force-bootable",
            "-partition_offset",
            "16",
        ])
        // UEFI, disk: the ESP appended as GPT partition 2.
        .args(["-append_partition", "2", ESP_TYPE_GUID])
        .arg(inputs.esp)
        .arg("-appended_part_as_gpt")
        // UEFI, CD: a second El Torito entry pointing at that partition.
        .args([
            "-eltorito-alt-boot",
            "-e",
            "--interval:appended_partition_2:all::",
            "-no-emul-boot",
        ])
        .arg(&root)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .env("TZ", "UTC")
        .run()
        .with_context(|| format!("making {}", iso.display()))?;
    fs::rename(&partial, iso)
        .with_context(|| format!("renaming {} to {}", partial.display(), iso.display()))?;
    // The staged copies (the root image above all) are not needed any more.
    fs::remove_dir_all(&root).with_context(|| format!("removing {}", root.display()))?;
    stamp.record(&[iso])?;
    step.done(&format!("built, {}", ui::human_size(file_size(iso))));
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k1os_contract::cmdline;

    #[test]
    fn menu_entries_parse_as_the_contract_says() {
        let entries = menu_entries();
        let titles: Vec<&str> = entries.iter().map(|e| e.title).collect();
        assert_eq!(titles, [TITLE_AUTO, TITLE_RAM, TITLE_DEBUG]);
        let expected = [(Mode::Auto, false), (Mode::Ram, false), (Mode::Auto, true)];
        for (entry, (mode, debug)) in entries.iter().zip(expected) {
            let line = entry.words.join(" ");
            let mut warnings = Vec::new();
            let config =
                cmdline::parse(line.as_bytes(), &mut |w| warnings.push(w.problem.as_str()));
            assert!(warnings.is_empty(), "{}: {line}: {warnings:?}", entry.title);
            assert_eq!(config.mode, mode, "{}: {line}", entry.title);
            assert_eq!(config.debug, debug, "{}: {line}", entry.title);
            assert!(
                line.starts_with("console=tty0 console=ttyS0,115200 "),
                "{line}"
            );
        }
    }

    #[test]
    fn grub_cfg_has_the_three_entries_and_both_consoles() {
        let cfg = grub_cfg().unwrap();
        assert!(!cfg.contains('@'), "unfilled placeholder:\n{cfg}");
        assert!(!cfg.contains("##"), "template comments are dropped:\n{cfg}");
        for title in [TITLE_AUTO, TITLE_RAM, TITLE_DEBUG] {
            assert!(
                cfg.contains(&format!("menuentry \"{title}\"")),
                "{title}:\n{cfg}"
            );
        }
        assert!(cfg.contains("serial --unit=0 --speed=115200"), "{cfg}");
        assert!(cfg.contains("terminal_output serial console"), "{cfg}");
        assert!(
            cfg.contains(&format!("set timeout={MENU_TIMEOUT_S}\n")),
            "{cfg}"
        );
        assert!(
            cfg.contains(
                "linux /boot/vmlinuz console=tty0 console=ttyS0,115200 k1os.mode=ram \
                 usb-storage.delay_use=0\n"
            ),
            "{cfg}"
        );
        assert_eq!(
            cfg.matches("initrd /boot/initramfs.img").count(),
            3,
            "{cfg}"
        );
    }

    #[test]
    fn early_cfg_searches_the_media_label() {
        let cfg = early_cfg().unwrap();
        assert!(
            cfg.starts_with("search --no-floppy --set=root --label K1OS\n"),
            "{cfg}"
        );
        // The rescue parser that runs it knows no `if`.
        assert!(!cfg.lines().any(|l| l.starts_with("if ")), "{cfg}");
        assert!(
            cfg.contains("configfile ($root)/boot/grub/grub.cfg"),
            "{cfg}"
        );
    }

    #[test]
    fn render_rejects_unknown_placeholders() {
        let err = render("a @NOPE@ b\n", "t.in", &[]).unwrap_err().to_string();
        assert!(err.contains("t.in") && err.contains("@NOPE@"), "{err}");
        assert_eq!(
            render("## gone\nx @A@ y\nuser@host\n", "t", &[("A", "1".into())]).unwrap(),
            "x 1 y\nuser@host\n"
        );
    }
}
