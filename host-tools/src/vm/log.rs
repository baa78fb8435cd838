//! How a run ended ([`Outcome`]), the console of a finished run
//! ([`BootLog`], with marker helpers for assertions), and the one format of
//! a VM failure message ([`failure`]).
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Accel;

/// How many lines of the console a failure message shows.
pub const FAILURE_TAIL_LINES: usize = 40;

/// The kernel's line when it powers the machine off.
pub const KERNEL_POWER_DOWN: &str = "reboot: Power down";
/// The kernel's line when it restarts the machine.
pub const KERNEL_RESTART: &str = "reboot: Restarting system";
/// The start of the kernel's panic line.
pub const KERNEL_PANIC: &str = "Kernel panic";

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// QEMU exited by itself (guest power-off, reboot, or a panic with
    /// `panic=-1`) with this status (`None`: killed by a signal).
    Exited(Option<i32>),
    /// What the run waited for appeared (the bench's ready line); QEMU was
    /// then stopped.
    Stopped,
    /// The timeout passed; QEMU was killed.
    TimedOut,
}

impl Outcome {
    /// `QEMU exited (Some(0)) after 4.2 s`-style, for messages.
    pub fn describe(self, elapsed: Duration, timeout: Option<Duration>) -> String {
        let secs = elapsed.as_secs_f64();
        match (self, timeout) {
            (Outcome::Exited(code), _) => format!("QEMU exited ({code:?}) after {secs:.1} s"),
            (Outcome::Stopped, _) => format!("QEMU was stopped after {secs:.1} s"),
            (Outcome::TimedOut, Some(t)) => {
                format!("QEMU was killed at the {:.0} s timeout", t.as_secs_f64())
            }
            (Outcome::TimedOut, None) => format!("QEMU was killed after {secs:.1} s"),
        }
    }
}

/// A VM failure message, the same for every run: what went wrong (after the
/// VM's name), how and when the run ended, the accelerator, where the full
/// log is, the console's last [`FAILURE_TAIL_LINES`] lines and QEMU's stderr.
pub(crate) fn failure(
    name: &str,
    what: &str,
    ended: &str,
    accel: Accel,
    log_path: &Path,
    console: &str,
    qemu_stderr: &str,
) -> String {
    let lines: Vec<&str> = console.lines().collect();
    let tail = lines[lines.len().saturating_sub(FAILURE_TAIL_LINES)..].join("\n");
    let stderr = if qemu_stderr.trim().is_empty() {
        String::new()
    } else {
        format!("\n--- QEMU stderr ---\n{}", qemu_stderr.trim_end())
    };
    format!(
        "{name}: {what}\n{ended} ({}); full serial log: {}\n\
         --- last {FAILURE_TAIL_LINES} lines of the console ---\n{tail}{stderr}",
        accel.name(),
        log_path.display()
    )
}

/// The console of a finished run, and how it ended.
#[derive(Clone, Debug)]
pub struct BootLog {
    /// The VM's name in messages (`boot_ram_cd`).
    pub name: String,
    /// The serial console, cleaned (no `\r`, no terminal escapes).
    pub text: String,
    pub outcome: Outcome,
    /// From QEMU's start to its exit (or kill).
    pub elapsed: Duration,
    pub timeout: Duration,
    /// The raw serial output (kept for inspection).
    pub log_path: PathBuf,
    /// QEMU's own stderr (warnings, errors).
    pub qemu_stderr: String,
    pub accel: Accel,
}

impl BootLog {
    /// QEMU exited by itself before the timeout.
    pub fn exited(&self) -> bool {
        matches!(self.outcome, Outcome::Exited(_))
    }

    /// The guest powered itself off (the kernel said so and QEMU exited).
    pub fn powered_off(&self) -> bool {
        self.exited() && self.contains(KERNEL_POWER_DOWN)
    }

    pub fn contains(&self, marker: &str) -> bool {
        self.text.contains(marker)
    }

    /// The first line that contains `marker`.
    pub fn line(&self, marker: &str) -> Option<&str> {
        self.text.lines().find(|l| l.contains(marker))
    }

    /// Every line that contains `marker`.
    pub fn lines_with<'a>(&'a self, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.text.lines().filter(move |l| l.contains(marker))
    }

    /// The index of the first line that contains `marker`.
    pub fn line_index(&self, marker: &str) -> Option<usize> {
        self.text.lines().position(|l| l.contains(marker))
    }

    /// The text after `marker` on its first line, trimmed.
    pub fn value_after(&self, marker: &str) -> Option<&str> {
        let line = self.line(marker)?;
        let at = line.find(marker)? + marker.len();
        Some(line[at..].trim())
    }

    /// A failure message ([`failure`]) about this run.
    pub fn failure(&self, what: &str) -> String {
        failure(
            &self.name,
            what,
            &self.outcome.describe(self.elapsed, Some(self.timeout)),
            self.accel,
            &self.log_path,
            &self.text,
            &self.qemu_stderr,
        )
    }

    /// Panics (with the log's tail) unless a line contains `marker`; returns it.
    #[track_caller]
    pub fn assert_line(&self, marker: &str) -> &str {
        self.assert_line_with_all(&[marker])
    }

    /// Panics (with the log's tail) unless a line contains all of `parts`;
    /// returns the first such line.
    #[track_caller]
    pub fn assert_line_with_all(&self, parts: &[&str]) -> &str {
        match self
            .text
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            Some(line) => line,
            None => panic!(
                "{}",
                self.failure(&format!(
                    "no line containing all of {parts:?} in the console"
                ))
            ),
        }
    }

    /// Panics (with the log's tail) if the log contains `marker`.
    #[track_caller]
    pub fn assert_absent(&self, marker: &str) {
        if let Some(line) = self.line(marker) {
            panic!(
                "{}",
                self.failure(&format!("the console shows {marker:?}: {line:?}"))
            );
        }
    }

    /// Panics unless `first` appears on a line before the first line with `second`.
    #[track_caller]
    pub fn assert_order(&self, first: &str, second: &str) {
        let a = self.line_index(first);
        let b = self.line_index(second);
        match (a, b) {
            (Some(a), Some(b)) if a < b => {}
            _ => panic!(
                "{}",
                self.failure(&format!(
                    "expected {first:?} (line {a:?}) before {second:?} (line {b:?})"
                ))
            ),
        }
    }

    /// Panics unless QEMU exited by itself before the timeout.
    #[track_caller]
    pub fn assert_exited(&self) {
        if !self.exited() {
            panic!("{}", self.failure("the guest did not end by itself"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(text: &str, outcome: Outcome) -> BootLog {
        BootLog {
            name: "t".into(),
            text: text.into(),
            outcome,
            elapsed: Duration::from_secs(1),
            timeout: Duration::from_secs(9),
            log_path: "/x.log".into(),
            qemu_stderr: String::new(),
            accel: Accel::Tcg,
        }
    }

    #[test]
    fn log_helpers() {
        let log = log(
            "a\nk1os-init: exec /sbin/init\nK1OS-TEST: stage 2 up\nreboot: Power down\n",
            Outcome::Exited(Some(0)),
        );
        assert_eq!(log.value_after("k1os-init: exec "), Some("/sbin/init"));
        log.assert_order("exec", "stage 2");
        assert_eq!(
            log.assert_line_with_all(&["K1OS", "up"]),
            "K1OS-TEST: stage 2 up"
        );
        assert!(log.powered_off());
        log.assert_absent(KERNEL_PANIC);
    }

    #[test]
    fn a_failure_names_the_run_the_accelerator_the_log_and_the_tail() {
        let text: String = (1..=50).map(|i| format!("line {i}\n")).collect();
        let mut l = log(&text, Outcome::TimedOut);
        l.qemu_stderr = "qemu: warning\n".into();
        let msg = l.failure("no prompt");
        assert!(msg.starts_with("t: no prompt\nQEMU was killed at the 9 s timeout (TCG); full serial log: /x.log\n--- last 40 lines"), "{msg}");
        assert!(
            msg.contains("line 11\n") && !msg.contains("line 10\n"),
            "{msg}"
        );
        assert!(
            msg.ends_with("line 50\n--- QEMU stderr ---\nqemu: warning"),
            "{msg}"
        );
    }
}
