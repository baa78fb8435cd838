//! The build: a cache hit, or extract, patch, configure, check, `make
//! bzImage` and publish the entry with one `rename`; then the copy to
//! `build/kernel/`.
use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};

use super::key::{build_timestamp, compiler_version, inputs_text};
use super::{Pin, Profile, Source, cache_root, check_file, file_name, output_dir, patches};
use super::{progress, report, resolve_source};
use crate::hash::sha256_hex;
use crate::run::Cmd;
use crate::ui;

/// What `ensure_kernel` made: the files in `build/kernel/`.
#[derive(Debug, Clone)]
pub struct KernelArtifacts {
    pub profile: Profile,
    /// `build/kernel/bzImage`
    pub bzimage: PathBuf,
    /// `build/kernel/config`: the final .config
    pub config: PathBuf,
    /// `build/kernel/modules`, a link to the kernel's `/lib/modules/<release>`
    /// tree in the cache: the `debian` profile's; `None` for a built kernel,
    /// whose drivers are built in (and then `build/kernel/modules` is gone,
    /// so no initramfs picks up another kernel's modules).
    pub modules: Option<PathBuf>,
    /// The cache entry they were copied from.
    pub cache_entry: PathBuf,
    /// True when nothing was built (a cache hit).
    pub cached: bool,
}

/// The kernel for `profile` in `build/kernel/`, built only when the cache has
/// no entry for exactly these inputs. `source` is a tarball or an unpacked
/// tree; `None` is the pinned tarball, whose checksum is verified.
pub fn ensure_kernel(profile: Profile, source: Option<&Path>) -> Result<KernelArtifacts> {
    if !profile.is_built() {
        if let Some(source) = source {
            bail!(
                "--kernel-source {}: the debian profile is Debian's kernel package \
                 (kernel/debian.toml), not built from a source",
                source.display()
            );
        }
        let debian = super::debian::ensure_entry()?;
        return install(profile, &debian.entry, Some(&debian.modules), debian.cached);
    }
    let step = ui::Step::start(format!(
        "kernel {profile}: verify the source and compute the cache key"
    ));
    let pin = Pin::load()?;
    let source = resolve_source(&pin, source)?;
    let timestamp = build_timestamp(&pin);
    let compiler = compiler_version()?;
    let inputs = inputs_text(profile, &pin, &source, &timestamp, &compiler)?;
    let key = sha256_hex(inputs.as_bytes());
    let entry = cache_root().join(format!("{profile}-{}", &key[..16]));
    ui::detail(&format!("cache entry {}", entry.display()));
    step.done("done");

    let cached = entry_is_complete(&entry);
    if cached {
        ui::step(&format!(
            "kernel {profile}: cached, nothing to build ({})",
            entry.display()
        ));
    } else {
        if entry.exists() {
            // Complete entries are renamed into place whole; one with a file
            // missing was damaged by hand. Rebuild it.
            fs::remove_dir_all(&entry)
                .with_context(|| format!("removing damaged {}", entry.display()))?;
        }
        build_entry(profile, &source, &inputs, &timestamp, &entry)?;
    }

    // The config in the entry passed when it was built (the fragments are in
    // the key); check again anyway, it costs nothing and catches hand edits.
    let config = entry.join("config");
    let problems = check_file(&config, profile)?;
    if !problems.is_empty() {
        bail!("{}", report(&config, profile, &problems));
    }
    install(profile, &entry, None, cached)
}

const ENTRY_FILES: [&str; 3] = ["bzImage", "config", "inputs.txt"];

fn entry_is_complete(entry: &Path) -> bool {
    ENTRY_FILES.iter().all(|f| entry.join(f).is_file())
}

fn build_entry(
    profile: Profile,
    source: &Source,
    inputs: &str,
    timestamp: &str,
    entry: &Path,
) -> Result<()> {
    let root = entry.parent().expect("an entry is inside the cache");
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    remove_stale_partials(root);
    let partial = root.join(format!("{}.partial", file_name(entry)));
    claim(&partial)?;

    let src = match source {
        Source::Tarball { path, .. } => {
            let src = partial.join("src");
            fs::create_dir(&src).with_context(|| format!("creating {}", src.display()))?;
            let step = ui::Step::start(format!("kernel {profile}: extract {}", file_name(path)));
            Cmd::new("tar")
                .arg("-xf")
                .arg(path)
                .arg("-C")
                .arg(&src)
                .arg("--strip-components=1")
                .arg("--no-same-owner")
                .run()?;
            step.done("done");
            for patch in patches()? {
                let step =
                    ui::Step::start(format!("kernel {profile}: apply {}", file_name(&patch)));
                Cmd::new("patch")
                    .args(["-p1", "--forward", "--batch", "-i"])
                    .arg(&patch)
                    .dir(&src)
                    .run()
                    .with_context(|| format!("applying {}", patch.display()))?;
                step.done("done");
            }
            src
        }
        Source::Dir { path, .. } => {
            let patches = patches()?;
            if !patches.is_empty() {
                bail!(
                    "kernel/patches/ has {} patch(es), which host-tools applies only to a tarball it \
                     extracts, never to a --kernel-source DIR: pass a tarball (for example a copy \
                     of the tree with the patches applied, packed with tar)",
                    patches.len()
                );
            }
            path.clone()
        }
    };
    let out = partial.join("out");
    fs::create_dir(&out).with_context(|| format!("creating {}", out.display()))?;
    let make = |what: &[&str]| make_cmd(&src, &out, timestamp).args(what.iter().copied());

    let fragments: Vec<&str> = profile.fragment_names().to_vec();
    let step = ui::Step::start(format!(
        "kernel {profile}: configure ({} + {})",
        profile.base_config(),
        fragments.join(" + ")
    ));
    make(&[profile.base_config()]).run()?;
    // -m: merge only; olddefconfig then resolves the dependencies.
    Cmd::new("sh")
        .arg(src.join("scripts/kconfig/merge_config.sh"))
        .args(["-m", "-O"])
        .arg(&out)
        .arg(out.join(".config"))
        .args(profile.fragments())
        .dir(&out) // it makes its temporary files in the current directory
        .run()?;
    make(&["olddefconfig"]).run()?;
    let config = out.join(".config");
    let problems = check_file(&config, profile)?;
    if !problems.is_empty() {
        bail!("{}", report(&config, profile, &problems));
    }
    step.done("done, config checked");

    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let step = ui::Step::start(format!("kernel {profile}: make -j{jobs} bzImage"));
    let log = partial.join("build.log");
    let expected = last_build_objects(profile, entry);
    progress_line(&format!(
        "log: {} (`tail -f` it to follow; a progress line every {} s)",
        log.display(),
        progress::EVERY.as_secs()
    ));
    let watch = progress::Watch::start(log.clone(), progress::EVERY, move |snapshot| {
        progress_line(&progress::line(
            &format!("kernel {profile}"),
            snapshot,
            expected,
        ))
    });
    let built = make(&[&format!("-j{jobs}"), "bzImage"]).run_logged(&log);
    drop(watch);
    built?;
    let bzimage = out.join("arch/x86/boot/bzImage");
    if !bzimage.is_file() {
        bail!(
            "make bzImage succeeded but {} is missing (log: {})",
            bzimage.display(),
            log.display()
        );
    }
    step.done(&format!("done, {}", ui::human_size(file_size(&bzimage))));
    // `make` may have rewritten the .config (syncconfig): check what shipped.
    let problems = check_file(&config, profile)?;
    if !problems.is_empty() {
        bail!("{}", report(&config, profile, &problems));
    }

    let staged = partial.join("entry");
    fs::create_dir(&staged).with_context(|| format!("creating {}", staged.display()))?;
    copy(&bzimage, &staged.join("bzImage"))?;
    copy(&config, &staged.join("config"))?;
    copy(&log, &staged.join("build.log"))?;
    let inputs_file = staged.join("inputs.txt");
    fs::write(&inputs_file, inputs)
        .with_context(|| format!("writing {}", inputs_file.display()))?;
    fs::rename(&staged, entry)
        .with_context(|| format!("renaming {} to {}", staged.display(), entry.display()))?;
    if let Err(err) = fs::remove_dir_all(&partial) {
        ui::note(&format!("could not remove {}: {err}", partial.display()));
    }
    Ok(())
}

/// A line under the current step, on stderr, printed from any thread (the
/// progress watcher's included).
fn progress_line(what: &str) {
    eprintln!("    {what}");
}

/// How many objects the newest complete build of `profile` in the cache made
/// (other than `entry`): what this build will roughly make too.
fn last_build_objects(profile: Profile, entry: &Path) -> Option<u64> {
    let root = entry.parent()?;
    let prefix = format!("{profile}-");
    let newest = fs::read_dir(root)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p != entry
                && p.extension().is_none()
                && file_name(p).starts_with(&prefix)
                && p.join("build.log").is_file()
        })
        .max_by_key(|p| {
            fs::metadata(p.join("build.log"))
                .and_then(|m| m.modified())
                .ok()
        })?;
    progress::count_objects(&newest.join("build.log"))
}

/// `make O=<out>` in `src`, with the environment that makes builds reproducible.
fn make_cmd(src: &Path, out: &Path, timestamp: &str) -> Cmd {
    let mut o = std::ffi::OsString::from("O=");
    o.push(out);
    Cmd::new("make")
        .dir(src)
        .arg(o)
        .env("KBUILD_BUILD_TIMESTAMP", timestamp)
        .env("KBUILD_BUILD_USER", "k1os")
        .env("KBUILD_BUILD_HOST", "k1os")
        .env("KBUILD_BUILD_VERSION", "1")
        .env("LC_ALL", "C")
        // Called from the top-level Makefile, the outer make's flags (-n, -s,
        // its jobserver) must not leak into the kernel's.
        .env("MAKEFLAGS", "")
        .env("MFLAGS", "")
}

/// Takes `<entry>.partial/` for this process: stale (its builder is gone)
/// means it is removed; a live builder means another build of the same kernel
/// is running.
pub(super) fn claim(partial: &Path) -> Result<()> {
    if partial.exists() {
        if let Some(pid) = live_owner(partial) {
            bail!(
                "another host-tools (pid {pid}) is building this kernel in {}: wait for it to finish \
                 (or, if that process is not host-tools, remove the directory)",
                partial.display()
            );
        }
        ui::step(&format!(
            "removing an interrupted build's leftovers: {}",
            partial.display()
        ));
        fs::remove_dir_all(partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    fs::create_dir(partial).with_context(|| format!("creating {}", partial.display()))?;
    let pid_file = partial.join("pid");
    fs::write(&pid_file, std::process::id().to_string())
        .with_context(|| format!("writing {}", pid_file.display()))
}

/// The pid in `<partial>/pid` if that process still runs (and is not us).
fn live_owner(partial: &Path) -> Option<u32> {
    let pid: u32 = fs::read_to_string(partial.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

/// Interrupted builds leave a `.partial` directory of a few GiB: remove every
/// one whose builder is gone.
fn remove_stale_partials(root: &Path) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "partial") && live_owner(&path).is_none() {
            ui::step(&format!(
                "removing an interrupted build's leftovers: {}",
                path.display()
            ));
            let _ = fs::remove_dir_all(&path);
        }
    }
}

/// Copies the entry's bzImage and config to `build/kernel/` (each through a
/// temporary name and a rename, so a reader never sees half a file).
fn install(
    profile: Profile,
    entry: &Path,
    modules: Option<&Path>,
    cached: bool,
) -> Result<KernelArtifacts> {
    let dir = output_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bzimage = dir.join("bzImage");
    let config = dir.join("config");
    copy(&entry.join("bzImage"), &bzimage)?;
    copy(&entry.join("config"), &config)?;
    // A link, not a copy: the tree is 400 MB and stays in the cache.
    let link = dir.join("modules");
    if fs::symlink_metadata(&link).is_ok() {
        fs::remove_file(&link).with_context(|| format!("removing {}", link.display()))?;
    }
    if let Some(tree) = modules {
        std::os::unix::fs::symlink(tree, &link)
            .with_context(|| format!("linking {} to {}", link.display(), tree.display()))?;
    }
    ui::step(&format!(
        "kernel {profile}: {} ({}) and {}",
        bzimage.display(),
        ui::human_size(file_size(&bzimage)),
        config.display()
    ));
    Ok(KernelArtifacts {
        profile,
        bzimage,
        config,
        modules: modules.map(|_| link),
        cache_entry: entry.to_path_buf(),
        cached,
    })
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_file_name(format!(".{}.tmp", file_name(to)));
    fs::copy(from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    fs::rename(&tmp, to).with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))
}

fn file_size(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}
