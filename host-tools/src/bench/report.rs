//! `results.json` and `report.md` of a run, and the list of fields the JSON
//! must have ([`required_fields`], checked before it is written and by the tests).
use serde_json::{Map, Value, json};
use std::fmt::Write as _;

use super::fixtures::Variant;
use super::sizes::{self, Size};
use super::stats::{self, Summary};
use super::timeline::Marker;
use super::{EXTRA_DEVICES, Results, ScenarioRun, metrics};
use crate::ui::human_size;

/// Version of the layout of `results.json`.
pub const SCHEMA: &str = "k1os-bench/2";

/// The scenarios compared side by side (the rest are growth runs).
pub const MAIN_SCENARIOS: [&str; 2] = ["ram", "persist"];

/// The time metrics every variant of every scenario summarises (µs → ms),
/// besides the per-phase ones (`run_init_to_<phase>`).
pub const METRICS: [&str; 5] = [
    "kernel_to_run_init",
    "stage1",
    "exec_to_ready",
    "run_init_to_ready",
    "kernel_to_ready",
];

/// The ratios reported for each main scenario, against each fixture.
pub const RATIOS: [&str; 5] = [
    "stage1",
    "kernel_to_ready",
    "run_init_to_ready",
    "initramfs_compressed",
    "initramfs_raw",
];

/// The size entries of `sizes`.
pub const OUTPUT_SIZES: [&str; 6] = [
    "init",
    "initramfs_compressed",
    "initramfs_raw",
    "kernel",
    "system_squashfs",
    "iso",
];

/// JSON pointers that every `results.json` has (a value may be `null` where
/// something was not built or a marker was missing, but the field is there).
pub fn required_fields() -> Vec<String> {
    let mut f: Vec<String> = [
        "/schema",
        "/command",
        "/quick",
        "/boots",
        "/growth_boots",
        "/stage2_root",
        "/duration_s",
        "/machine/cpu_model",
        "/machine/cores",
        "/machine/accelerator",
        "/machine/qemu_version",
        "/kernel/profile",
        "/budget/init_bytes",
        "/budget/init_limit",
        "/budget/init_goal",
        "/budget/initramfs_gzip_bytes",
        "/budget/initramfs_gzip_limit",
        "/budget/ok",
        "/host_build/command",
        "/host_build/cold_s",
        "/host_build/no_change_s",
        "/host_build/touch_init_nostd_s",
        "/growth/data/empty/used_percent",
        "/growth/data/almost_full/used_percent",
        "/problems",
    ]
    .map(String::from)
    .to_vec();
    for s in OUTPUT_SIZES {
        f.push(format!("/sizes/{s}/bytes"));
        f.push(format!("/sizes/{s}/status"));
    }
    for v in Variant::ALL {
        let v = v.name();
        for s in [
            "init_bytes",
            "initramfs_compressed_bytes",
            "initramfs_raw_bytes",
        ] {
            f.push(format!("/sizes/variants/{v}/{s}"));
        }
        for scenario in MAIN_SCENARIOS {
            let persistent = scenario == "persist";
            let base = format!("/boot/{scenario}/variants/{v}");
            for m in METRICS {
                for k in ["median_ms", "min_ms", "max_ms", "n"] {
                    f.push(format!("{base}/summary_ms/{m}/{k}"));
                }
            }
            for m in Marker::expected(persistent) {
                if let Marker::Phase(p) = m {
                    f.push(format!("{base}/summary_ms/run_init_to_{p}/median_ms"));
                }
            }
            f.push(format!("{base}/boots"));
            f.push(format!("{base}/failed_boots"));
        }
        for n in std::iter::once(0).chain(EXTRA_DEVICES) {
            f.push(format!(
                "/growth/extra_devices/{n}/variants/{v}/stage1_ms/median_ms"
            ));
        }
        for d in ["empty", "almost_full"] {
            f.push(format!("/growth/data/{d}/variants/{v}/stage1_ms/median_ms"));
        }
    }
    for scenario in MAIN_SCENARIOS {
        for against in ["vs_reference", "vs_floor"] {
            for r in RATIOS {
                f.push(format!("/ratios/{scenario}/{against}/{r}"));
            }
            f.push(format!(
                "/ratios/{scenario}/{against}/stage1_paired_diff_ms/median_ms"
            ));
        }
        f.push(format!("/ratios/{scenario}/verity/stage1"));
        f.push(format!(
            "/ratios/{scenario}/verity/stage1_paired_diff_ms/median_ms"
        ));
    }
    f
}

/// The required fields that `json` lacks.
pub fn missing_fields(json: &Value) -> Vec<String> {
    required_fields()
        .into_iter()
        .filter(|p| json.pointer(p).is_none())
        .collect()
}

fn summary(run: &ScenarioRun, variant: Variant, metric: &str) -> Option<Summary> {
    let expected = run.expected();
    let boots = run.boots.get(&variant)?;
    Summary::of_present(boots.iter().map(|b| {
        metrics(&b.timeline, &expected)
            .into_iter()
            .find(|(name, _)| name == metric)
            .and_then(|(_, v)| v)
    }))
}

fn median(run: Option<&ScenarioRun>, variant: Variant, metric: &str) -> Option<f64> {
    summary(run?, variant, metric).map(|s| s.median)
}

fn find<'a>(results: &'a Results, id: &str) -> Option<&'a ScenarioRun> {
    results.runs.iter().find(|r| r.scenario.id == id)
}

fn scenario_json(run: &ScenarioRun) -> Value {
    let expected = run.expected();
    let mut variants = Map::new();
    for variant in Variant::ALL {
        let boots = run.boots.get(&variant).map(Vec::as_slice).unwrap_or(&[]);
        let mut summary_ms = Map::new();
        let names: Vec<String> = metrics(&Default::default(), &expected)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for name in names {
            summary_ms.insert(name.clone(), Summary::json(summary(run, variant, &name)));
        }
        let boots_json: Vec<Value> = boots
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let mut markers = Map::new();
                for m in &expected {
                    markers.insert(m.name(), json!(b.timeline.at(*m)));
                }
                let missing: Vec<String> = b
                    .timeline
                    .missing(&expected)
                    .iter()
                    .map(|m| m.name())
                    .collect();
                json!({
                    "round": i + 1,
                    "ended": b.ended(),
                    "wall_s": (b.wall.as_secs_f64() * 100.0).round() / 100.0,
                    "markers_us": markers,
                    "missing": missing,
                    "fatal": b.timeline.fatal,
                    "log": sizes::display_path(&b.log_path),
                })
            })
            .collect();
        let failed = boots.iter().filter(|b| run.problem(b).is_some()).count();
        variants.insert(
            variant.name().to_string(),
            json!({
                "summary_ms": summary_ms,
                "boots": boots_json,
                "failed_boots": failed,
            }),
        );
    }
    let s = &run.scenario;
    json!({
        "title": s.title,
        "boots_per_variant": s.boots,
        "setup": {
            "mode": if s.setup.persistent() { "persist" } else { "ram" },
            "data_disk": s.setup.data.as_ref().map(|p| sizes::display_path(p)),
            "extra_devices": s.setup.extra_devices,
        },
        "variants": variants,
    })
}

fn growth_entry(run: Option<&ScenarioRun>) -> Value {
    let mut variants = Map::new();
    for v in Variant::ALL {
        let get = |m: &str| Summary::json(run.and_then(|r| summary(r, v, m)));
        variants.insert(
            v.name().to_string(),
            json!({
                "stage1_ms": get("stage1"),
                "kernel_to_run_init_ms": get("kernel_to_run_init"),
                "run_init_to_ready_ms": get("run_init_to_ready"),
            }),
        );
    }
    json!({
        "scenario": run.map(|r| r.scenario.id.clone()),
        "variants": variants,
    })
}

/// `nostd ÷ other` for each of [`RATIOS`].
fn ratios(results: &Results, run: Option<&ScenarioRun>, other: Variant) -> Value {
    let sizes = &results.fixtures.per_variant;
    let size = |v: Variant, raw: bool| {
        sizes
            .get(&v)
            .map(|p| if raw { p.raw_bytes } else { p.compressed_bytes } as f64)
    };
    let mut m = Map::new();
    for r in RATIOS {
        let value = match r {
            "initramfs_compressed" => stats::ratio(size(Variant::Nostd, false), size(other, false)),
            "initramfs_raw" => stats::ratio(size(Variant::Nostd, true), size(other, true)),
            metric => stats::ratio(
                median(run, Variant::Nostd, metric),
                median(run, other, metric),
            ),
        };
        m.insert(r.to_string(), json!(value.map(round3)));
    }
    m.insert(
        "stage1_paired_diff_ms".to_string(),
        paired_stage1_diff(run, Variant::Nostd, other),
    );
    Value::Object(m)
}

/// What dm-verity costs stage 1: init-nostd trusting the image ÷ init-nostd
/// unverified (medians), and the paired difference, verified − unverified.
fn verity_cost(run: Option<&ScenarioRun>) -> Value {
    let ratio = stats::ratio(
        median(run, Variant::Verity, "stage1"),
        median(run, Variant::Nostd, "stage1"),
    );
    json!({
        "stage1": ratio.map(round3),
        "stage1_paired_diff_ms": paired_stage1_diff(run, Variant::Verity, Variant::Nostd),
    })
}

/// Round by round (the two booted back to back), `a`'s stage-1 time minus
/// `b`'s: median, min and max in ms over the rounds where both have one.
/// Pairing cancels most of the machine's drift.
fn paired_stage1_diff(run: Option<&ScenarioRun>, a: Variant, b: Variant) -> Value {
    let mut diffs: Vec<f64> = match run {
        Some(r) => match (r.boots.get(&a), r.boots.get(&b)) {
            (Some(a), Some(b)) => a
                .iter()
                .zip(b)
                .filter_map(|(a, b)| {
                    Some(a.timeline.stage1_us()? as f64 - b.timeline.stage1_us()? as f64)
                })
                .collect(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    if diffs.is_empty() {
        return json!({ "median_ms": null, "min_ms": null, "max_ms": null, "n": 0 });
    }
    diffs.sort_by(f64::total_cmp);
    let n = diffs.len();
    let median = if n % 2 == 1 {
        diffs[n / 2]
    } else {
        (diffs[n / 2 - 1] + diffs[n / 2]) / 2.0
    };
    json!({
        "median_ms": stats::ms(median),
        "min_ms": stats::ms(diffs[0]),
        "max_ms": stats::ms(diffs[n - 1]),
        "n": n,
    })
}

/// `+38.1 ms (+12.0 … +60.2)` for a paired difference.
fn diff_cell(v: &Value) -> String {
    let f = |k: &str| v[k].as_f64();
    match (f("median_ms"), f("min_ms"), f("max_ms")) {
        (Some(m), Some(_), Some(_)) if v["n"] == 1 => format!("{m:+.1} ms"),
        (Some(m), Some(lo), Some(hi)) => format!("{m:+.1} ms ({lo:+.1} … {hi:+.1})"),
        _ => "missing".to_string(),
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// `results.json`.
pub fn json(results: &Results) -> Value {
    let o = &results.outputs;
    let mut out_sizes = Map::new();
    for (name, size) in [
        ("init", &o.init),
        ("initramfs_compressed", &o.initramfs_compressed),
        ("initramfs_raw", &o.initramfs_raw),
        ("kernel", &o.kernel),
        ("system_squashfs", &o.system_squashfs),
        ("iso", &o.iso),
    ] {
        out_sizes.insert(name.to_string(), size.json());
    }
    let mut variant_sizes = Map::new();
    for (v, p) in &results.fixtures.per_variant {
        variant_sizes.insert(
            v.name().to_string(),
            json!({
                "init_bytes": p.init_bytes,
                "initramfs_compressed_bytes": p.compressed_bytes,
                "initramfs_raw_bytes": p.raw_bytes,
                "image": sizes::display_path(&p.image),
            }),
        );
    }
    variant_sizes.insert(
        "floor_persist_init_bytes".into(),
        json!(results.fixtures.floor_persist_init),
    );
    out_sizes.insert("variants".into(), Value::Object(variant_sizes));
    out_sizes.insert(
        "stage2_root_image".into(),
        results.fixtures.root_image.json(),
    );

    let mut boot = Map::new();
    for id in MAIN_SCENARIOS {
        if let Some(run) = find(results, id) {
            boot.insert(id.to_string(), scenario_json(run));
        }
    }
    let mut growth_runs = Map::new();
    for run in results.runs.iter().filter(|r| r.scenario.growth) {
        growth_runs.insert(run.scenario.id.clone(), scenario_json(run));
    }
    let mut extra = Map::new();
    extra.insert("0".into(), growth_entry(find(results, "persist")));
    for n in EXTRA_DEVICES {
        extra.insert(
            n.to_string(),
            growth_entry(find(results, &format!("extra_{n}"))),
        );
    }
    let disk = |d: &super::DataDisk, run: Option<&ScenarioRun>| {
        let mut e = growth_entry(run);
        e["size_mib"] = json!(d.size_mib);
        e["used_percent"] = json!((d.used_percent * 10.0).round() / 10.0);
        e["image"] = json!(sizes::display_path(&d.path));
        e
    };
    let mut ratio_map = Map::new();
    for id in MAIN_SCENARIOS {
        let run = find(results, id);
        ratio_map.insert(
            id.to_string(),
            json!({
                "vs_reference": ratios(results, run, Variant::Reference),
                "vs_floor": ratios(results, run, Variant::Floor),
                "verity": verity_cost(run),
            }),
        );
    }
    let host_build = match &results.host_build {
        Ok(h) => h.json(),
        Err(e) => json!({
            "command": null, "cold_s": null, "no_change_s": null,
            "touch_init_nostd_s": null, "error": e,
        }),
    };
    let variants: Map<String, Value> = Variant::ALL
        .iter()
        .map(|v| (v.name().to_string(), json!(v.describe())))
        .collect();
    json!({
        "schema": SCHEMA,
        "command": results.options.command,
        "quick": results.options.quick,
        "boots": results.options.boots,
        "growth_boots": results.options.growth_boots,
        "stage2_root": results.options.root.name(),
        "started_unix": results.started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "duration_s": results.duration.as_secs(),
        "machine": results.machine.json(),
        "kernel": {
            "profile": results.kernel_profile,
            "path": sizes::display_path(&o.kernel.path),
        },
        "variants": variants,
        "sizes": out_sizes,
        "budget": results.budget.json(),
        "boot": boot,
        "ratios": ratio_map,
        "growth": {
            "extra_devices": extra,
            "data": {
                "empty": disk(&results.data_empty, find(results, "persist")),
                "almost_full": disk(&results.data_full, find(results, "data_full")),
            },
            "runs": growth_runs,
        },
        "host_build": host_build,
        "problems": problems(results),
    })
}

/// Every boot that did not reach stage 2 with every marker, one line each.
pub fn problems(results: &Results) -> Vec<String> {
    let mut v = Vec::new();
    for run in &results.runs {
        for (variant, boots) in &run.boots {
            for (i, b) in boots.iter().enumerate() {
                if let Some(p) = run.problem(b) {
                    v.push(format!(
                        "{} / {} boot {}: {p} (log {})",
                        run.scenario.id,
                        variant.name(),
                        i + 1,
                        sizes::display_path(&b.log_path)
                    ));
                }
            }
        }
    }
    v
}

fn cell(s: Option<Summary>) -> String {
    match s {
        Some(s) if s.n > 0 => s.display(),
        _ => "missing".to_string(),
    }
}

fn ratio_cell(v: &Value) -> String {
    v.as_f64().map_or("—".to_string(), |x| format!("{x:.2}"))
}

fn size_row(what: &str, size: &Size) -> String {
    match size.bytes {
        Some(b) => format!(
            "| {what} | `{}` | {b} | {} |\n",
            sizes::display_path(&size.path),
            human_size(b)
        ),
        None => format!(
            "| {what} | `{}` | not built | |\n",
            sizes::display_path(&size.path)
        ),
    }
}

/// `report.md`.
pub fn markdown(results: &Results) -> String {
    let json = json(results);
    let mut s = String::new();
    let o = &results.options;
    let _ = writeln!(s, "# K1OS benchmark report\n");
    let _ = writeln!(
        s,
        "`{}` — {} boots per variant in RAM and persistent mode, {} per growth scenario; \
         took {:.0} min.\n",
        o.command,
        o.boots,
        o.growth_boots,
        results.duration.as_secs_f64() / 60.0
    );
    let m = &results.machine;
    let _ = writeln!(s, "**Machine:** {}.  ", m.summary());
    let _ = writeln!(
        s,
        "Load average at the start {}, at the end {} (other work on the machine makes TCG times noisy; \
         the variants boot interleaved, so they share the noise).  ",
        m.load_start, m.load_end
    );
    let _ = writeln!(
        s,
        "Kernel: `{}` ({} profile), booted directly (`-kernel`/`-initrd`), 1 vCPU, {} MiB. \
         Stage 2 (`--root {}`): {}.\n",
        sizes::display_path(&results.outputs.kernel.path),
        results.kernel_profile,
        crate::vm::KERNEL_BOOT_MEMORY_MIB,
        o.root.name(),
        o.root.describe()
    );

    let _ = writeln!(s, "## Variants\n");
    for v in Variant::ALL {
        let _ = writeln!(s, "- **{}**: {}", v.name(), v.describe());
    }
    s.push('\n');

    let _ = writeln!(s, "## Sizes\n");
    let _ = writeln!(s, "| | file | bytes | |\n|---|---|---:|---:|");
    let out = &results.outputs;
    s += &size_row("stage 1 (`init-nostd`)", &out.init);
    s += &size_row("initramfs, compressed", &out.initramfs_compressed);
    s += &size_row("initramfs, uncompressed", &out.initramfs_raw);
    s += &size_row("kernel", &out.kernel);
    s += &size_row("root filesystem", &out.system_squashfs);
    s += &size_row("ISO", &out.iso);
    s += &size_row(
        "stage-2 root the bench booted",
        &results.fixtures.root_image,
    );
    let _ = writeln!(
        s,
        "\n| initramfs of | `/init` | compressed (gzip) | uncompressed |\n|---|---:|---:|---:|"
    );
    for (v, p) in &results.fixtures.per_variant {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} |",
            v.name(),
            human_size(p.init_bytes),
            human_size(p.compressed_bytes),
            human_size(p.raw_bytes)
        );
    }
    let _ = writeln!(s, "\n**Budget:**\n");
    for line in results.budget.lines() {
        let _ = writeln!(s, "- {line}");
    }
    s.push('\n');

    let _ = writeln!(s, "## Boot timeline, side by side\n");
    let _ = writeln!(
        s,
        "Median (min–max) of printk timestamps; times from `Run /init` unless said otherwise. \
         \"missing\": the marker was in no boot's log.\n"
    );
    for id in MAIN_SCENARIOS {
        let Some(run) = find(results, id) else {
            continue;
        };
        let _ = writeln!(
            s,
            "### {} — {} boots per variant\n",
            run.scenario.title, run.scenario.boots
        );
        let _ = writeln!(
            s,
            "| | {} |\n|---|{}",
            Variant::ALL.map(|v| v.name()).join(" | "),
            "---:|".repeat(Variant::ALL.len())
        );
        let mut rows: Vec<(String, String)> = vec![(
            "kernel start → `Run /init`".into(),
            "kernel_to_run_init".into(),
        )];
        for m in run.expected() {
            if let Marker::Phase(p) = m {
                rows.push((format!("→ `{p}`"), format!("run_init_to_{p}")));
            }
        }
        rows.push(("**stage 1** (`Run /init` → exec)".into(), "stage1".into()));
        rows.push(("exec → stage 2 ready".into(), "exec_to_ready".into()));
        rows.push((
            "`Run /init` → stage 2 ready".into(),
            "run_init_to_ready".into(),
        ));
        rows.push((
            "**kernel start → stage 2 ready**".into(),
            "kernel_to_ready".into(),
        ));
        for (label, metric) in rows {
            let cells: Vec<String> = Variant::ALL
                .iter()
                .map(|v| cell(summary(run, *v, &metric)))
                .collect();
            let _ = writeln!(s, "| {label} | {} |", cells.join(" | "));
        }
        let r = &json["ratios"][id];
        let _ = writeln!(
            s,
            "\n| init-nostd ÷ … | reference | floor |\n|---|---:|---:|"
        );
        for (label, key) in [
            ("stage-1 time", "stage1"),
            (
                "time to stage 2 ready (from kernel start)",
                "kernel_to_ready",
            ),
            (
                "time to stage 2 ready (from `Run /init`)",
                "run_init_to_ready",
            ),
            ("initramfs size, compressed", "initramfs_compressed"),
            ("initramfs size, uncompressed", "initramfs_raw"),
        ] {
            let _ = writeln!(
                s,
                "| {label} | {} | {} |",
                ratio_cell(&r["vs_reference"][key]),
                ratio_cell(&r["vs_floor"][key])
            );
        }
        let _ = writeln!(
            s,
            "| stage-1 time, init-nostd − …, round by round | {} | {} |",
            diff_cell(&r["vs_reference"]["stage1_paired_diff_ms"]),
            diff_cell(&r["vs_floor"]["stage1_paired_diff_ms"])
        );
        let _ = writeln!(
            s,
            "\ndm-verity's cost to stage 1 (init-nostd-verity − init-nostd, round by round): \
             {}; ratio of the medians {}.",
            diff_cell(&r["verity"]["stage1_paired_diff_ms"]),
            ratio_cell(&r["verity"]["stage1"])
        );
        s.push('\n');
    }

    let _ = writeln!(s, "## How cost grows\n");
    let _ = writeln!(
        s,
        "Stage-1 time (`Run /init` → exec), persistent mode; extra devices are empty \
         {} disks on a virtio-scsi controller.\n",
        human_size(super::media::EXTRA_DISK_BYTES)
    );
    let _ = writeln!(
        s,
        "| extra block devices | {} | kernel start → `Run /init` (init-nostd) |\n|---:|{}---:|",
        Variant::ALL.map(|v| v.name()).join(" | "),
        "---:|".repeat(Variant::ALL.len())
    );
    for n in std::iter::once(0).chain(EXTRA_DEVICES) {
        let id = if n == 0 {
            "persist".to_string()
        } else {
            format!("extra_{n}")
        };
        let run = find(results, &id);
        let cells: Vec<String> = Variant::ALL
            .iter()
            .map(|v| cell(run.and_then(|r| summary(r, *v, "stage1"))))
            .collect();
        let kernel = cell(run.and_then(|r| summary(r, Variant::Nostd, "kernel_to_run_init")));
        let _ = writeln!(s, "| {n} | {} | {kernel} |", cells.join(" | "));
    }
    let _ = writeln!(
        s,
        "\n| data disk ({} MiB) | used | {} |\n|---|---:|{}",
        results.data_empty.size_mib,
        Variant::ALL.map(|v| v.name()).join(" | "),
        "---:|".repeat(Variant::ALL.len())
    );
    for (label, disk, id) in [
        ("empty", &results.data_empty, "persist"),
        ("almost full", &results.data_full, "data_full"),
    ] {
        let run = find(results, id);
        let cells: Vec<String> = Variant::ALL
            .iter()
            .map(|v| cell(run.and_then(|r| summary(r, *v, "stage1"))))
            .collect();
        let _ = writeln!(
            s,
            "| {label} | {:.1} % | {} |",
            disk.used_percent,
            cells.join(" | ")
        );
    }
    s.push('\n');

    let _ = writeln!(s, "## Host build\n");
    match &results.host_build {
        Ok(h) => {
            let _ = writeln!(
                s,
                "`{}`: cold {:.1} s, nothing changed {:.1} s, after touching `{}` {:.1} s ({}).\n",
                h.command,
                h.cold.as_secs_f64(),
                h.no_change.as_secs_f64(),
                super::host_build::TOUCHED,
                h.touched.as_secs_f64(),
                h.note
            );
        }
        Err(e) => {
            let _ = writeln!(s, "Not measured: {e}\n");
        }
    }

    let problems = problems(results);
    if !problems.is_empty() {
        let _ = writeln!(s, "## Problems\n");
        for p in problems {
            let _ = writeln!(s, "- {p}");
        }
        s.push('\n');
    }

    let _ = writeln!(
        s,
        "Reproduce: `host-tools bench` (`make bench`); `--quick` is the CI run. \
         Serial logs of every boot: `build/bench/logs/`; all figures: `build/bench/results.json`."
    );
    s
}
