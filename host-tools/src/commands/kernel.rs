//! `./k1os kernel`: build the kernel (cached) into build/kernel/;
//! `./k1os kernel check`: verify a .config against the K1OS fragments;
//! `./k1os kernel pin`: re-pin kernel/pin.toml to a tarball.
use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use std::io::Read;
use std::path::{Path, PathBuf};

use host_tools::kernel::{self, Profile, pin};
use host_tools::{paths, ui};

/// Build the kernel into build/kernel/ (bzImage, config); cached by its inputs
#[derive(clap::Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "\
The first build of a profile takes minutes (qemu) to 20+ minutes (generic); it
prints the path of its log and a progress line every 15 s. Later builds with
the same inputs come from the cache ($K1OS_CACHE/kernel/) in seconds.

Examples:
  ./k1os kernel --profile qemu      the small kernel the tests boot in QEMU
  ./k1os kernel                     the generic kernel for real PCs
  ./k1os kernel --profile debian    Debian's signed kernel package, unpacked
                                    (build/kernel/modules: its module tree)
  ./k1os kernel check               is build/kernel/config what K1OS needs?
  ./k1os kernel pin                 re-pin kernel/pin.toml after a Debian update"
)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Kernel profile: `generic` boots real PCs, `qemu` is the small test
    /// kernel, `debian` Debian's signed package (downloaded, not built)
    /// [default: $K1OS_KERNEL_PROFILE, else generic]
    #[arg(long, value_enum)]
    profile: Option<Profile>,

    /// Kernel source: a tarball or an unpacked tree [default: the pinned
    /// /usr/src/linux-source-6.1.tar.xz, sha256-verified; see kernel/pin.toml]
    #[arg(long, alias = "source", value_name = "TARBALL|DIR")]
    kernel_source: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    Check(CheckArgs),
    Pin(PinArgs),
}

/// Check a final .config: list every option the profile's fragments require
/// that is missing or has another value, with the option that blocks it
#[derive(clap::Args)]
#[command(after_help = "\
The report goes to stdout (one problem a line), so it can be piped or saved.

Exit status: 0 every required option is as required; 1 some are not; 2 the
input could not be read or is not a kernel .config.

Examples:
  ./k1os kernel check                        build/kernel/config
  ./k1os kernel check /proc/config.gz        the running kernel's (gzip)
  ./k1os kernel check - --profile generic < /boot/config-6.1.0-13-amd64")]
struct CheckArgs {
    /// The .config to check: a file, gzip-compressed or not, or `-` for
    /// standard input [default: build/kernel/config]
    #[arg(value_name = "CONFIG")]
    config: Option<PathBuf>,

    /// The profile whose fragments apply [default: guessed from the config's
    /// base; $K1OS_KERNEL_PROFILE is not used here]
    #[arg(long, value_enum)]
    profile: Option<Profile>,
}

/// Re-pin kernel/pin.toml to a kernel source tarball: its version, Debian
/// package version, sha256 and build epoch, in place, comments kept
#[derive(clap::Args)]
#[command(after_help = "\
This is how a maintainer moves K1OS to another kernel on purpose: when Debian
updates linux-source-6.1, every build stops on a sha256 mismatch; run this,
read the old -> new lines it prints, build both profiles, run the tests, and
commit kernel/pin.toml alone (\"kernel: Linux 6.1.192 -> 6.1.200\"). The
build epoch is the newest mtime inside the tarball (see kernel/README.md).

Examples:
  ./k1os kernel pin             the installed /usr/src/linux-source-6.1.tar.xz
  ./k1os kernel pin --kernel-source ~/src/linux-6.1.200.tar.xz")]
struct PinArgs {
    /// The tarball to pin [default: /usr/src/linux-source-6.1.tar.xz, from
    /// Debian's linux-source-6.1]
    #[arg(long, alias = "source", value_name = "TARBALL")]
    kernel_source: Option<PathBuf>,

    /// The pin file to rewrite [default: kernel/pin.toml]
    #[arg(long, value_name = "FILE")]
    pin: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    match args.command {
        Some(Command::Check(check)) => exec_check(check),
        Some(Command::Pin(pin)) => exec_pin(pin),
        None => {
            let profile = paths::kernel_profile(args.profile)?;
            kernel::ensure_kernel(profile, args.kernel_source.as_deref())?;
            Ok(())
        }
    }
}

/// Exit status of `kernel check` when its input cannot be read or is not a
/// kernel .config (1 is "problems found").
const CHECK_UNREADABLE: i32 = 2;

fn exec_check(args: CheckArgs) -> Result<()> {
    let (name, config) = match read_check_input(args.config.as_deref()) {
        Ok(read) => read,
        Err(err) => {
            ui::error(&err);
            std::process::exit(CHECK_UNREADABLE);
        }
    };
    let profile = match args.profile {
        Some(p) => p,
        None => {
            let (p, why) = kernel::guess_profile(&config);
            ui::step(&format!(
                "profile {p} (guessed, {why}; --profile to choose)"
            ));
            p
        }
    };
    if !profile.is_built() {
        ui::error(&anyhow!(
            "--profile {profile}: Debian's kernel comes with Debian's config, which builds \
             K1OS's drivers as modules (the initramfs loads them); `kernel check` checks the \
             profiles K1OS builds: qemu, generic"
        ));
        std::process::exit(CHECK_UNREADABLE);
    }
    let requirements = kernel::requirements(profile)?;
    let problems = kernel::check_config(&config, &requirements);
    if !problems.is_empty() {
        println!("{}", kernel::report(Path::new(&name), profile, &problems));
        bail!(
            "{name}: {} of the {} options the {profile} profile requires are missing or \
             different (listed on stdout)",
            problems.len(),
            requirements.len()
        );
    }
    println!(
        "{name}: all {} options of the {profile} profile are as required",
        requirements.len()
    );
    Ok(())
}

/// The name and the parsed content of `kernel check`'s input.
fn read_check_input(arg: Option<&Path>) -> Result<(String, kernel::Config)> {
    let (name, bytes) = match arg {
        None => {
            let path = kernel::output_dir().join("config");
            let bytes = std::fs::read(&path).map_err(|e| {
                anyhow!(
                    "reading {}: {e}: build one with `./k1os kernel` (or name a .config: \
                     `./k1os kernel check PATH`)",
                    path.display()
                )
            })?;
            (path.display().to_string(), bytes)
        }
        Some(path) if path == Path::new("-") => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading standard input")?;
            ("<stdin>".to_string(), bytes)
        }
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            (path.display().to_string(), bytes)
        }
    };
    let config = kernel::config_from_bytes(&bytes, &name)?;
    Ok((name, config))
}

fn exec_pin(args: PinArgs) -> Result<()> {
    let pin_file = args.pin.unwrap_or_else(kernel::pin_path);
    let tarball = args
        .kernel_source
        .unwrap_or_else(|| PathBuf::from(pin::DEFAULT_TARBALL));
    let old = kernel::Pin::load_from(&pin_file)?;
    let step = ui::Step::start(format!(
        "read {} (version, sha256, newest mtime, Debian package)",
        tarball.display()
    ));
    let facts = pin::inspect_tarball(&tarball)?;
    step.done(&match &facts.debian {
        Some((pkg, version)) => format!("Linux {}, Debian {pkg} {version}", facts.version),
        None => format!("Linux {}, from no installed Debian package", facts.version),
    });
    let rewrite = pin::rewrite(&old, &facts);
    if rewrite.changes.is_empty() {
        println!(
            "{} already pins {} (Linux {}): nothing changed",
            pin_file.display(),
            facts.path.display(),
            facts.version
        );
        return Ok(());
    }
    // What is written must read back as the pin of that tarball.
    let new = kernel::Pin::parse(&rewrite.text).context("the rewritten pin does not parse")?;
    pin::write_atomically(&pin_file, &rewrite.text)?;

    let width = rewrite
        .changes
        .iter()
        .map(|c| c.key.len())
        .max()
        .unwrap_or(0);
    println!("{}:", pin_file.display());
    for change in &rewrite.changes {
        println!(
            "  {:<width$}  {} -> {}",
            change.key,
            shown(&change.old),
            shown(&change.new)
        );
    }
    if rewrite.comment_mentions > 0 {
        println!(
            "  {:<width$}  {} mention(s) of {} now say {}",
            "(comments)", rewrite.comment_mentions, old.version, new.version
        );
    }
    if facts.debian.is_none() {
        ui::note(&format!(
            "{} belongs to no installed Debian package (dpkg -S), so debian_package and \
             debian_version are now empty: `./k1os doctor` cannot install it, and the pin works \
             on hosts that have this file at that path",
            facts.path.display()
        ));
    }
    if let Some((pkg, version)) = &facts.debian
        && !version.starts_with(&new.version)
    {
        ui::note(&format!(
            "Debian's {pkg} {version} does not start with the Makefile's version {}: \
             check that the tarball is the one the package installed",
            new.version
        ));
    }
    let series = |v: &str| v.split('.').take(2).collect::<Vec<_>>().join(".");
    if series(&old.version) != series(&new.version) {
        ui::note(&format!(
            "this moves from the {} series to {}: re-check the Kconfig dependency table \
             (DEPENDS in host-tools/src/kernel/check.rs) and kernel/patches/ \
             (kernel/README.md, \"Moving to another kernel\")",
            series(&old.version),
            series(&new.version)
        ));
    }
    println!(
        "\nThis moves K1OS to Linux {} on purpose. Next: build both profiles \
         (`./k1os kernel --profile qemu`, `./k1os kernel --profile generic`), run the tests, \
         and commit {} alone, in one commit.",
        new.version,
        pin_file.display()
    );
    Ok(())
}

/// An old or new value as printed: `(empty)` rather than nothing.
fn shown(value: &str) -> &str {
    if value.is_empty() { "(empty)" } else { value }
}
