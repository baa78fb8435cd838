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
use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use crate::hash::sha256_file;
use crate::hash::sha256_hex;
use crate::run::Cmd;
use crate::{paths, ui};

/// Bump when the build recipe changes in a way the other inputs don't show.
const CACHE_FORMAT: &str = "k1os-kernel-cache-v1";

/// The fragment every profile merges.
const K1OS_FRAGMENT: &str = "k1os.config";

/// What the environment variable `K1OS_KERNEL_PROFILE` names (DESIGN.md).
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
    /// `generic`, the one that boots real machines (DESIGN.md).
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
// The pin

/// The pinned kernel source, from `kernel/pin.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub version: String,
    pub debian_package: String,
    pub debian_version: String,
    pub tarball: String,
    pub path: PathBuf,
    pub sha256: String,
    pub upstream: String,
    /// KBUILD_BUILD_TIMESTAMP, as seconds since 1970.
    pub build_epoch: i64,
    /// The file's text: part of the cache key.
    text: String,
}

impl Pin {
    pub fn load() -> Result<Pin> {
        let path = pin_path();
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Pin::parse(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Parses `key = "value"` lines (a flat subset of TOML); `#` starts a comment line.
    pub fn parse(text: &str) -> Result<Pin> {
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                bail!("line {}: expected `key = \"value\"`, found `{line}`", n + 1);
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            map.insert(key.trim().to_string(), value.to_string());
        }
        let mut take = |key: &str| {
            map.remove(key)
                .with_context(|| format!("the key `{key}` is missing"))
        };
        let pin = Pin {
            version: take("version")?,
            debian_package: take("debian_package")?,
            debian_version: take("debian_version")?,
            tarball: take("tarball")?,
            path: PathBuf::from(take("path")?),
            sha256: take("sha256")?.to_ascii_lowercase(),
            upstream: take("upstream")?,
            build_epoch: {
                let v = take("build_epoch")?;
                v.parse()
                    .with_context(|| format!("build_epoch `{v}` is not a number"))?
            },
            text: text.to_string(),
        };
        if let Some(key) = map.keys().next() {
            bail!("unknown key `{key}`");
        }
        if pin.sha256.len() != 64 || !pin.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("sha256 `{}` is not 64 hex digits", pin.sha256);
        }
        Ok(pin)
    }
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

/// Resolves `--source` (or the pinned tarball when `None`) and verifies the
/// pinned tarball's checksum.
pub fn resolve_source(pin: &Pin, source: Option<&Path>) -> Result<Source> {
    let Some(source) = source else {
        return pinned_source(pin);
    };
    let meta = fs::metadata(source)
        .with_context(|| format!("kernel source {} (--source)", source.display()))?;
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
            ui::step(&format!(
                "note: {} is Linux {version}, not the pinned {}",
                path.display(),
                pin.version
            ));
        }
        Ok(Source::Dir { path, version })
    } else {
        let sha256 = sha256_file(&path)?;
        if sha256 != pin.sha256 {
            ui::detail(&format!(
                "{} is not the pinned tarball (sha256 {sha256}); building it as given",
                path.display()
            ));
        }
        Ok(Source::Tarball { path, sha256 })
    }
}

fn pinned_source(pin: &Pin) -> Result<Source> {
    let path = &pin.path;
    let what_to_do = format!(
        "install it with `host-tools doctor --install` or `apt-get install {pkg}` \
         (version {debver}), or pass --source TARBALL|DIR (for example the upstream {url})",
        pkg = pin.debian_package,
        debver = pin.debian_version,
        url = pin.upstream
    );
    if !path.exists() {
        bail!(
            "the pinned kernel source {} is missing (Linux {}, sha256 {}): {what_to_do}",
            path.display(),
            pin.version,
            pin.sha256
        );
    }
    let actual = sha256_file(path)?;
    if actual != pin.sha256 {
        bail!(
            "{} does not match {}: expected sha256 {}, actual sha256 {actual}. \
             The installed {} is probably not version {}: {what_to_do}; \
             or, to move K1OS to that kernel, update kernel/pin.toml on purpose",
            path.display(),
            pin_path().display(),
            pin.sha256,
            pin.debian_package,
            pin.debian_version
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

fn file_name(path: &Path) -> String {
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
    make(&[&format!("-j{jobs}"), "bzImage"]).run_logged(&log)?;
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
        ui::step(&format!(
            "note: could not remove {}: {err}",
            partial.display()
        ));
    }
    Ok(())
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

// ---------------------------------------------------------------------------
// The config check

/// One `CONFIG_` line of a fragment: what the final .config must say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Without the `CONFIG_` prefix.
    pub option: String,
    /// `Some("y")`, `Some("\"text\"")`…; `None` for `# CONFIG_X is not set`.
    pub value: Option<String>,
    /// The fragment's file name.
    pub fragment: String,
}

/// The `CONFIG_` lines of a fragment (or of a .config).
pub fn parse_fragment(text: &str, fragment: &str) -> Vec<Requirement> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let (option, value) = if let Some(rest) = line.strip_prefix("# CONFIG_") {
            match rest.strip_suffix(" is not set") {
                Some(option) => (option, None),
                None => continue,
            }
        } else if let Some(rest) = line.strip_prefix("CONFIG_") {
            match rest.split_once('=') {
                Some((option, value)) => (option, Some(value.to_string())),
                None => continue,
            }
        } else {
            continue;
        };
        out.push(Requirement {
            option: option.to_string(),
            value,
            fragment: fragment.to_string(),
        });
    }
    out
}

/// A final .config's set options (name without `CONFIG_` → value).
pub type Config = BTreeMap<String, String>;

pub fn parse_config(text: &str) -> Config {
    parse_fragment(text, ".config")
        .into_iter()
        .filter_map(|r| Some((r.option, r.value?)))
        .collect()
}

/// The requirements of `profile`: its fragments' lines, later fragments
/// overriding earlier ones as merge_config.sh does.
pub fn requirements(profile: Profile) -> Result<Vec<Requirement>> {
    let mut out: Vec<Requirement> = Vec::new();
    for path in profile.fragments() {
        let text =
            fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        for req in parse_fragment(&text, &file_name(&path)) {
            match out.iter_mut().find(|r| r.option == req.option) {
                Some(old) => *old = req,
                None => out.push(req),
            }
        }
    }
    Ok(out)
}

/// A required option the config does not have as required.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub option: String,
    pub wanted: Option<String>,
    pub actual: Option<String>,
    /// Why Kconfig left it so, when the dependency table knows.
    pub blocker: Option<String>,
    pub fragment: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.option;
        match (&self.actual, &self.wanted) {
            (None, Some(w)) if w == "y" => write!(f, "CONFIG_{o} is not set")?,
            (None, Some(w)) => write!(f, "CONFIG_{o} is not set (wanted: CONFIG_{o}={w})")?,
            (Some(a), Some(w)) => write!(f, "CONFIG_{o}={a}, but K1OS needs CONFIG_{o}={w}")?,
            (Some(a), None) => write!(f, "CONFIG_{o}={a}, but K1OS needs it not set")?,
            (None, None) => write!(f, "CONFIG_{o} is as wanted")?,
        }
        if let Some(b) = &self.blocker {
            write!(f, ": {b}")?;
        }
        Ok(())
    }
}

/// Every requirement `config` does not meet, in the fragments' order.
pub fn check_config(config: &Config, requirements: &[Requirement]) -> Vec<Problem> {
    let mut out = Vec::new();
    for req in requirements {
        let actual = config.get(&req.option).cloned();
        if actual == req.value {
            continue;
        }
        let need_y = req.value.as_deref() == Some("y");
        let blocker = match (&req.value, actual.as_deref()) {
            // Missing, or a module where built-in is wanted: Kconfig's doing.
            (Some(_), None) | (Some(_), Some("m")) => blocker(&req.option, need_y, config),
            _ => None,
        };
        out.push(Problem {
            option: req.option.clone(),
            wanted: req.value.clone(),
            actual,
            blocker,
            fragment: req.fragment.clone(),
        });
    }
    out
}

/// Checks the .config at `path` against `profile`'s fragments.
pub fn check_file(path: &Path, profile: Profile) -> Result<Vec<Problem>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(check_config(&parse_config(&text), &requirements(profile)?))
}

/// A failed check as one message: every problem, one per line.
pub fn report(path: &Path, profile: Profile, problems: &[Problem]) -> String {
    let mut s = format!(
        "{} lacks {} option(s) the {profile} profile requires:",
        path.display(),
        problems.len()
    );
    for p in problems {
        s += &format!("\n  {p}   [{}]", p.fragment);
    }
    s += "\n(see kernel/README.md, \"Checking a config\")";
    s
}

/// Which profile a .config was most likely made with: tinyconfig turns
/// loadable modules off, x86_64_defconfig turns them on.
pub fn guess_profile(config: &Config) -> (Profile, &'static str) {
    if config.get("MODULES").map(String::as_str) == Some("y") {
        (
            Profile::Generic,
            "CONFIG_MODULES=y: an x86_64_defconfig base",
        )
    } else {
        (
            Profile::Qemu,
            "CONFIG_MODULES is not set: a tinyconfig base",
        )
    }
}

/// Kconfig dependencies of every option the fragments require and of the
/// options those depend on, in Linux 6.1 on x86_64 (read from its Kconfig
/// files: `depends on` lines plus the enclosing `if` blocks and menus).
/// Syntax: `SYM` must be y or m (y when the dependent must be y), `SYM=y`
/// must be y, `!SYM` must be unset, `A|B` either. Dependencies that are
/// always met on x86_64 (MMU, HAS_IOMEM, HAS_DMA, HAVE_PCI, …) are left out.
///
/// A table rather than a Kconfig parser, on purpose: the check must work
/// where there is no source tree (a config copied out of `build/`, a cache
/// hit in CI), and Kconfig's language (`if` blocks spanning `source`d files,
/// menus with `depends on`, `select`, tristate expressions, `$(ARCH)` macros)
/// is much more code to get right than this list of ~90 options. A unit
/// test keeps it complete: every option of every fragment must have a row.
/// When moving to another kernel, re-read the Kconfig entries of these rows.
const DEPENDS: &[(&str, &[&str])] = &[
    ("64BIT", &[]),
    ("BINFMT_ELF", &[]),
    ("BINFMT_SCRIPT", &[]),
    ("MULTIUSER", &[]),
    ("PRINTK", &[]),
    ("PRINTK_TIME", &["PRINTK"]),
    ("TTY", &[]),
    ("VT", &["TTY"]),
    ("VT_CONSOLE", &["TTY", "VT"]),
    ("UNIX98_PTYS", &["TTY"]),
    ("SERIAL_8250", &["TTY"]),
    ("SERIAL_8250_CONSOLE", &["TTY", "SERIAL_8250=y"]),
    ("BLK_DEV_INITRD", &[]),
    ("RD_GZIP", &["BLK_DEV_INITRD"]),
    ("RD_XZ", &["BLK_DEV_INITRD"]),
    ("RD_ZSTD", &["BLK_DEV_INITRD"]),
    ("PROC_FS", &[]),
    ("SYSFS", &[]),
    ("DEVTMPFS", &[]),
    ("SHMEM", &[]),
    ("TMPFS", &["SHMEM"]),
    ("TMPFS_XATTR", &["TMPFS"]),
    ("NET", &[]),
    ("UNIX", &["NET"]),
    ("INET", &["NET"]),
    ("MISC_FILESYSTEMS", &[]),
    ("SQUASHFS", &["MISC_FILESYSTEMS", "BLOCK"]),
    ("SQUASHFS_XZ", &["MISC_FILESYSTEMS", "SQUASHFS"]),
    ("SQUASHFS_ZSTD", &["MISC_FILESYSTEMS", "SQUASHFS"]),
    ("OVERLAY_FS", &[]),
    ("EXT4_FS", &["BLOCK"]),
    ("ISO9660_FS", &["BLOCK"]),
    ("JOLIET", &["BLOCK", "ISO9660_FS"]),
    ("FAT_FS", &["BLOCK"]),
    ("VFAT_FS", &["BLOCK"]),
    ("NLS", &[]),
    ("NLS_CODEPAGE_437", &["NLS"]),
    ("NLS_ISO8859_1", &["NLS"]),
    ("NLS_UTF8", &["NLS"]),
    ("BLOCK", &[]),
    ("BLK_DEV", &["BLOCK"]),
    ("PARTITION_ADVANCED", &["BLOCK"]),
    ("MSDOS_PARTITION", &["BLOCK"]),
    ("EFI_PARTITION", &["BLOCK"]),
    ("BLK_DEV_LOOP", &["BLK_DEV"]),
    ("PCI", &[]),
    ("SCSI", &["BLOCK"]),
    ("SCSI_LOWLEVEL", &["SCSI"]),
    ("BLK_DEV_SD", &["SCSI"]),
    ("BLK_DEV_SR", &["SCSI", "BLK_DEV"]),
    ("ATA", &["BLOCK"]),
    ("ATA_SFF", &["ATA"]),
    ("ATA_BMDMA", &["ATA", "ATA_SFF"]),
    ("ATA_PIIX", &["ATA", "ATA_SFF", "ATA_BMDMA", "PCI"]),
    ("SATA_AHCI", &["ATA", "PCI"]),
    ("VIRTIO", &[]),
    ("VIRTIO_MENU", &[]),
    ("VIRTIO_PCI", &["VIRTIO_MENU", "PCI"]),
    ("VIRTIO_BLK", &["BLK_DEV", "VIRTIO"]),
    ("SCSI_VIRTIO", &["SCSI", "SCSI_LOWLEVEL", "VIRTIO"]),
    ("USB_SUPPORT", &[]),
    ("USB", &["USB_SUPPORT"]),
    ("USB_PCI", &["USB_SUPPORT", "PCI"]),
    ("USB_XHCI_HCD", &["USB"]),
    ("USB_EHCI_HCD", &["USB"]),
    ("USB_OHCI_HCD", &["USB"]),
    ("USB_UHCI_HCD", &["USB", "USB_PCI"]),
    ("USB_STORAGE", &["USB", "SCSI"]),
    ("USB_UAS", &["USB", "SCSI", "USB_STORAGE"]),
    ("INPUT", &[]),
    ("HID", &["INPUT"]),
    ("HID_GENERIC", &["HID"]),
    ("USB_HID", &["USB", "INPUT"]),
    ("INPUT_KEYBOARD", &["INPUT"]),
    ("KEYBOARD_ATKBD", &["INPUT", "INPUT_KEYBOARD"]),
    ("ACPI", &[]),
    ("EFI", &["ACPI"]),
    ("EFI_STUB", &["EFI"]),
    ("BLK_DEV_NVME", &["PCI", "BLOCK"]),
    ("FB", &[]),
    ("FB_EFI", &["FB=y", "EFI"]),
    ("FRAMEBUFFER_CONSOLE", &["VT", "FB"]),
];

/// Options without a prompt: they are on only when another option selects
/// them (Kconfig `select`), so that option is what to name.
const SELECTED_BY: &[(&str, &[&str])] = &[
    ("FAT_FS", &["VFAT_FS", "MSDOS_FS"]),
    ("VIRTIO", &["VIRTIO_PCI", "VIRTIO_MMIO"]),
    ("HID", &["USB_HID"]),
];

fn lookup(
    table: &'static [(&'static str, &'static [&'static str])],
    option: &str,
) -> &'static [&'static str] {
    table
        .iter()
        .find(|(o, _)| *o == option)
        .map(|(_, d)| *d)
        .unwrap_or(&[])
}

/// How deep a blocker chain is followed (`A` needs `B`, which needs `C`…).
const MAX_CHAIN: usize = 4;

/// The unmet dependencies of `option` as clauses ("depends on CONFIG_X,
/// which is not set"), following each chain down to `MAX_CHAIN`.
fn blocking_clauses(option: &str, need_y: bool, config: &Config, depth: usize) -> Vec<String> {
    let value = |o: &str| config.get(o).map(String::as_str);
    let is_set = |o: &str| matches!(value(o), Some(v) if v != "n");
    let mut reasons = Vec::new();
    for dep in lookup(DEPENDS, option) {
        if let Some(sym) = dep.strip_prefix('!') {
            if is_set(sym) {
                reasons.push(format!("conflicts with CONFIG_{sym}, which is set"));
            }
        } else if dep.contains('|') {
            let alternatives: Vec<&str> = dep.split('|').collect();
            if !alternatives.iter().any(|s| is_set(s)) {
                let names: Vec<String> =
                    alternatives.iter().map(|s| format!("CONFIG_{s}")).collect();
                reasons.push(format!(
                    "depends on {}, none of which is set",
                    names.join(" or ")
                ));
            }
        } else {
            let (sym, must_be_y) = match dep.strip_suffix("=y") {
                Some(sym) => (sym, true),
                None => (*dep, need_y),
            };
            let why_not = match value(sym) {
                None | Some("n") => "which is not set",
                Some("m") if must_be_y => "which is m (a module), so this one cannot be y",
                _ => continue,
            };
            let mut reason = format!("depends on CONFIG_{sym}, {why_not}");
            let deeper = match depth < MAX_CHAIN {
                true => blocking_clauses(sym, must_be_y, config, depth + 1),
                false => Vec::new(),
            };
            if !deeper.is_empty() {
                let deeper: Vec<String> =
                    deeper.iter().map(|c| format!("CONFIG_{sym} {c}")).collect();
                reason += &format!(" ({})", deeper.join("; "));
            }
            reasons.push(reason);
        }
    }
    if reasons.is_empty() {
        let selectors = lookup(SELECTED_BY, option);
        if !selectors.is_empty() && !selectors.iter().any(|s| is_set(s)) {
            let names: Vec<String> = selectors.iter().map(|s| format!("CONFIG_{s}")).collect();
            reasons.push(format!(
                "has no prompt and is only selected by {}, none of which is set",
                names.join(" or ")
            ));
        }
    }
    reasons
}

/// Why `option` is not set (or not `y` when `need_y`), naming the options
/// that block it, or `None` when the table knows nothing unmet.
fn blocker(option: &str, need_y: bool, config: &Config) -> Option<String> {
    let clauses = blocking_clauses(option, need_y, config, 0);
    let clauses: Vec<String> = clauses.iter().map(|c| format!("it {c}")).collect();
    (!clauses.is_empty()).then(|| clauses.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(text: &str) -> Vec<Requirement> {
        parse_fragment(text, "test.config")
    }

    fn messages(config: &str, fragment: &str) -> Vec<String> {
        check_config(&parse_config(config), &reqs(fragment))
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    #[test]
    fn a_complete_config_passes() {
        let config = "CONFIG_MISC_FILESYSTEMS=y\nCONFIG_BLOCK=y\nCONFIG_SQUASHFS=y\n";
        assert!(messages(config, "CONFIG_SQUASHFS=y\nCONFIG_BLOCK=y\n").is_empty());
    }

    #[test]
    fn a_missing_option_names_its_blocker() {
        let config = "CONFIG_BLOCK=y\n# CONFIG_MISC_FILESYSTEMS is not set\n";
        assert_eq!(
            messages(config, "CONFIG_SQUASHFS=y\n"),
            ["CONFIG_SQUASHFS is not set: it depends on CONFIG_MISC_FILESYSTEMS, which is not set"]
        );
    }

    #[test]
    fn every_unmet_dependency_is_named() {
        let messages = messages("", "CONFIG_SQUASHFS=y\n");
        assert_eq!(
            messages,
            [
                "CONFIG_SQUASHFS is not set: it depends on CONFIG_MISC_FILESYSTEMS, which is not set; \
              it depends on CONFIG_BLOCK, which is not set"
            ]
        );
    }

    #[test]
    fn a_blocker_chain_is_followed() {
        let messages = messages("CONFIG_PCI=y\n", "CONFIG_EFI_STUB=y\n");
        assert_eq!(
            messages,
            [
                "CONFIG_EFI_STUB is not set: it depends on CONFIG_EFI, which is not set \
              (CONFIG_EFI depends on CONFIG_ACPI, which is not set)"
            ]
        );
    }

    #[test]
    fn a_wrong_value_is_reported() {
        let config = "CONFIG_BLOCK=y\nCONFIG_EXT4_FS=m\nCONFIG_LOCALVERSION=\"-x\"\n";
        let fragment = "CONFIG_EXT4_FS=y\nCONFIG_LOCALVERSION=\"-k1os\"\n";
        assert_eq!(
            messages(config, fragment),
            [
                "CONFIG_EXT4_FS=m, but K1OS needs CONFIG_EXT4_FS=y",
                "CONFIG_LOCALVERSION=\"-x\", but K1OS needs CONFIG_LOCALVERSION=\"-k1os\"",
            ]
        );
    }

    #[test]
    fn a_module_dependency_blocks_built_in() {
        let config = "CONFIG_TTY=y\nCONFIG_SERIAL_8250=m\n";
        assert_eq!(
            messages(config, "CONFIG_SERIAL_8250_CONSOLE=y\n"),
            [
                "CONFIG_SERIAL_8250_CONSOLE is not set: it depends on CONFIG_SERIAL_8250, which is m \
              (a module), so this one cannot be y"
            ]
        );
    }

    #[test]
    fn a_select_only_option_names_its_selectors() {
        let config = "CONFIG_BLOCK=y\n";
        assert_eq!(
            messages(config, "CONFIG_FAT_FS=y\n"),
            [
                "CONFIG_FAT_FS is not set: it has no prompt and is only selected by CONFIG_VFAT_FS or \
              CONFIG_MSDOS_FS, none of which is set"
            ]
        );
    }

    #[test]
    fn not_set_requirements_are_checked() {
        assert_eq!(
            messages("CONFIG_MODULES=y\n", "# CONFIG_MODULES is not set\n"),
            ["CONFIG_MODULES=y, but K1OS needs it not set"]
        );
        assert!(
            messages(
                "# CONFIG_MODULES is not set\n",
                "# CONFIG_MODULES is not set\n"
            )
            .is_empty()
        );
    }

    #[test]
    fn fragments_parse_values_and_comments() {
        let r = reqs("# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=\"x y\"\n\nnoise\n");
        let got: Vec<(&str, Option<&str>)> = r
            .iter()
            .map(|r| (r.option.as_str(), r.value.as_deref()))
            .collect();
        assert_eq!(got, [("A", Some("y")), ("B", None), ("C", Some("\"x y\""))]);
    }

    #[test]
    fn later_fragments_override_earlier_ones() {
        // requirements() reads files; the override rule itself is what it applies.
        let generic = requirements(Profile::Generic).unwrap();
        let qemu = requirements(Profile::Qemu).unwrap();
        assert!(generic.len() > qemu.len());
        let mut names: Vec<&str> = generic.iter().map(|r| r.option.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), generic.len(), "one requirement per option");
    }

    #[test]
    fn every_fragment_option_has_a_dependency_row() {
        for profile in Profile::ALL {
            for req in requirements(profile).unwrap() {
                assert!(
                    DEPENDS.iter().any(|(o, _)| *o == req.option),
                    "CONFIG_{} ({}) has no row in DEPENDS",
                    req.option,
                    req.fragment
                );
            }
        }
        for (option, deps) in DEPENDS.iter().chain(SELECTED_BY) {
            for dep in *deps {
                for sym in dep
                    .trim_start_matches('!')
                    .trim_end_matches("=y")
                    .split('|')
                {
                    let known = DEPENDS.iter().any(|(o, _)| *o == sym)
                        || sym == "MSDOS_FS"
                        || sym == "VIRTIO_MMIO";
                    assert!(known, "{option} names {sym}, which has no row");
                }
            }
        }
    }

    #[test]
    fn the_profile_is_guessed_from_the_base() {
        assert_eq!(
            guess_profile(&parse_config("CONFIG_MODULES=y\n")).0,
            Profile::Generic
        );
        assert_eq!(
            guess_profile(&parse_config("# CONFIG_MODULES is not set\n")).0,
            Profile::Qemu
        );
    }

    #[test]
    fn profiles_parse_and_print() {
        for p in Profile::ALL {
            assert_eq!(p.name().parse::<Profile>().unwrap(), p);
            assert_eq!(p.to_string(), p.name());
        }
        assert!("tiny".parse::<Profile>().is_err());
        assert_eq!(Profile::default(), Profile::Generic);
    }

    #[test]
    fn the_pin_file_parses() {
        let pin = Pin::load().unwrap();
        assert_eq!(pin.version, "6.1.192");
        assert_eq!(pin.tarball, "linux-source-6.1.tar.xz");
        assert_eq!(pin.path, Path::new("/usr/src/linux-source-6.1.tar.xz"));
        assert_eq!(
            pin.sha256,
            "4d415b3d364834fd818270e88813e90323bbfce4f519a0e6bd4940ddcd7df693"
        );
        assert!(Pin::parse("version = \"1\"\n").is_err());
    }

    fn pin_at(path: &Path, sha256: &str) -> Pin {
        Pin {
            path: path.to_path_buf(),
            sha256: sha256.to_string(),
            ..Pin::load().unwrap()
        }
    }

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn a_missing_pinned_tarball_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linux-source-6.1.tar.xz");
        let err = resolve_source(&pin_at(&path, HELLO_SHA256), None)
            .unwrap_err()
            .to_string();
        for needle in [
            &path.display().to_string(),
            "missing",
            HELLO_SHA256,
            "host-tools doctor --install",
            "apt-get install linux-source-6.1",
            "--source",
        ] {
            assert!(err.contains(needle), "`{needle}` not in: {err}");
        }
    }

    #[test]
    fn a_pinned_tarball_with_another_checksum_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("linux-source-6.1.tar.xz");
        fs::write(&path, "hello").unwrap();
        let expected = "0".repeat(64);
        let err = resolve_source(&pin_at(&path, &expected), None)
            .unwrap_err()
            .to_string();
        for needle in [
            &path.display().to_string(),
            &format!("expected sha256 {expected}"),
            &format!("actual sha256 {HELLO_SHA256}"),
            "host-tools doctor --install",
            "--source",
        ] {
            assert!(err.contains(needle), "`{needle}` not in: {err}");
        }
        let ok = resolve_source(&pin_at(&path, HELLO_SHA256), None).unwrap();
        assert_eq!(
            ok,
            Source::Tarball {
                path,
                sha256: HELLO_SHA256.to_string()
            }
        );
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
