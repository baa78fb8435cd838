//! `host-tools doctor`: checks every host program and package the build needs.
use anyhow::Result;

/// Check (and with --install, install) what the build needs on the host
#[derive(clap::Args)]
pub struct Args {
    /// Install what is missing with apt-get (Debian/Ubuntu) and rustup
    #[arg(long)]
    install: bool,
}

pub fn exec(args: Args) -> Result<()> {
    host_tools::doctor::doctor(args.install)
}
