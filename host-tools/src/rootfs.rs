//! The root filesystem: every package of `packages/` built (or taken from the
//! cache, see [`crate::packages`]), their outputs merged into the staging tree
//! `build/rootfs/`, checked for what stage 1 needs, and packed into
//! `build/system.squashfs` reproducibly: owners 0, every timestamp
//! `SOURCE_DATE_EPOCH`, no xattrs, entries sorted by `mksquashfs` itself,
//! with its dm-verity hash tree appended ([`crate::verity`]).
//!
//! The skeleton (`rootfs/`: `/etc`, stage 2's scripts) is the `base`
//! package's source, so it is cached and conflict-checked like any package.
//!
//! With a kernel whose drivers are modules (the `debian` profile), its whole
//! module tree goes into the image as `/lib/modules/<release>`, as it is
//! (signed `.ko` files, `modules.dep`, `modules.alias`): stage 1 carries only
//! what it needs to find the media ([`initramfs`]), and stage 2's `modules`
//! service loads the rest for the hardware it finds
//! (`rootfs/sbin/k1os-modules`).
//!
//! Repository packages (`repository = true`) are not built here and never
//! staged: `repo build` publishes them for warp. The image ships nothing
//! under `/usr/local` and `/opt` but empty directories: that is where warp
//! installs ([`check_staging`] makes sure).
use anyhow::{Context, Result, bail, ensure};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k1os_contract::contract;

use crate::iso::stamp::{Inputs, Stamp};
use crate::packages::{self, Built, Plan, Settings};
use crate::run::Cmd;
use crate::verity::{self, Verity};
use crate::{initramfs, notices, paths};

/// Compression of the squashfs (the K1OS kernel reads both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Compression {
    /// zstd (mksquashfs' default level): fast to unpack, the default.
    Zstd,
    /// xz with the x86 BCJ filter: smaller, slower to read.
    Xz,
}

impl Compression {
    fn mksquashfs_args(self) -> &'static [&'static str] {
        match self {
            Compression::Zstd => &["-comp", "zstd"],
            Compression::Xz => &["-comp", "xz", "-Xbcj", "x86"],
        }
    }
}

/// What `host-tools rootfs` builds, and where.
#[derive(Clone, Debug)]
pub struct Options {
    pub settings: Settings,
    /// The staging tree (default `build/rootfs/`), emptied first.
    pub staging: PathBuf,
    /// The image (default `build/system.squashfs`).
    pub image: PathBuf,
    pub compression: Compression,
    /// A kernel's `/lib/modules/<release>` tree to ship in the image (the
    /// `debian` profile's `build/kernel/modules`); `None` for a kernel with
    /// its drivers built in.
    pub kernel_modules: Option<PathBuf>,
}

impl Options {
    /// The checkout's packages into `build/rootfs/` and `build/system.squashfs`.
    pub fn default_for_checkout(compression: Compression) -> Options {
        let build = paths::build_dir();
        Options {
            settings: Settings::default_for_checkout(),
            staging: build.join("rootfs"),
            image: build.join("system.squashfs"),
            compression,
            kernel_modules: None,
        }
    }
}

/// What [`build`] made.
#[derive(Clone, Debug)]
pub struct Rootfs {
    pub packages: Vec<Built>,
    pub image: PathBuf,
    /// The image's size, its hash tree included.
    pub size: u64,
    /// Its dm-verity parameters (the tree is appended to the image).
    pub verity: Verity,
    /// Files, directories and symlinks in the image (the root excluded).
    pub entries: usize,
    /// The kernel release whose modules the image carries
    /// (`/lib/modules/<release>`), if any.
    pub modules_release: Option<String>,
    /// False when the image there was packed from the same tree before
    /// (its stamp matched) and was kept.
    pub packed: bool,
    /// Time spent staging and packing the image (or finding it up to date).
    pub pack_time: Duration,
}

/// Builds the image's packages (not the repository packages), stages them
/// and packs the image. `report` is called once per package when it is done
/// (cached or built).
pub fn build(opts: &Options, report: impl FnMut(&Built)) -> Result<Rootfs> {
    let plan = Plan::new(opts.settings.clone())?;
    let built = plan.build_selected(|p| !p.repository, report)?;
    let start = Instant::now();
    stage(&built, &opts.staging)?;
    let modules_release = match &opts.kernel_modules {
        Some(tree) => Some(stage_kernel_modules(tree, &opts.staging)?),
        None => None,
    };
    let shipped: Vec<_> = plan
        .packages
        .iter()
        .filter(|p| !p.package.repository)
        .map(|p| p.package.clone())
        .collect();
    notices::write_into(&opts.staging, &shipped, modules_release.as_deref())?;
    let entries = count_entries(&opts.staging)?;
    check_staging(&opts.staging)?;
    let epoch = initramfs::source_date_epoch()?;
    // The image is what mksquashfs makes of exactly this tree: when the tree
    // (with its modes), the compression, the epoch and mksquashfs are what
    // they were, the image there is the one it would make again. That saves
    // the `debian` profile's 400 MB of modules being packed again (~40 s).
    let mut inputs = Inputs::new("squashfs");
    inputs.text(
        "tree",
        &packages::tree::tree_hash_with_modes(&opts.staging)?,
    );
    inputs.text("compression", &format!("{:?}", opts.compression));
    inputs.text("epoch", &epoch.to_string());
    inputs.text(
        "mksquashfs",
        &Cmd::new("mksquashfs").arg("-version").read()?,
    );
    let stamp = stamp_for(&opts.image, &inputs);
    let packed = !stamp.is_fresh(&[&opts.image]);
    let verity = match packed {
        true => {
            let verity = squashfs(&opts.staging, &opts.image, opts.compression, epoch)?;
            stamp.record(&[&opts.image])?;
            verity
        }
        false => verity::read(&opts.image)?,
    };
    let size = fs::metadata(&opts.image)
        .with_context(|| format!("reading {}", opts.image.display()))?
        .len();
    Ok(Rootfs {
        packages: built,
        image: opts.image.clone(),
        size,
        verity,
        entries,
        modules_release,
        packed,
        pack_time: start.elapsed(),
    })
}

/// The stamp of `image`: `<image>.stamp` beside it, the inputs in
/// `<image>.inputs`.
fn stamp_for(image: &Path, inputs: &Inputs) -> Stamp {
    let dir = image.parent().unwrap_or(Path::new("."));
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Stamp::new(dir, &name, inputs)
}

/// Files, directories and symlinks below `dir` (not following symlinks).
fn count_entries(dir: &Path) -> Result<usize> {
    let mut n = 0;
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        n += 1;
        if entry.file_type()?.is_dir() {
            n += count_entries(&entry.path())?;
        }
    }
    Ok(n)
}

/// Merges the packages' outputs into `staging` (emptied first). Two packages
/// may share a directory (with the same mode) but never a file or a symlink.
/// Returns the number of entries.
pub fn stage(built: &[Built], staging: &Path) -> Result<usize> {
    if staging.exists() {
        fs::remove_dir_all(staging).with_context(|| format!("removing {}", staging.display()))?;
    }
    fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    fs::set_permissions(staging, fs::Permissions::from_mode(0o755))?;
    let mut owners: BTreeMap<PathBuf, String> = BTreeMap::new();
    for b in built {
        packages::tree::copy_tree(&b.root, staging, Some((&b.name, &mut owners)))
            .with_context(|| format!("staging package `{}` into {}", b.name, staging.display()))?;
    }
    Ok(owners.len())
}

/// Copies the module tree `tree` (a `/lib/modules/<release>` directory with
/// its `modules.dep`; a symlink to one, like `build/kernel/modules`, counts
/// as the directory it points to) into `staging` as
/// `/lib/modules/<release>`. Returns the release. A package that installs
/// something there already is an error: the kernel's tree is not merged
/// with anything.
pub fn stage_kernel_modules(tree: &Path, staging: &Path) -> Result<String> {
    crate::kernel::debian::check_module_tree(tree)?;
    let real = fs::canonicalize(tree).with_context(|| format!("resolving {}", tree.display()))?;
    let release = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .with_context(|| {
            format!(
                "{}: no directory name to take the release from",
                tree.display()
            )
        })?;
    let modules = staging.join("lib/modules");
    let dest = modules.join(&release);
    ensure!(
        !dest.exists(),
        "a package installs /lib/modules/{release} already: the kernel's module tree {} \
         cannot be put there",
        tree.display()
    );
    fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    for dir in [staging.join("lib"), modules, dest.clone()] {
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting the mode of {}", dir.display()))?;
    }
    packages::tree::copy_tree(&real, &dest, None).with_context(|| {
        format!(
            "copying the kernel's modules {} into {}",
            tree.display(),
            dest.display()
        )
    })?;
    Ok(release)
}

/// What stage 1 needs from the image (`docs/boot-contract.md`, "Modes"):
/// `/dev /proc /sys /run` to move its mounts into, `/tmp`, and an executable
/// `/sbin/init` (symlinks resolved inside the tree). Every problem at once.
pub fn check_staging(staging: &Path) -> Result<()> {
    let mut problems = Vec::new();
    for dir in ["dev", "proc", "sys", "run", "tmp"] {
        if !fs::symlink_metadata(staging.join(dir)).is_ok_and(|m| m.is_dir()) {
            problems.push(format!(
                "/{dir} is not a directory (stage 1 moves its mounts there)"
            ));
        }
    }
    let init = contract::DEFAULT_INIT;
    match resolve_inside(staging, init) {
        Ok(path) => {
            let meta =
                fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
            if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
                problems.push(format!("{init} is not an executable file"));
            }
        }
        Err(e) => problems.push(format!("{init}: {e}")),
    }
    if !staging.join("etc/os-release").is_file() {
        problems.push("/etc/os-release is missing".into());
    }
    for dir in warp_format::paths::ROOTS {
        let mut entries = Vec::new();
        match fs::symlink_metadata(staging.join(dir)) {
            Ok(m) if m.is_dir() => {
                packages::tree::walk(&staging.join(dir), Path::new(""), &mut entries)?
            }
            Ok(_) => problems.push(format!(
                "/{dir} is not a directory (warp installs its packages there)"
            )),
            Err(_) => {}
        }
        for (rel, meta) in entries.iter().filter(|(_, m)| !m.is_dir()) {
            let what = if meta.is_symlink() { "symlink" } else { "file" };
            problems.push(format!(
                "/{dir}/{}: a {what} in the image under /{dir}, which belongs to warp's \
                 packages (the image ships only empty directories there)",
                rel.display()
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "the root filesystem in {} is not bootable:\n{}",
            staging.display(),
            problems.join("\n")
        );
    }
    Ok(())
}

/// `path` (absolute, inside the image) resolved in `root` the way the booted
/// system would: absolute symlink targets start again at `root`.
pub fn resolve_inside(root: &Path, path: &str) -> Result<PathBuf> {
    let mut current = PathBuf::from("/");
    let mut pending: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut links = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        let next = current.join(&c);
        let on_host = root.join(next.strip_prefix("/").expect("absolute"));
        let meta = fs::symlink_metadata(&on_host)
            .map_err(|e| anyhow::anyhow!("{} does not exist ({e})", next.display()))?;
        if meta.file_type().is_symlink() {
            links += 1;
            ensure!(links <= 40, "too many levels of symbolic links");
            let target = fs::read_link(&on_host)?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                current = PathBuf::from("/");
            }
            pending.extend(
                target
                    .split('/')
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .rev(),
            );
        } else {
            current = next;
        }
    }
    Ok(root.join(current.strip_prefix("/").expect("absolute")))
}

/// `mksquashfs staging image`: owners 0, every timestamp (and the image's
/// own) `epoch`, no xattrs, reproducible, then its dm-verity hash tree
/// appended ([`verity::append`]). Written through a temporary file, so the
/// image is never seen without its tree. Returns the verity parameters.
pub fn squashfs(
    staging: &Path,
    image: &Path,
    compression: Compression,
    epoch: u32,
) -> Result<Verity> {
    if let Some(dir) = image.parent() {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let tmp = image.with_extension("squashfs.tmp");
    let _ = fs::remove_file(&tmp);
    let epoch = epoch.to_string();
    let made = squashfs_without_tree(staging, &tmp, compression, &epoch).and_then(|()| {
        verity::append(&tmp).with_context(|| format!("the hash tree of {}", tmp.display()))
    });
    let verity = match made {
        Ok(v) => v,
        Err(err) => {
            let _ = fs::remove_file(&tmp);
            return Err(err);
        }
    };
    fs::rename(&tmp, image)
        .with_context(|| format!("renaming {} to {}", tmp.display(), image.display()))?;
    Ok(verity)
}

/// `mksquashfs` itself (see [`squashfs`]). It pads the image to 4 KiB, the
/// tree's block size.
fn squashfs_without_tree(
    staging: &Path,
    tmp: &Path,
    compression: Compression,
    epoch: &str,
) -> Result<()> {
    // mksquashfs refuses -all-time when SOURCE_DATE_EPOCH is set (even to
    // the same value), and -all-time is what also stamps symlinks: so it
    // runs without it.
    Cmd::new("mksquashfs")
        .arg(staging)
        .arg(tmp)
        .args([
            "-noappend",
            "-all-root",
            "-no-xattrs",
            "-no-progress",
            "-quiet",
            "-reproducible",
        ])
        .args(compression.mksquashfs_args())
        .args(["-all-time", epoch, "-mkfs-time", epoch])
        .env_remove("SOURCE_DATE_EPOCH")
        .run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        fs::create_dir_all(r.join("bin")).unwrap();
        fs::create_dir_all(r.join("sbin")).unwrap();
        fs::write(r.join("bin/busybox"), "").unwrap();
        std::os::unix::fs::symlink("../bin/busybox", r.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", r.join("sbin/abs")).unwrap();
        std::os::unix::fs::symlink("/../../../bin", r.join("escape")).unwrap();
        assert_eq!(
            resolve_inside(r, "/sbin/init").unwrap(),
            r.join("bin/busybox")
        );
        assert_eq!(
            resolve_inside(r, "/sbin/abs").unwrap(),
            r.join("bin/busybox")
        );
        assert_eq!(
            resolve_inside(r, "/escape/busybox").unwrap(),
            r.join("bin/busybox")
        );
        assert!(resolve_inside(r, "/sbin/nope").is_err());
    }

    #[test]
    fn a_tree_without_stage2_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("proc")).unwrap();
        let err = check_staging(tmp.path()).unwrap_err().to_string();
        for expected in ["/dev is not a directory", "/sbin/init", "/etc/os-release"] {
            assert!(err.contains(expected), "{expected:?} not in {err}");
        }
        assert!(!err.contains("/proc is not"), "{err}");
    }

    #[test]
    fn the_image_ships_nothing_under_usr_local_and_opt() {
        let tmp = tempfile::tempdir().unwrap();
        let r = tmp.path();
        for d in [
            "dev",
            "proc",
            "sys",
            "run",
            "tmp",
            "sbin",
            "etc",
            "usr/local/bin",
            "opt",
        ] {
            fs::create_dir_all(r.join(d)).unwrap();
        }
        fs::write(r.join("sbin/init"), "").unwrap();
        fs::set_permissions(r.join("sbin/init"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(r.join("etc/os-release"), "NAME=x\n").unwrap();
        check_staging(r).unwrap();
        fs::write(r.join("usr/local/bin/tool"), "").unwrap();
        std::os::unix::fs::symlink("x", r.join("opt/link")).unwrap();
        let err = check_staging(r).unwrap_err().to_string();
        assert!(err.contains("/usr/local/bin/tool: a file"), "{err}");
        assert!(err.contains("/opt/link: a symlink"), "{err}");
    }

    #[test]
    fn the_kernel_module_tree_goes_to_lib_modules_release() {
        let tmp = tempfile::tempdir().unwrap();
        let tree = tmp.path().join("cache/modules/6.1.0-99-amd64");
        fs::create_dir_all(tree.join("kernel/drivers/net")).unwrap();
        fs::write(tree.join("kernel/drivers/net/e1000.ko"), b"\x7fELF").unwrap();
        fs::write(tree.join("modules.dep"), "kernel/drivers/net/e1000.ko:\n").unwrap();
        // Through a link named `modules`, as build/kernel/modules is.
        let link = tmp.path().join("modules");
        std::os::unix::fs::symlink(&tree, &link).unwrap();
        let staging = tmp.path().join("staging");
        fs::create_dir_all(staging.join("lib/k1os")).unwrap();

        let release = stage_kernel_modules(&link, &staging).unwrap();
        assert_eq!(release, "6.1.0-99-amd64");
        let dest = staging.join("lib/modules/6.1.0-99-amd64");
        assert_eq!(
            fs::read(dest.join("kernel/drivers/net/e1000.ko")).unwrap(),
            b"\x7fELF"
        );
        assert!(dest.join("modules.dep").is_file());
        assert!(staging.join("lib/k1os").is_dir(), "the rest of /lib stays");

        // Twice: the tree is not merged with what is there.
        let err = stage_kernel_modules(&link, &staging)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("installs /lib/modules/6.1.0-99-amd64 already"),
            "{err}"
        );
        // Not a module tree: named, with what it lacks.
        let err = stage_kernel_modules(tmp.path().join("cache").as_path(), &staging)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no modules.dep"), "{err}");
    }
}
