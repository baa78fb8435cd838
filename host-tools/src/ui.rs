//! All of host-tools' output goes through here: brief by default, `--verbose`
//! adds the command lines of external programs.
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// A progress line: `==> what`.
pub fn step(what: &str) {
    eprintln!("==> {what}");
}

/// A detail line, shown only with `--verbose`.
pub fn detail(what: &str) {
    if verbose() {
        eprintln!("    {what}");
    }
}

/// A named step with its elapsed time printed when it ends.
pub struct Step {
    name: String,
    start: Instant,
}

impl Step {
    pub fn start(name: impl Into<String>) -> Step {
        let name = name.into();
        step(&name);
        Step {
            name,
            start: Instant::now(),
        }
    }

    pub fn done(self, outcome: &str) {
        eprintln!(
            "    {} {} ({:.1} s)",
            self.name,
            outcome,
            self.start.elapsed().as_secs_f64()
        );
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
