//! `host-tools doctor`: checks every host program and package the build needs.
use anyhow::Result;
use host_tools::doctor::Purpose;

/// Check (and with --install, install) what the build needs on the host
#[derive(clap::Args)]
#[command(after_help = "\
What is checked: the host programs and files (Debian packages), the kernel source package at \
the version kernel/pin.toml pins, rustup and cargo, the rustup targets and, for tests, cargo-deny.

--install asks apt-get for the whole set of the purpose in one transaction (through sudo unless \
you are root), simulated first so that nothing the build needs is removed; rustup targets and \
cargo tools install for the current user, so do not run it with sudo.

Examples:
  ./k1os doctor                          what is missing for the build and the tests
  ./k1os doctor --install --for build    install what `make iso` needs, nothing for tests")]
pub struct Args {
    /// Install what is missing: apt-get (Debian/Ubuntu), rustup, cargo install
    #[arg(long)]
    install: bool,
    /// What to prepare the host for: `build` is what `make iso` needs; `test`
    /// adds QEMU, firmware and the test tools
    #[arg(long = "for", value_name = "PURPOSE", value_enum, default_value_t = Purpose::Test)]
    purpose: Purpose,
}

pub fn exec(args: Args) -> Result<()> {
    host_tools::doctor::doctor(args.purpose, args.install)
}
