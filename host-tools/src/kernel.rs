//! The kernel build (`host-tools kernel`) and the config check
//! (`host-tools kernel check`); `kernel/README.md` is the user's side of this.
//!
//! A build is a list of steps: resolve the source (the pinned tarball, its
//! sha256 verified, or `--source`) → compute the cache key from every input →
//! on a miss: extract, apply `kernel/patches/`, configure (profile base +
//! fragments), check the config, `make bzImage`, check the final config again,
//! publish the cache entry with one `rename` → copy `bzImage` and `config` to
//! `build/kernel/`.
//!
//! **Invariant:** a directory in the cache named like an entry is complete. It
//! is assembled inside `<entry>.partial/` and renamed into place only after the
//! build and the check passed; an interrupted build leaves only a `.partial`
//! directory, which the next build removes.
use anyhow::{Context, Result, bail};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::hash::{sha256_file, sha256_hex};
use crate::run::Cmd;
use crate::{paths, ui};

mod check;
pub mod pin;
mod progress;

pub use check::{
    Config, Problem, Requirement, check_config, check_file, config_from_bytes, guess_profile,
    parse_config, parse_fragment, report, requirements,
};
pub use pin::Pin;

/// Bump when the build recipe changes in a way the other inputs don't show.
const CACHE_FORMAT: &str = "k1os-kernel-cache-v1";

/// The fragment every profile merges.
const K1OS_FRAGMENT: &str = "k1os.config";

/// The environment variable naming the kernel profile of every command that
/// needs a kernel, when `--profile` does not (`paths.rs` reads it).
pub const PROFILE_ENV: &str = "K1OS_KERNEL_PROFILE";

/// The kernel configuration profiles (`kernel/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Profile {
    /// tinyconfig + k1os.config: small, builds in minutes; what the tests boot in QEMU
    Qemu,
    /// x86_64_defconfig + k1os.config + generic.config: boots real PCs (the ISO default)
    Generic,
}

impl Profile {
    pub const ALL: [Profile; 2] = [Profile::Qemu, Profile::Generic];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Qemu => "qemu",
            Profile::Generic => "generic",
        }
    }

    /// The `make` target that writes the base config the fragments go over.
    pub fn base_config(self) -> &'static str {
        match self {
            Profile::Qemu => "tinyconfig",
            Profile::Generic => "x86_64_defconfig",
        }
    }

    /// The fragments merged over the base, in order (later ones win), as file
    /// names in `kernel/`.
    pub fn fragment_names(self) -> &'static [&'static str] {
        match self {
            Profile::Qemu => &[K1OS_FRAGMENT],
            Profile::Generic => &[K1OS_FRAGMENT, "generic.config"],
        }
    }

    pub fn fragments(self) -> Vec<PathBuf> {
        self.fragment_names()
            .iter()
            .map(|n| kernel_dir().join(n))
            .collect()
    }
}

impl Default for Profile {
    /// `generic`, the one that boots real machines.
    fn default() -> Profile {
        Profile::Generic
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Profile> {
        Profile::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| anyhow::anyhow!("unknown kernel profile `{s}` (known: qemu, generic)"))
    }
}

/// `kernel/` in the checkout.
pub fn kernel_dir() -> PathBuf {
    paths::repo_root().join("kernel")
}

/// `kernel/pin.toml`.
pub fn pin_path() -> PathBuf {
    kernel_dir().join("pin.toml")
}

/// `<cache>/kernel/`: one directory per built kernel (see `kernel/README.md`).
pub fn cache_root() -> PathBuf {
    paths::cache_dir().join("kernel")
}

/// `build/kernel/`.
pub fn output_dir() -> PathBuf {
    paths::build_dir().join("kernel")
}

// ---------------------------------------------------------------------------
// The source

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
    fn identity(&self) -> String {
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

// ---------------------------------------------------------------------------
// Reproducibility and the cache key

/// KBUILD_BUILD_TIMESTAMP: the pin's fixed date, always.
///
/// SOURCE_DATE_EPOCH is ignored on purpose. It usually follows the checkout's
/// last commit (the ISO does that), and since the timestamp is baked into the
/// image it is part of the cache key: honouring it rebuilt the kernel (15–20
/// minutes) for every commit although its sources had not changed. The
/// kernel's source date is the pinned tarball's: `build_epoch` in pin.toml.
fn build_timestamp(pin: &Pin) -> String {
    format_utc(pin.build_epoch)
}

/// `date -u`'s format (`Thu Jan  1 00:00:00 UTC 1970`): what `uname -v` shows,
/// and a string the kernel's scripts can hand to `date -d`.
pub fn format_utc(epoch: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{} {} {day:>2} {:02}:{:02}:{:02} UTC {year}",
        DAYS[days.rem_euclid(7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// `kernel/patches/*.patch`, in the order they apply.
pub fn patches() -> Result<Vec<PathBuf>> {
    let dir = kernel_dir().join("patches");
    let mut out = Vec::new();
    if dir.is_dir() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            if path.extension().is_some_and(|e| e == "patch") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Everything the kernel build depends on, one line each: its sha256 is the
/// cache key, and the text is kept in the entry as `inputs.txt`.
fn inputs_text(
    profile: Profile,
    pin: &Pin,
    source: &Source,
    timestamp: &str,
    compiler: &str,
) -> Result<String> {
    let mut text = format!(
        "{CACHE_FORMAT}\nprofile={profile}\nbase={}\nsource={}\npin.toml sha256={}\n",
        profile.base_config(),
        source.identity(),
        sha256_hex(pin.text.as_bytes())
    );
    for path in profile.fragments() {
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        text += &format!(
            "fragment {} sha256={}\n",
            file_name(&path),
            sha256_hex(&data)
        );
    }
    for path in patches()? {
        let data = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        text += &format!("patch {} sha256={}\n", file_name(&path), sha256_hex(&data));
    }
    text += &format!(
        "KBUILD_BUILD_TIMESTAMP={timestamp}\nKBUILD_BUILD_USER=k1os\nKBUILD_BUILD_HOST=k1os\n\
         compiler={compiler}\n"
    );
    Ok(text)
}

pub(crate) fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The first line of `gcc --version`: the compiler is an input (it is even
/// recorded in the .config as CONFIG_CC_VERSION_TEXT).
fn compiler_version() -> Result<String> {
    let out = Cmd::new("gcc").arg("--version").read()?;
    Ok(out.lines().next().unwrap_or("").trim().to_string())
}

// ---------------------------------------------------------------------------
// The build

/// What `ensure_kernel` made: the files in `build/kernel/`.
#[derive(Debug, Clone)]
pub struct KernelArtifacts {
    pub profile: Profile,
    /// `build/kernel/bzImage`
    pub bzimage: PathBuf,
    /// `build/kernel/config`: the final .config
    pub config: PathBuf,
    /// The cache entry they were copied from.
    pub cache_entry: PathBuf,
    /// True when nothing was built (a cache hit).
    pub cached: bool,
}

/// The kernel for `profile` in `build/kernel/`, built only when the cache has
/// no entry for exactly these inputs. `source` is a tarball or an unpacked
/// tree; `None` is the pinned tarball, whose checksum is verified.
pub fn ensure_kernel(profile: Profile, source: Option<&Path>) -> Result<KernelArtifacts> {
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
    install(profile, &entry, cached)
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
                     extracts, never to a --source DIR: pass a tarball, or build from a copy with \
                     the patches applied as a tarball",
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
fn claim(partial: &Path) -> Result<()> {
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
fn install(profile: Profile, entry: &Path, cached: bool) -> Result<KernelArtifacts> {
    let dir = output_dir();
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bzimage = dir.join("bzImage");
    let config = dir.join("config");
    copy(&entry.join("bzImage"), &bzimage)?;
    copy(&entry.join("config"), &config)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_parse_and_print() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        assert!("tiny".parse::<Profile>().is_err());
        assert_eq!(Profile::default(), Profile::Generic);
    }

    fn pin_at(path: &Path, sha256: &str) -> Pin {
        Pin {
            path: path.to_path_buf(),
            sha256: sha256.to_string(),
            ..Pin::load().unwrap()
        }
    }

    /// `dir/name`: a tar.xz holding only `top/Makefile` saying `version`.
    pub(crate) fn tiny_tarball(dir: &Path, name: &str, top: &str, version: &str) -> PathBuf {
        let tree = dir.join(format!("{name}.tree"));
        fs::create_dir_all(tree.join(top)).unwrap();
        let mut parts = version.split('.');
        let makefile = format!(
            "# SPDX-License-Identifier: GPL-2.0\nVERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = {}\n\
             EXTRAVERSION =\nNAME = Test\n",
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap()
        );
        fs::write(tree.join(top).join("Makefile"), makefile).unwrap();
        let tarball = dir.join(name);
        Cmd::new("tar")
            .arg("-cJf")
            .arg(&tarball)
            .arg("-C")
            .arg(&tree)
            .args(["--mtime=@1700000000", "--owner=0", "--group=0", top])
            .run()
            .unwrap();
        tarball
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

    #[test]
    fn timestamps_look_like_date() {
        assert_eq!(format_utc(0), "Thu Jan  1 00:00:00 UTC 1970");
        assert_eq!(format_utc(1_794_824_260), "Mon Nov 16 10:17:40 UTC 2026");
        assert_eq!(format_utc(951_782_400), "Tue Feb 29 00:00:00 UTC 2000");
    }
}
