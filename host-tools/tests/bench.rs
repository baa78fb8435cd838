//! The bench's parts that need no VM: the timeline parser on recorded serial
//! consoles (`ci/bench/fixtures/`), missing markers reported as missing (never
//! as zero), and `results.json` having every field — also when boots failed.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use host_tools::bench::boot::{Boot, Setup};
use host_tools::bench::fixtures::{Packed, Variant};
use host_tools::bench::machine::Machine;
use host_tools::bench::media::{DataDisk, Fill, Root};
use host_tools::bench::sizes::{Budget, Size};
use host_tools::bench::timeline::{Marker, Timeline};
use host_tools::bench::{self, FixtureSizes, Options, Outputs, Results, ScenarioRun, report};
use host_tools::paths;
use host_tools::vm::{Accel, Outcome};
use k1os_contract::contract::phase;

fn fixture_path(name: &str) -> PathBuf {
    paths::repo_root().join("ci/bench/fixtures").join(name)
}

fn fixture(name: &str) -> String {
    let path = fixture_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn timeline(name: &str) -> Timeline {
    Timeline::parse(&fixture(name))
}

#[test]
fn init_nostd_persistent_boot() {
    let t = timeline("init-nostd-persist.log");
    assert_eq!(t.kernel_start, Some(0));
    assert_eq!(t.run_init, Some(2_650_380));
    let phases: Vec<(&str, u64, Option<u64>)> = t
        .phases
        .iter()
        .map(|p| (p.name, p.at_us, p.own_us))
        .collect();
    assert_eq!(
        phases,
        vec![
            (phase::EARLY, 2_751_671, Some(19_445)),
            (phase::MEDIA, 2_824_913, Some(95_979)),
            (phase::IMAGE, 2_843_796, Some(115_185)),
            (phase::DATA, 2_881_588, Some(152_948)),
            (phase::OVERLAY, 2_938_281, Some(209_637)),
            (phase::SWITCH_ROOT, 2_941_416, Some(212_856)),
        ]
    );
    assert_eq!(t.exec, Some(2_946_113));
    assert_eq!(t.stage2_ready, Some(3_216_572));
    assert_eq!(t.stage1_us(), Some(2_946_113 - 2_650_380));
    assert_eq!(t.to_ready_us(), Some(3_216_572));
    assert!(t.missing(&Marker::expected(true)).is_empty());
    assert_eq!(t.fatal, None);
}

#[test]
fn init_nostd_ram_boot_has_every_ram_marker() {
    let t = timeline("init-nostd-ram.log");
    assert!(t.missing(&Marker::expected(false)).is_empty(), "{t:?}");
    // RAM mode has no `data` phase: asked for persistent markers, it is missing.
    assert_eq!(
        t.missing(&Marker::expected(true)),
        vec![Marker::Phase(phase::DATA)]
    );
    assert!(t.stage1_us().unwrap() > 0);
}

#[test]
fn reference_lines_count_once_with_their_printk_time() {
    let log = fixture("reference-persist.log");
    // The script echoes each line itself, and the kernel prints the
    // /dev/kmsg copy: two copies, one with a timestamp.
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("k1os-init: exec /sbin/init"))
            .count(),
        2
    );
    let t = Timeline::parse(&log);
    assert!(t.missing(&Marker::expected(true)).is_empty(), "{t:?}");
    assert_eq!(t.run_init, Some(1_764_665));
    assert_eq!(t.at(Marker::Phase(phase::EARLY)), Some(1_993_701));
    assert_eq!(t.exec, Some(2_380_694));
    assert_eq!(t.stage2_ready, Some(2_722_685));
    // The reference logs phases without stage 1's own clock.
    assert!(t.phases.iter().all(|p| p.own_us.is_none()));
}

#[test]
fn floor_boot() {
    let t = timeline("floor-ram.log");
    assert!(t.missing(&Marker::expected(false)).is_empty(), "{t:?}");
    assert!(t.phases.iter().all(|p| p.own_us.is_some()));
}

#[test]
fn fatal_boot_reports_missing_markers_not_zero() {
    let t = timeline("init-nostd-persist-no-data-fatal.log");
    assert!(
        t.fatal
            .as_deref()
            .unwrap()
            .contains("find the data partition")
    );
    assert_eq!(t.run_init, Some(1_224_692));
    assert_eq!(t.at(Marker::Phase(phase::IMAGE)), Some(1_364_518));
    assert_eq!(t.exec, None);
    assert_eq!(t.stage2_ready, None);
    assert_eq!(t.stage1_us(), None);
    assert_eq!(t.to_ready_us(), None);
    assert_eq!(
        t.missing(&Marker::expected(true)),
        [phase::DATA, phase::OVERLAY, phase::SWITCH_ROOT]
            .map(Marker::Phase)
            .into_iter()
            .chain([Marker::Exec, Marker::Stage2Ready])
            .collect::<Vec<_>>()
    );
}

#[test]
fn cut_log_reports_missing_markers() {
    let t = timeline("init-nostd-ram-cut-after-image.log");
    assert!(t.at(Marker::Phase(phase::IMAGE)).is_some());
    let missing: Vec<String> = t
        .missing(&Marker::expected(false))
        .iter()
        .map(|m| m.name())
        .collect();
    assert_eq!(
        missing,
        [
            "phase.ram",
            "phase.overlay",
            "phase.switch_root",
            "exec",
            "stage2_ready"
        ]
    );
}

// ---------------------------------------------------------------------------
// results.json

fn boot(name: &str) -> Boot {
    let t = timeline(name);
    let outcome = if t.stage2_ready.is_some() {
        Outcome::Stopped
    } else {
        Outcome::Exited(Some(0))
    };
    Boot {
        log_path: fixture_path(name),
        timeline: t,
        outcome,
        wall: Duration::from_secs(5),
        accel: Accel::Tcg,
    }
}

fn packed(init: u64, compressed: u64, raw: u64) -> Packed {
    Packed {
        image: PathBuf::from("/x.img"),
        compressed_bytes: compressed,
        raw_bytes: raw,
        init_bytes: init,
    }
}

/// A run made of the recorded logs: every variant boots `ram_log` in RAM mode
/// and `persist_log` in the persistent scenarios.
fn results(ram_log: &str, persist_log: &str) -> Results {
    let disk = |fill, used_percent| DataDisk {
        path: PathBuf::from("/data.img"),
        size_mib: 1024,
        fill,
        used_percent,
    };
    let (empty, full) = (disk(Fill::Empty, 4.9), disk(Fill::AlmostFull, 95.0));
    let runs = bench::scenarios(2, 1, &empty, &full)
        .into_iter()
        .map(|scenario| {
            let log = if scenario.setup.persistent() {
                persist_log
            } else {
                ram_log
            };
            let boots = Variant::ALL
                .iter()
                .map(|v| (*v, (0..scenario.boots).map(|_| boot(log)).collect()))
                .collect();
            ScenarioRun { scenario, boots }
        })
        .collect();
    let mut per_variant = BTreeMap::new();
    per_variant.insert(Variant::Nostd, packed(41_536, 20_000, 42_500));
    per_variant.insert(Variant::Verity, packed(41_536, 20_300, 43_000));
    per_variant.insert(Variant::Reference, packed(6_900, 1_032_728, 2_000_000));
    per_variant.insert(Variant::Floor, packed(5_960, 3_500, 6_900));
    let none = |p: &str| Size {
        path: PathBuf::from(p),
        bytes: None,
    };
    Results {
        options: Options {
            boots: 2,
            growth_boots: 1,
            quick: true,
            root: Root::Bench,
            build: false,
            host_build: false,
            exe: PathBuf::from("host-tools"),
            out: PathBuf::from("/out"),
            command: "host-tools bench --quick".into(),
        },
        machine: Machine {
            cpu_model: "Intel(R) Xeon(R) Processor".into(),
            cores: 2,
            memory_mib: 24_000,
            host_kernel: "6.1".into(),
            qemu_version: "QEMU emulator version 7.2".into(),
            accelerator: Accel::Tcg,
            load_start: "1.0 1.0 1.0".into(),
            load_end: "2.0 2.0 2.0".into(),
        },
        started: SystemTime::now(),
        duration: Duration::from_secs(100),
        kernel_profile: "qemu".into(),
        fixtures: FixtureSizes {
            per_variant,
            floor_persist_init: 5_816,
            root_image: Size::known(Path::new("/root.squashfs"), 978_944),
        },
        outputs: Outputs {
            init: Size::known(Path::new("build/init"), 41_536),
            initramfs_compressed: Size::known(Path::new("build/initramfs.img"), 20_000),
            initramfs_raw: Size::known(Path::new("build/initramfs.img"), 42_500),
            kernel: Size::known(Path::new("build/kernel/bzImage"), 2_302_976),
            system_squashfs: none("build/system.squashfs"),
            iso: none("build/k1os.iso"),
        },
        budget: Budget {
            init: Size::known(Path::new("build/init"), 41_536),
            initramfs_gzip: Size::known(Path::new("build/initramfs.img"), 20_000),
            recompressed_from: None,
        },
        data_empty: empty,
        data_full: full,
        runs,
        host_build: Err("skipped (--no-host-build)".into()),
    }
}

#[test]
fn results_json_has_every_field() {
    let r = results("init-nostd-ram.log", "init-nostd-persist.log");
    let json = report::json(&r);
    assert_eq!(report::missing_fields(&json), Vec::<String>::new());
    assert!(report::problems(&r).is_empty());
    let stage1 = &json["boot"]["persist"]["variants"]["init-nostd"]["summary_ms"]["stage1"];
    assert_eq!(stage1["median_ms"], 295.733);
    assert_eq!(stage1["n"], 2);
    // Same logs for every variant: every time ratio is 1.
    assert_eq!(json["ratios"]["persist"]["vs_floor"]["stage1"], 1.0);
    let paired = &json["ratios"]["persist"]["vs_floor"]["stage1_paired_diff_ms"];
    assert_eq!(
        (paired["median_ms"].as_f64(), paired["n"].as_u64()),
        (Some(0.0), Some(2))
    );
    // dm-verity's cost: verified − unverified, round by round.
    let verity = &json["ratios"]["persist"]["verity"];
    assert_eq!(verity["stage1"], 1.0);
    assert_eq!(
        verity["stage1_paired_diff_ms"]["median_ms"].as_f64(),
        Some(0.0)
    );
    assert_eq!(
        json["ratios"]["ram"]["vs_reference"]["initramfs_compressed"],
        0.019
    );
    assert_eq!(json["sizes"]["iso"]["status"], "not built");
    assert!(json["sizes"]["iso"]["bytes"].is_null());
    assert_eq!(json["budget"]["ok"], false);
    assert_eq!(json["growth"]["data"]["almost_full"]["used_percent"], 95.0);
    // And the report renders it all.
    let md = report::markdown(&r);
    for part in [
        "## Sizes",
        "OVER by",
        "| 32 |",
        "almost full",
        "not built",
        "0.02",
        "dm-verity's cost to stage 1 (init-nostd-verity − init-nostd, round by round): +0.0 ms",
    ] {
        assert!(md.contains(part), "{part:?} not in the report:\n{md}");
    }
}

#[test]
fn failed_boots_keep_every_field_with_markers_null() {
    let r = results(
        "init-nostd-ram-cut-after-image.log",
        "init-nostd-persist-no-data-fatal.log",
    );
    let json = report::json(&r);
    assert_eq!(report::missing_fields(&json), Vec::<String>::new());
    let v = &json["boot"]["persist"]["variants"]["init-nostd"];
    let first = &v["boots"][0];
    assert!(first["markers_us"]["exec"].is_null(), "{first}");
    assert!(first["markers_us"]["stage2_ready"].is_null());
    assert_eq!(first["markers_us"]["run_init"], 1_224_692);
    let missing: Vec<&str> = first["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(
        missing.contains(&"exec") && missing.contains(&"stage2_ready"),
        "{missing:?}"
    );
    assert!(first["fatal"].as_str().unwrap().contains("FATAL"));
    // No boot has a stage-1 time: the summary is empty, not zero.
    assert!(v["summary_ms"]["stage1"]["median_ms"].is_null());
    assert_eq!(v["summary_ms"]["stage1"]["n"], 0);
    assert_eq!(v["failed_boots"], 2);
    assert!(json["ratios"]["persist"]["vs_reference"]["stage1"].is_null());
    let paired = &json["ratios"]["persist"]["vs_floor"]["stage1_paired_diff_ms"];
    assert!(paired["median_ms"].is_null() && paired["n"] == 0);
    let problems = report::problems(&r);
    assert_eq!(problems.len(), Variant::ALL.len() * (2 + 2 + 3 + 1));
    assert!(problems[0].contains("missing"), "{}", problems[0]);
    let verity = &json["ratios"]["persist"]["verity"];
    assert!(verity["stage1"].is_null() && verity["stage1_paired_diff_ms"]["n"] == 0);
    assert!(
        report::markdown(&r).contains(
            "| **stage 1** (`Run /init` → exec) | missing | missing | missing | missing |"
        )
    );
}

#[test]
fn scenarios_cover_the_issue() {
    let disk = DataDisk {
        path: "/d".into(),
        size_mib: 1024,
        fill: Fill::Empty,
        used_percent: 5.0,
    };
    let s = bench::scenarios(5, 3, &disk, &disk);
    let ids: Vec<&str> = s.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ram",
            "persist",
            "extra_1",
            "extra_8",
            "extra_32",
            "data_full"
        ]
    );
    assert_eq!(
        s[0].setup,
        Setup {
            data: None,
            extra_devices: 0
        }
    );
    assert_eq!(s[4].setup.extra_devices, 32);
    assert!(s[0].boots >= 5 && s[1].boots >= 5);
}
