//! `host-tools bench`: how small and how fast K1OS's stage 1 is, measured
//! against two fixtures in the same run: the classic busybox-script stage 1
//! (the **reference**) and a program that does only the kernel's part of
//! stage 1 (the **floor**).
//!
//! A run, top to bottom ([`run`]):
//!
//! 1. the inputs: the qemu-profile kernel and `build/initramfs.img` (built,
//!    or taken as they are with `--no-build`), copied under `build/bench/` so
//!    the whole run boots the same bytes, as it is and trusting the stage-2
//!    root (dm-verity on: stage 1 with and without verity in the same run);
//!    the reference and the floor packed the same way ([`fixtures`]);
//! 2. the media, the same for everyone ([`media`]): the stage-2 root
//!    (`build/system.squashfs`, or a tiny bench root: [`media::Root`]) on an
//!    ISO 9660 `K1OS` CD-ROM, a 1 GiB `K1OS-DATA` disk (and an almost full one);
//! 3. the scenarios ([`scenarios`]): RAM mode and persistent mode, then the
//!    growth runs (1, 8, 32 extra block devices; the almost full data disk).
//!    Each scenario boots the four variants **interleaved**, round by round
//!    (the order rotating each round), since this machine's speed drifts by
//!    10–15 % between identical runs; each boot's serial log is parsed into
//!    a [`timeline::Timeline`] from printk timestamps ([`boot`]);
//! 4. host build timings ([`host_build`]), sizes and the budget ([`sizes`]),
//!    the machine ([`machine`]);
//! 5. `build/bench/results.json` and `build/bench/report.md` ([`report`]).
//!
//! A boot that does not reach stage 2 with every marker fails the run, after
//! the results are written (its markers are `null` and listed as missing).
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::initramfs::{self, Compression};
use crate::kernel::{self, Profile};
use crate::vm::{self, Machine, Purpose};
use crate::{paths, ui};

pub mod boot;
pub mod fixtures;
pub mod host_build;
pub mod machine;
pub mod media;
pub mod report;
pub mod sizes;
pub mod stats;
pub mod timeline;
pub mod warp;

use boot::{Boot, Setup};
use fixtures::{Fixtures, Variant};
use media::{DataDisk, Fill, Root};
use timeline::{Marker, Timeline};

/// Boots per variant in RAM and persistent mode (full run).
pub const DEFAULT_BOOTS: usize = 5;
/// Boots per variant in each growth scenario (full run).
pub const DEFAULT_GROWTH_BOOTS: usize = 3;
/// `--quick`: boots per variant in RAM and persistent mode, and per growth scenario.
pub const QUICK_BOOTS: usize = 2;
pub const QUICK_GROWTH_BOOTS: usize = 1;
/// Extra block devices of the growth scenarios.
pub const EXTRA_DEVICES: [usize; 3] = [1, 8, 32];
/// One boot's limit (TCG boots take 3–8 s; a loaded machine is slower).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);

/// What `host-tools bench` does.
#[derive(Clone, Debug)]
pub struct Options {
    pub boots: usize,
    pub growth_boots: usize,
    pub quick: bool,
    pub root: Root,
    /// Build the kernel (qemu profile, cached) and the initramfs first;
    /// otherwise take `build/` as it is.
    pub build: bool,
    /// Time the host builds (needs `exe`).
    pub host_build: bool,
    /// The `host-tools` binary, for the host build timings.
    pub exe: PathBuf,
    /// `build/bench/`.
    pub out: PathBuf,
    /// How the run was asked for, for the report (`host-tools bench --quick`).
    pub command: String,
}

/// One scenario: a setup every variant boots, and how many times.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Key in `results.json` (`ram`, `persist`, `extra_8`, `data_full`).
    pub id: String,
    pub title: String,
    pub setup: Setup,
    pub boots: usize,
    /// Part of the growth runs (else a main comparison).
    pub growth: bool,
}

/// The scenarios of a run, in the order they boot.
pub fn scenarios(
    boots: usize,
    growth_boots: usize,
    empty: &DataDisk,
    full: &DataDisk,
) -> Vec<Scenario> {
    let persist = |extra: usize, disk: &DataDisk| Setup {
        data: Some(disk.path.clone()),
        extra_devices: extra,
    };
    let mut v = vec![
        Scenario {
            id: "ram".into(),
            title: "RAM mode (CD-ROM media, tmpfs upper)".into(),
            setup: Setup {
                data: None,
                extra_devices: 0,
            },
            boots,
            growth: false,
        },
        Scenario {
            id: "persist".into(),
            title: format!(
                "persistent mode (CD-ROM media, {} MiB ext4 data disk on virtio)",
                empty.size_mib
            ),
            setup: persist(0, empty),
            boots,
            growth: false,
        },
    ];
    for extra in EXTRA_DEVICES {
        v.push(Scenario {
            id: format!("extra_{extra}"),
            title: format!("persistent mode + {extra} extra block devices"),
            setup: persist(extra, empty),
            boots: growth_boots,
            growth: true,
        });
    }
    v.push(Scenario {
        id: "data_full".into(),
        title: format!("persistent mode, data disk {:.0} % full", full.used_percent),
        setup: persist(0, full),
        boots: growth_boots,
        growth: true,
    });
    v
}

/// Everything a run measured.
#[derive(Clone, Debug)]
pub struct Results {
    pub options: Options,
    pub machine: machine::Machine,
    pub started: SystemTime,
    pub duration: Duration,
    pub kernel_profile: String,
    pub fixtures: FixtureSizes,
    pub outputs: Outputs,
    pub budget: sizes::Budget,
    pub data_empty: DataDisk,
    pub data_full: DataDisk,
    pub runs: Vec<ScenarioRun>,
    /// The timings, or why there are none.
    pub host_build: std::result::Result<host_build::HostBuild, String>,
}

/// The sizes of the build outputs (`not built` where missing).
#[derive(Clone, Debug)]
pub struct Outputs {
    pub init: sizes::Size,
    pub initramfs_compressed: sizes::Size,
    /// Bytes of the archive uncompressed (path: the compressed image).
    pub initramfs_raw: sizes::Size,
    pub kernel: sizes::Size,
    pub system_squashfs: sizes::Size,
    pub iso: sizes::Size,
}

/// The sizes of what each variant boots.
#[derive(Clone, Debug)]
pub struct FixtureSizes {
    pub per_variant: BTreeMap<Variant, fixtures::Packed>,
    /// The floor's persistent-mode binary (the RAM one is in `per_variant`).
    pub floor_persist_init: u64,
    pub root_image: sizes::Size,
}

/// One scenario's boots, per variant in round order.
#[derive(Clone, Debug)]
pub struct ScenarioRun {
    pub scenario: Scenario,
    pub boots: BTreeMap<Variant, Vec<Boot>>,
}

impl ScenarioRun {
    /// The markers each boot of this scenario must show.
    pub fn expected(&self) -> Vec<Marker> {
        Marker::expected(self.scenario.setup.persistent())
    }

    /// A boot's problem, if it has one: how it ended and what is missing.
    pub fn problem(&self, boot: &Boot) -> Option<String> {
        let missing = boot.timeline.missing(&self.expected());
        if boot.ready() && missing.is_empty() {
            return None;
        }
        let mut s = boot.ended().to_string();
        if !missing.is_empty() {
            let names: Vec<String> = missing.iter().map(|m| m.name()).collect();
            s += &format!("; missing {}", names.join(", "));
        }
        if let Some(fatal) = &boot.timeline.fatal {
            s += &format!("; {fatal}");
        }
        Some(s)
    }
}

/// The metrics of a boot that the summaries cover: name and value (µs).
pub fn metrics(t: &Timeline, expected: &[Marker]) -> Vec<(String, Option<u64>)> {
    let mut v = vec![
        (
            "kernel_to_run_init".to_string(),
            t.span(Marker::KernelStart, Marker::RunInit),
        ),
        ("stage1".to_string(), t.stage1_us()),
        (
            "exec_to_ready".to_string(),
            t.span(Marker::Exec, Marker::Stage2Ready),
        ),
        (
            "run_init_to_ready".to_string(),
            t.span(Marker::RunInit, Marker::Stage2Ready),
        ),
        ("kernel_to_ready".to_string(), t.to_ready_us()),
    ];
    for m in expected {
        if let Marker::Phase(p) = m {
            v.push((format!("run_init_to_{p}"), t.span(Marker::RunInit, *m)));
        }
    }
    v
}

/// Runs the whole benchmark and writes `results.json` and `report.md` into
/// `opts.out`. Fails (after writing them) when a boot went wrong.
pub fn run(opts: &Options) -> Result<Results> {
    let start = Instant::now();
    let started = SystemTime::now();
    let out = &opts.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let images = out.join("images");
    std::fs::create_dir_all(&images).with_context(|| format!("creating {}", images.display()))?;

    // 1. Inputs, copied so the run boots fixed bytes.
    let build = paths::build_dir();
    let (kernel_src, init_path, initramfs_path) = if opts.build {
        ui::step("bench: build the qemu-profile kernel (cached) and the initramfs");
        let k = kernel::ensure_kernel(Profile::Qemu, None)?;
        let step = ui::Step::start("bench: stage 1 and initramfs");
        let built = initramfs::build(&build, Compression::Gzip, None, None)?;
        step.done("done");
        (k.bzimage, built.init, built.image)
    } else {
        (
            build.join("kernel/bzImage"),
            build.join("init"),
            build.join("initramfs.img"),
        )
    };
    let kernel_path = images.join("bzImage");
    std::fs::copy(&kernel_src, &kernel_path).with_context(|| {
        format!(
            "copying {} (run `host-tools kernel --profile qemu`)",
            kernel_src.display()
        )
    })?;
    let kernel_profile = kernel_profile_of(&kernel_src.with_file_name("config"));
    // The stage-2 root first: one variant trusts it.
    let root_image = media::root_image(opts.root, &images, opts.build)?;
    let root_verity = crate::verity::read(&root_image)?;
    let fx = fixtures::prepare(
        &out.join("initramfs"),
        &init_path,
        &initramfs_path,
        &root_verity,
    )?;
    let budget = sizes::Budget::measure(&build)?;

    // 2. Media.
    let iso = media::media_iso(&root_image, &images)?;
    let data_empty = media::data_disk(
        &images.join("data-empty.img"),
        media::DATA_SIZE_MIB,
        Fill::Empty,
    )?;
    let data_full = media::data_disk(
        &images.join("data-full.img"),
        media::DATA_SIZE_MIB,
        Fill::AlmostFull,
    )?;
    let extra = media::extra_disk(&images)?;

    // Chosen once (a KVM probe boots a VM): every boot of the run uses it.
    let accel = vm::accel::for_machine(&Machine::kernel(&kernel_path), Purpose::Automated)?;
    let mut machine = machine::Machine::describe(accel);

    // 3. The boots, interleaved.
    let logs = out.join("logs");
    let _ = std::fs::remove_dir_all(&logs);
    let mut runs = Vec::new();
    for scenario in scenarios(opts.boots, opts.growth_boots, &data_empty, &data_full) {
        let step = ui::Step::start(format!(
            "bench: {} — {} × {} variants",
            scenario.title,
            scenario.boots,
            Variant::ALL.len()
        ));
        let mut run = ScenarioRun {
            scenario: scenario.clone(),
            boots: BTreeMap::new(),
        };
        for round in 0..scenario.boots {
            let mut order = Variant::ALL;
            order.rotate_left(round % Variant::ALL.len());
            for variant in order {
                let initrd = &fx.initrd(variant, scenario.setup.persistent()).image;
                let vm = boot::vm(&kernel_path, initrd, &iso, &extra, &scenario.setup).accel(accel);
                let log = logs.join(format!(
                    "{}-{}-{}.log",
                    scenario.id,
                    variant.name(),
                    round + 1
                ));
                let b = boot::run(&vm, &log, BOOT_TIMEOUT)?;
                ui::step(&boot_line(&run, variant, round, &b));
                run.boots.entry(variant).or_default().push(b);
            }
        }
        step.done("done");
        runs.push(run);
    }

    // 4. Host builds.
    let host_build = if opts.host_build {
        host_build::measure(&opts.exe, &host_build::work_dir(out)).map_err(|e| format!("{e:#}"))
    } else {
        Err("skipped (--no-host-build)".to_string())
    };
    if let Err(e) = &host_build {
        ui::step(&format!("bench: host build timings: {e}"));
    }

    machine.load_end = machine::load_average();
    let mut per_variant = BTreeMap::new();
    per_variant.insert(Variant::Nostd, fx.nostd.clone());
    per_variant.insert(Variant::Verity, fx.verity.clone());
    per_variant.insert(Variant::Reference, fx.reference.clone());
    per_variant.insert(Variant::Floor, fx.floor_ram.clone());
    let results = Results {
        options: opts.clone(),
        machine,
        started,
        duration: start.elapsed(),
        kernel_profile,
        fixtures: FixtureSizes {
            per_variant,
            floor_persist_init: fx.floor_persist.init_bytes,
            root_image: sizes::Size::of(&root_image),
        },
        outputs: outputs(&build, &fx, &kernel_src, &kernel_path),
        budget,
        data_empty,
        data_full,
        runs,
        host_build,
    };

    // 5. Results.
    let json = report::json(&results);
    let missing = report::missing_fields(&json);
    if !missing.is_empty() {
        bail!(
            "results.json lacks {} (a bug in the bench)",
            missing.join(", ")
        );
    }
    let json_path = out.join("results.json");
    let text = serde_json::to_string_pretty(&json)? + "\n";
    std::fs::write(&json_path, text).with_context(|| format!("writing {}", json_path.display()))?;
    let md_path = out.join("report.md");
    std::fs::write(&md_path, report::markdown(&results))
        .with_context(|| format!("writing {}", md_path.display()))?;
    ui::step(&format!(
        "bench: wrote {} and {} ({:.0} s)",
        json_path.display(),
        md_path.display(),
        results.duration.as_secs_f64()
    ));

    let problems = report::problems(&results);
    if !problems.is_empty() {
        bail!(
            "{} boot(s) did not reach stage 2 with every marker:\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
    Ok(results)
}

/// The progress line of one boot.
fn boot_line(run: &ScenarioRun, variant: Variant, round: usize, b: &Boot) -> String {
    let t = &b.timeline;
    let show = |us: Option<u64>| us.map_or("missing".to_string(), |us| stats::human_us(us as f64));
    let mut s = format!(
        "{} {}/{} {}: stage 1 {}, stage 2 ready at {} ({:.1} s wall)",
        run.scenario.id,
        round + 1,
        run.scenario.boots,
        variant.name(),
        show(t.stage1_us()),
        show(t.to_ready_us()),
        b.wall.as_secs_f64()
    );
    if let Some(p) = run.problem(b) {
        s += &format!(" — {p}; log {}", b.log_path.display());
    }
    s
}

/// `kernel`'s size is `copy`'s: the bytes that booted.
fn outputs(build: &Path, fx: &Fixtures, kernel: &Path, copy: &Path) -> Outputs {
    let init = sizes::Size::known(&build.join("init"), fx.nostd.init_bytes);
    let image = build.join("initramfs.img");
    Outputs {
        init,
        initramfs_compressed: sizes::Size::known(&image, fx.nostd.compressed_bytes),
        initramfs_raw: sizes::Size::known(&image, fx.nostd.raw_bytes),
        kernel: match sizes::Size::of(copy).bytes {
            Some(b) => sizes::Size::known(kernel, b),
            None => sizes::Size::of(kernel),
        },
        system_squashfs: sizes::Size::of(&build.join("system.squashfs")),
        iso: sizes::Size::of(&build.join("k1os.iso")),
    }
}

/// `qemu` or `generic`, guessed from the kernel's config next to it.
fn kernel_profile_of(config: &Path) -> String {
    match std::fs::read_to_string(config) {
        Ok(text) => kernel::guess_profile(&kernel::parse_config(&text))
            .0
            .to_string(),
        Err(_) => "unknown".to_string(),
    }
}
