//! `host-tools bench`: boots init-nostd (without and with dm-verity), the
//! busybox reference and the floor side by side and writes `build/bench/results.json` and `report.md`;
//! `--check-budget` only checks stage 1's size budget.
use anyhow::{Result, ensure};
use std::path::PathBuf;

use host_tools::bench::{self, media::Root, sizes::Budget};
use host_tools::paths;

/// Size and startup benchmarks: init-nostd (without and with dm-verity) against
/// the classic busybox stage 1 and the floor, in the same run
/// (build/bench/results.json, report.md)
#[derive(clap::Args)]
pub struct Args {
    /// Boots per variant in RAM and persistent mode (at least 5 for a full run)
    #[arg(long, value_name = "N")]
    boots: Option<usize>,
    /// A few boots only, for CI
    #[arg(long)]
    quick: bool,
    /// The stage-2 root: build/system.squashfs (K1OS's), or a tiny busybox
    /// root that says ready and powers off
    #[arg(long, value_enum, default_value = "system")]
    root: Root,
    /// Take build/ (kernel, init, initramfs, system.squashfs) as it is instead of
    /// building it first
    #[arg(long)]
    no_build: bool,
    /// Skip the host build timings
    #[arg(long)]
    no_host_build: bool,
    /// Only check the size budget (no VM, nothing built): build/init at most
    /// 25¼ KiB and the gzip build/initramfs.img at most 16 KiB, a ratchet towards
    /// the 16 KiB goal for build/init
    #[arg(long)]
    check_budget: bool,
    /// Only warp's benchmark, no VM: the shipped binary's size, `update` +
    /// `install` of a 50 MB package over HTTP, `search` in an index of 10,000
    /// packages (build/bench/warp/warp.json)
    #[arg(long, conflicts_with_all = ["check_budget", "quick", "boots"])]
    warp: bool,
    /// Output directory (default: build/bench/)
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    if args.check_budget {
        return check_budget();
    }
    if args.warp {
        let out = args
            .out
            .unwrap_or_else(|| paths::build_dir().join("bench"))
            .join("warp");
        let figures = bench::warp::run(&out)?;
        println!("{}", bench::warp::report(&figures));
        return Ok(());
    }
    let (boots, growth_boots) = if args.quick {
        (
            args.boots.unwrap_or(bench::QUICK_BOOTS),
            bench::QUICK_GROWTH_BOOTS,
        )
    } else {
        let boots = args.boots.unwrap_or(bench::DEFAULT_BOOTS);
        ensure!(
            boots >= bench::DEFAULT_BOOTS,
            "a full run needs at least {} boots per variant (use --quick for fewer)",
            bench::DEFAULT_BOOTS
        );
        (boots, bench::DEFAULT_GROWTH_BOOTS)
    };
    let command = std::env::args()
        .skip(1)
        .fold("host-tools".to_string(), |s, a| s + " " + &a);
    let opts = bench::Options {
        boots,
        growth_boots,
        quick: args.quick,
        root: args.root,
        build: !args.no_build,
        host_build: !args.no_host_build,
        exe: std::env::current_exe()?,
        out: args.out.unwrap_or_else(|| paths::build_dir().join("bench")),
        command,
    };
    let results = bench::run(&opts)?;
    for line in results.budget.lines() {
        println!("{line}");
    }
    println!("{}", opts.out.join("report.md").display());
    Ok(())
}

/// The figures on stdout, then the verdict: the error names what is over.
fn check_budget() -> Result<()> {
    let budget = Budget::measure(&paths::build_dir())?;
    for line in budget.lines() {
        println!("{line}");
    }
    budget.check()
}
