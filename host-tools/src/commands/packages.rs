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
    let mut rows = vec![
        [
            "NAME",
            "VERSION",
            "INTO",
            "CACHED",
            "DEPENDS",
            "LICENSE",
            "DESCRIPTION",
        ]
        .map(String::from),
    ];
    for (i, p) in plan.packages.iter().enumerate() {
        let pkg = &p.package;
        let cached = if plan.is_cached(i) { "yes" } else { "no" };
        let into = if pkg.repository { "repo" } else { "image" };
        let depends = if pkg.depends.is_empty() {
            "-".to_string()
        } else {
            pkg.depends.join(",")
        };
        rows.push([
            pkg.name.clone(),
            pkg.version.clone(),
            into.into(),
            cached.into(),
            depends,
            pkg.license.clone(),
            pkg.description.clone(),
        ]);
    }
    // Columns as wide as their longest value (licence expressions of static
    // Debian binaries run long), the description last.
    let mut widths = [0; 6];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (w, cell) in widths.iter().zip(row) {
            line += &format!("{cell:<w$}  ");
        }
        line += &row[6];
        println!("{line}");
    }
    Ok(())
}
