//! `./k1os packages`: the packages, their versions and licences, whether
//! each goes into the image or the repository, and whether it is cached.
use anyhow::Result;
use std::path::PathBuf;

use host_tools::packages::{Plan, Settings};

/// List the packages: version, licence, image or repository, cached or not,
/// dependencies
#[derive(clap::Args)]
#[command(after_help = "\
Every package.toml is checked; all problems are reported at once, each with
its file and line. Adding a package: packages/README.md. INTO is `image`
(system.squashfs, by `rootfs`) or `repo` (`repository = true`: a .warp archive
in build/repo/, by `repo build`).

Examples:
  ./k1os packages                          the checkout's packages/
  ./k1os packages --packages ~/my-pkgs     check a directory of your own")]
pub struct Args {
    /// The packages directory [default: <checkout>/packages]
    #[arg(long, value_name = "DIR")]
    packages: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    let mut settings = Settings::default_for_checkout();
    if let Some(dir) = args.packages {
        settings.packages_dir = dir;
    }
    let plan = Plan::new(settings)?;
    println!(
        "{:<12} {:<24} {:<16} {:<6} {:<8} {:<12} DESCRIPTION",
        "NAME", "VERSION", "LICENSE", "INTO", "CACHED", "DEPENDS"
    );
    for (i, p) in plan.packages.iter().enumerate() {
        let pkg = &p.package;
        let cached = if plan.is_cached(i) { "yes" } else { "no" };
        let into = if pkg.repository { "repo" } else { "image" };
        let depends = if pkg.depends.is_empty() {
            "-".to_string()
        } else {
            pkg.depends.join(",")
        };
        println!(
            "{:<12} {:<24} {:<16} {:<6} {:<8} {:<12} {}",
            pkg.name, pkg.version, pkg.license, into, cached, depends, pkg.description
        );
    }
    Ok(())
}
