//! The boot timeline of one serial console log: when each marker of the boot
//! contract appeared, by the kernel's printk timestamps. Pure: text in, times
//! out. A marker that is not in the log is `None` (reported as missing, never
//! as zero).
//!
//! Only lines that carry a printk timestamp (`[    2.662392] …`) count: the
//! kernel's own lines, and what stage 1 and stage 2 write to `/dev/kmsg`. A
//! program that also echoes its lines to the console without a timestamp (the
//! busybox reference does) is timed by its `/dev/kmsg` copy.
//!
//! The markers, in boot order (names as in `results.json`):
//!
//! | name | line |
//! |---|---|
//! | `kernel_start` | the kernel's banner, `Linux version …` (printk time 0) |
//! | `run_init` | [`contract::MARKER_KERNEL_RUN_INIT`] |
//! | `phase.<phase>` | `k1os-init: <phase> (+<µs> us): <detail>`, read by [`contract::phase::parse_line`] (the `(+<µs> us)` part may be absent) |
//! | `exec` | [`contract::MARKER_EXEC`] followed by the stage-2 path |
//! | `stage2_ready` | [`contract::MARKER_STAGE2_READY`] |
//!
//! Each marker's first timestamped occurrence counts.
use k1os_contract::contract::{self, phase};

/// The kernel's first line, printed at printk time 0.
pub const KERNEL_BANNER: &str = "Linux version ";

/// A marker of the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Marker {
    KernelStart,
    RunInit,
    /// A stage-1 phase, by its contract name (`phase::MEDIA`, …).
    Phase(&'static str),
    Exec,
    Stage2Ready,
}

impl Marker {
    /// The name used in `results.json` and the report.
    pub fn name(self) -> String {
        match self {
            Marker::KernelStart => "kernel_start".into(),
            Marker::RunInit => "run_init".into(),
            Marker::Phase(p) => format!("phase.{p}"),
            Marker::Exec => "exec".into(),
            Marker::Stage2Ready => "stage2_ready".into(),
        }
    }

    /// The markers a boot in RAM mode (`persistent == false`) or persistent
    /// mode must show, in boot order (`toram` is not expected).
    pub fn expected(persistent: bool) -> Vec<Marker> {
        let upper = if persistent { phase::DATA } else { phase::RAM };
        let mut v = vec![Marker::KernelStart, Marker::RunInit];
        v.extend(
            [
                phase::EARLY,
                phase::MEDIA,
                phase::IMAGE,
                upper,
                phase::OVERLAY,
                phase::SWITCH_ROOT,
            ]
            .map(Marker::Phase),
        );
        v.extend([Marker::Exec, Marker::Stage2Ready]);
        v
    }
}

/// One stage-1 phase line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseLine {
    /// Its name in [`phase::ALL`].
    pub name: &'static str,
    /// printk time, µs since the kernel started.
    pub at_us: u64,
    /// The `(+<µs> us)` stage 1 wrote: µs since stage 1 started, by its own clock.
    pub own_us: Option<u64>,
}

/// When each marker appeared in one boot, in µs of printk time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Timeline {
    pub kernel_start: Option<u64>,
    pub run_init: Option<u64>,
    /// Phase lines in the order they appeared (each phase once).
    pub phases: Vec<PhaseLine>,
    pub exec: Option<u64>,
    pub stage2_ready: Option<u64>,
    /// The text of stage 1's fatal line, if there is one.
    pub fatal: Option<String>,
}

impl Timeline {
    /// Reads the markers out of a console log.
    pub fn parse(log: &str) -> Timeline {
        let mut t = Timeline::default();
        for line in log.lines() {
            let Some((at, text)) = split_printk(line) else {
                continue;
            };
            if text.starts_with(KERNEL_BANNER) {
                t.kernel_start.get_or_insert(at);
            } else if text.starts_with(contract::MARKER_KERNEL_RUN_INIT) {
                t.run_init.get_or_insert(at);
            } else if text.starts_with(contract::MARKER_STAGE2_READY) {
                t.stage2_ready.get_or_insert(at);
            } else if text.starts_with(contract::MARKER_FATAL) {
                t.fatal.get_or_insert_with(|| text.to_string());
            } else if text.starts_with(contract::MARKER_EXEC) {
                t.exec.get_or_insert(at);
            } else if let Some(line) = phase::parse_line(text)
                && !t.phases.iter().any(|p| p.name == line.name)
            {
                t.phases.push(PhaseLine {
                    name: line.name,
                    at_us: at,
                    own_us: line.us,
                });
            }
        }
        t
    }

    /// The printk time of `marker`, if it is in the log.
    pub fn at(&self, marker: Marker) -> Option<u64> {
        match marker {
            Marker::KernelStart => self.kernel_start,
            Marker::RunInit => self.run_init,
            Marker::Phase(name) => self.phases.iter().find(|p| p.name == name).map(|p| p.at_us),
            Marker::Exec => self.exec,
            Marker::Stage2Ready => self.stage2_ready,
        }
    }

    /// The markers of `expected` that are not in the log.
    pub fn missing(&self, expected: &[Marker]) -> Vec<Marker> {
        expected
            .iter()
            .copied()
            .filter(|&m| self.at(m).is_none())
            .collect()
    }

    /// µs from `from` to `to`; `None` if either is missing (or out of order).
    pub fn span(&self, from: Marker, to: Marker) -> Option<u64> {
        self.at(to)?.checked_sub(self.at(from)?)
    }

    /// Stage 1's time: `Run /init` → `exec` of stage 2.
    pub fn stage1_us(&self) -> Option<u64> {
        self.span(Marker::RunInit, Marker::Exec)
    }

    /// Kernel start → `stage 2 ready`.
    pub fn to_ready_us(&self) -> Option<u64> {
        self.span(Marker::KernelStart, Marker::Stage2Ready)
    }
}

/// `[    2.662392] text` → (2662392 µs, `text`). An optional caller id
/// (`[    2.662392] [    T1] text`, `CONFIG_PRINTK_CALLER`) is skipped.
pub fn split_printk(line: &str) -> Option<(u64, &str)> {
    let rest = line.strip_prefix('[')?;
    let close = rest.find(']')?;
    let stamp = rest[..close].trim_start();
    let (secs, frac) = stamp.split_once('.')?;
    if secs.is_empty()
        || frac.is_empty()
        || frac.len() > 9
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: u64 = secs.parse().ok()?;
    // Right-pad the fraction to 6 digits (µs); longer fractions are cut.
    let mut frac_us: u64 = 0;
    for i in 0..6 {
        let d = frac.as_bytes().get(i).map_or(0, |b| u64::from(b - b'0'));
        frac_us = frac_us * 10 + d;
    }
    let at = secs.checked_mul(1_000_000)?.checked_add(frac_us)?;
    let mut text = rest[close + 1..]
        .strip_prefix(' ')
        .unwrap_or(&rest[close + 1..]);
    if let Some(caller) = text.strip_prefix('[')
        && let Some(end) = caller.find(']')
        && caller[..end]
            .trim_start()
            .strip_prefix(['T', 'C'])
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    {
        text = caller[end + 1..]
            .strip_prefix(' ')
            .unwrap_or(&caller[end + 1..]);
    }
    Some((at, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printk_stamps() {
        assert_eq!(
            split_printk("[    2.662392] Run /init as init process"),
            Some((2_662_392, "Run /init as init process"))
        );
        assert_eq!(
            split_printk("[    0.000000] Linux version 6.1"),
            Some((0, "Linux version 6.1"))
        );
        assert_eq!(split_printk("[12345.5] x"), Some((12_345_500_000, "x")));
        assert_eq!(
            split_printk("[    1.000001] [    T1] k1os: stage 2 ready"),
            Some((1_000_001, "k1os: stage 2 ready"))
        );
        assert_eq!(
            split_printk("[    1.000001] [not a caller] x"),
            Some((1_000_001, "[not a caller] x"))
        );
        for bad in [
            "k1os-init: exec /sbin/init",
            "[] x",
            "[ 1] x",
            "[a.b] x",
            "[1.] x",
            "[.5] x",
            "[1.5 x",
            "",
        ] {
            assert_eq!(split_printk(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn phase_lines_by_the_contract_parser() {
        let log = "[    2.600000] k1os-init: early (+100 us): /proc /sys /dev /run mounted\n\
                   [    2.700000] k1os-init: media: /dev/sr0\n\
                   [    2.800000] k1os-init: media (+9 us): a second media line does not count\n\
                   [    2.900000] k1os-init: mediax (+1 us): not a phase\n";
        let t = Timeline::parse(log);
        assert_eq!(
            t.phases,
            [
                PhaseLine {
                    name: phase::EARLY,
                    at_us: 2_600_000,
                    own_us: Some(100)
                },
                PhaseLine {
                    name: phase::MEDIA,
                    at_us: 2_700_000,
                    own_us: None
                },
            ]
        );
    }

    #[test]
    fn missing_markers_are_none_never_zero() {
        let log = "[    0.000000] Linux version 6.1\n[    2.500000] Run /init as init process\n\
                   [    2.600000] k1os-init: early (+100 us): ok\n";
        let t = Timeline::parse(log);
        assert_eq!(t.kernel_start, Some(0));
        assert_eq!(t.run_init, Some(2_500_000));
        assert_eq!(t.exec, None);
        assert_eq!(t.stage1_us(), None);
        let missing = t.missing(&Marker::expected(false));
        assert_eq!(missing.first(), Some(&Marker::Phase(phase::MEDIA)));
        assert!(missing.contains(&Marker::Exec) && missing.contains(&Marker::Stage2Ready));
    }

    #[test]
    fn untimestamped_copies_do_not_count() {
        let log = "k1os-init: exec /sbin/init\n[    3.000000] k1os-init: exec /sbin/init\nk1os: stage 2 ready\n";
        let t = Timeline::parse(log);
        assert_eq!(t.exec, Some(3_000_000));
        assert_eq!(t.stage2_ready, None);
    }
}
