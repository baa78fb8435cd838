//! All of host-tools' output goes through here: brief by default, `--verbose`
//! adds the command lines of external programs.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// How many [`Step`]s are open: nested steps and the lines printed inside a
/// step are indented by four spaces per level. Global rather than per thread,
/// so a helper thread's lines (the kernel build's progress) are indented
/// under the step they belong to.
static DEPTH: Nesting = Nesting(AtomicUsize::new(0));

/// An open-step counter.
struct Nesting(AtomicUsize);

impl Nesting {
    fn enter(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    fn leave(&self) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1));
    }

    /// Four spaces per open step.
    fn indent(&self) -> String {
        " ".repeat(4 * self.0.load(Ordering::Relaxed))
    }
}

fn indent() -> String {
    DEPTH.indent()
}

/// A progress line: `==> what` (indented inside an open [`Step`]).
pub fn step(what: &str) {
    eprintln!("{}==> {what}", indent());
}

/// A note for the user, not a step: `note: what`.
pub fn note(what: &str) {
    eprintln!("{}note: {what}", indent());
}

/// Something that looks wrong but does not stop the command: `warning: what`.
pub fn warning(what: &str) {
    eprintln!("{}warning: {what}", indent());
}

/// A line of a step's own output (progress, a result), under its `==>` line:
/// `    what`.
pub fn line(what: &str) {
    eprintln!("{}    {what}", indent());
}

/// A detail line, shown only with `--verbose`.
pub fn detail(what: &str) {
    if verbose() {
        eprintln!("{}    {what}", indent());
    }
}

/// A named step: `==> name` when it starts, and when it ends one indented line
/// with its outcome and elapsed time (`    23,232 bytes, 16.7 s`). Steps
/// started while it is open are nested (indented one more level).
pub struct Step {
    start: Instant,
}

impl Step {
    pub fn start(name: impl Into<String>) -> Step {
        step(&name.into());
        DEPTH.enter();
        Step {
            start: Instant::now(),
        }
    }

    /// Ends the step: `    {outcome}, {seconds} s` under its name.
    pub fn done(self, outcome: &str) {
        let secs = format!("{:.1} s", self.start.elapsed().as_secs_f64());
        drop(self);
        eprintln!("{}", finish_line(&indent(), outcome, &secs));
    }
}

impl Drop for Step {
    /// A step that fails (its error returned with `?`) ends here too, so the
    /// lines after it are not indented under it.
    fn drop(&mut self) {
        DEPTH.leave();
    }
}

/// `{indent}    {outcome}, {time}`, or only the time for an empty outcome.
fn finish_line(indent: &str, outcome: &str, time: &str) -> String {
    if outcome.is_empty() {
        format!("{indent}    {time}")
    } else {
        format!("{indent}    {outcome}, {time}")
    }
}

/// Prints an error with its chain of causes, cargo style.
pub fn error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("\nCaused by:\n    {cause}");
    }
}

/// `1.2 MiB`-style sizes for reports.
pub fn human_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / KIB / KIB)
    } else {
        format!("{:.2} GiB", b / KIB / KIB / KIB)
    }
}

/// `23,232`: digits grouped by thousands, for sizes people compare.
pub fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_thousands() {
        for (n, s) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1,000"),
            (23_232, "23,232"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(group_digits(n), s);
        }
    }

    #[test]
    fn nesting_indents_by_level_and_never_goes_below_zero() {
        let n = Nesting(AtomicUsize::new(0));
        n.enter();
        n.enter();
        assert_eq!(n.indent(), " ".repeat(8));
        n.leave();
        n.leave();
        n.leave();
        assert_eq!(n.indent(), "");
        n.enter();
        assert_eq!(n.indent(), "    ");
    }

    #[test]
    fn the_finish_line_does_not_repeat_the_name() {
        assert_eq!(
            finish_line("", "23,232 bytes", "16.7 s"),
            "    23,232 bytes, 16.7 s"
        );
        assert_eq!(finish_line("    ", "", "0.1 s"), "        0.1 s");
    }
}
