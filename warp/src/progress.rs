//! The download progress line on stderr: nothing for downloads that end
//! within a second, then bytes, percent and rate — redrawn in place (`\r`)
//! a few times a second when stderr is a terminal, and one final line
//! otherwise (a log gets one line per slow download, not hundreds).
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Quiet period before anything is shown.
const DELAY: Duration = Duration::from_secs(1);
/// Time between two redraws on a terminal.
const EVERY: Duration = Duration::from_millis(250);

pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    start: Instant,
    last_draw: Option<Instant>,
    enabled: bool,
    tty: bool,
}

impl Progress {
    /// `label` names what is downloaded (`hello 1.0`); `total` is its
    /// expected size. `quiet` (`-q`) shows nothing.
    pub fn new(label: String, total: u64, quiet: bool) -> Progress {
        Progress {
            label,
            total,
            done: 0,
            start: Instant::now(),
            last_draw: None,
            enabled: !quiet,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if !self.enabled || !self.tty {
            return;
        }
        let now = Instant::now();
        if now.duration_since(self.start) < DELAY {
            return;
        }
        if self
            .last_draw
            .is_some_and(|t| now.duration_since(t) < EVERY)
        {
            return;
        }
        self.last_draw = Some(now);
        let line = self.line(now);
        let mut err = std::io::stderr().lock();
        // `\x1b[K` clears what a longer previous line left behind.
        let _ = write!(err, "\r{line}\x1b[K");
        let _ = err.flush();
    }

    /// Ends the line (terminal), or prints the one summary line (not a
    /// terminal) when the download took more than a second.
    pub fn finish(self) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let mut err = std::io::stderr().lock();
        if self.last_draw.is_some() {
            let _ = writeln!(err, "\r{}\x1b[K", self.line(now));
        } else if !self.tty && now.duration_since(self.start) >= DELAY {
            let _ = writeln!(err, "{}", self.line(now));
        }
    }

    fn line(&self, now: Instant) -> String {
        let secs = now.duration_since(self.start).as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs;
        let percent = (self.done * 100).checked_div(self.total).unwrap_or(100);
        format!(
            "{}: {} of {} ({percent}%), {}/s",
            self.label,
            human_size(self.done),
            human_size(self.total),
            human_size(rate as u64)
        )
    }
}

/// `512 B`, `12 KiB`, `3.4 MiB`, `1.2 GiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 && unit > 0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(12 * 1024 + 100), "12 KiB");
        assert_eq!(human_size(3_565_158), "3.4 MiB");
        assert_eq!(human_size(50 << 20), "50 MiB");
    }
}
