//! `host-tools kernel`: build the kernel (cached) into build/kernel/, and
//! `host-tools kernel check`: verify a .config against the K1OS fragments.
use anyhow::{Result, bail};
use clap::Subcommand;
use std::path::PathBuf;

use host_tools::kernel::{self, Profile};
use host_tools::ui;

/// Build the kernel into build/kernel/ (bzImage, config); cached by its inputs
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Kernel profile
    #[arg(long, value_enum, env = kernel::PROFILE_ENV, default_value_t = Profile::Generic)]
    profile: Profile,

    /// Kernel source: a tarball or an unpacked tree [default: the pinned
    /// /usr/src/linux-source-6.1.tar.xz, sha256-verified; see kernel/pin.toml]
    #[arg(long, value_name = "TARBALL|DIR")]
    source: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    Check(CheckArgs),
}

/// Check a final .config: list every option the profile's fragments require
/// that is missing or has another value, with the option that blocks it
#[derive(clap::Args)]
struct CheckArgs {
    /// The .config to check [default: build/kernel/config]
    config: Option<PathBuf>,

    /// The profile whose fragments apply [default: guessed from the config's base]
    #[arg(long, value_enum)]
    profile: Option<Profile>,
}

pub fn exec(args: Args) -> Result<()> {
    match args.command {
        Some(Command::Check(check)) => exec_check(check),
        None => {
            kernel::ensure_kernel(args.profile, args.source.as_deref())?;
            Ok(())
        }
    }
}

fn exec_check(args: CheckArgs) -> Result<()> {
    let path = args
        .config
        .unwrap_or_else(|| kernel::output_dir().join("config"));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        anyhow::anyhow!(
            "reading {}: {e} (build one with `host-tools kernel`)",
            path.display()
        )
    })?;
    let config = kernel::parse_config(&text);
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
    let requirements = kernel::requirements(profile)?;
    let problems = kernel::check_config(&config, &requirements);
    if !problems.is_empty() {
        bail!("{}", kernel::report(&path, profile, &problems));
    }
    ui::step(&format!(
        "{}: all {} options of the {profile} profile are as required",
        path.display(),
        requirements.len()
    ));
    Ok(())
}
