//! Signs of life for the kernel's `make bzImage` (6–20 minutes): while the
//! command runs (through `run::Cmd::run_logged`, into a log file), a thread
//! reads the log as it grows and reports, every few seconds, how many objects
//! Kbuild has made so far (its `  CC `, `  AS `, `  AR ` and `  LD ` lines).
//! Plain lines, no terminal escapes: they read the same in a pipe or a CI log.
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often a progress line is printed during the kernel build.
pub const EVERY: Duration = Duration::from_secs(15);

/// One Kbuild line that made an object: `  CC      init/main.o`,
/// `  AR      init/built-in.a`, `  LD      vmlinux.o`, `  AS      …`.
/// (`  HOSTCC`, `  LDS`, `  GEN` and the like are not counted.)
pub fn is_object_line(line: &[u8]) -> bool {
    [b"  CC ", b"  AS ", b"  AR ", b"  LD "]
        .iter()
        .any(|p| line.starts_with(*p))
}

/// Counts object lines in a file that grows, reading only what was appended
/// since the last call.
#[derive(Debug, Default)]
pub struct Counter {
    offset: u64,
    /// The end of the file when it did not end with a newline yet.
    partial: Vec<u8>,
    objects: u64,
}

impl Counter {
    /// Reads what was appended to `log` (nothing when it does not exist yet)
    /// and returns the count so far.
    pub fn update(&mut self, log: &Path) -> u64 {
        let Ok(mut file) = File::open(log) else {
            return self.objects;
        };
        let mut new = Vec::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err() || file.read_to_end(&mut new).is_err() {
            return self.objects;
        }
        self.offset += new.len() as u64;
        self.partial.extend_from_slice(&new);
        let complete = match self.partial.iter().rposition(|&b| b == b'\n') {
            Some(end) => end + 1,
            None => return self.objects,
        };
        let lines = &self.partial[..complete];
        self.objects += lines
            .split(|&b| b == b'\n')
            .filter(|l| is_object_line(l))
            .count() as u64;
        self.partial.drain(..complete);
        self.objects
    }
}

/// The object lines of a whole (finished) log: what a previous build made,
/// for an estimate of how far this one is.
pub fn count_objects(log: &Path) -> Option<u64> {
    let mut counter = Counter::default();
    let n = counter.update(log);
    log.exists().then_some(n)
}

/// Where a build is, for one progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub objects: u64,
    pub elapsed: Duration,
}

/// A thread watching a log file; stops when dropped (so an error returned
/// with `?` stops it too).
pub struct Watch {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Reads `log` about once a second and calls `report` every `every`
    /// (the first time `every` after the start).
    pub fn start(
        log: PathBuf,
        every: Duration,
        mut report: impl FnMut(Snapshot) + Send + 'static,
    ) -> Watch {
        let (stop, stopped) = mpsc::channel::<()>();
        let poll = every.min(Duration::from_secs(1));
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            let mut counter = Counter::default();
            let mut next = every;
            loop {
                match stopped.recv_timeout(poll) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                }
                let objects = counter.update(&log);
                let elapsed = start.elapsed();
                if elapsed >= next {
                    report(Snapshot { objects, elapsed });
                    while next <= elapsed {
                        next += every;
                    }
                }
            }
        });
        Watch {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `12m 05s`, `45s`.
pub fn format_elapsed(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    match secs {
        0..60 => format!("{secs}s"),
        _ => format!("{}m {:02}s", secs / 60, secs % 60),
    }
}

/// `1234 objects compiled, 3m 15s` (`, about 58% of the last build's 2131`
/// when a previous build's count is known).
pub fn line(what: &str, snapshot: Snapshot, expected: Option<u64>) -> String {
    let mut s = format!(
        "{what}: {} objects compiled, {}",
        snapshot.objects,
        format_elapsed(snapshot.elapsed)
    );
    if let Some(total) = expected.filter(|&t| t > 0) {
        let percent = (snapshot.objects * 100 / total).min(99);
        s += &format!(", about {percent}% of the last build's {total}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    const LOG: &str = "  SYNC    include/config/auto.conf\n  HOSTCC  scripts/basic/fixdep\n  \
                       CC      init/main.o\n  AS      arch/x86/entry/entry_64.o\n  AR      \
                       init/built-in.a\n  LDS     arch/x86/kernel/vmlinux.lds\n  LD      \
                       vmlinux.o\n  GEN     Makefile\n";

    #[test]
    fn kbuild_object_lines_are_counted() {
        let n = LOG.lines().filter(|l| is_object_line(l.as_bytes())).count();
        assert_eq!(n, 4, "CC, AS, AR and LD; not HOSTCC, LDS, SYNC or GEN");
    }

    #[test]
    fn the_counter_reads_only_what_was_appended_and_waits_for_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let mut counter = Counter::default();
        assert_eq!(counter.update(&log), 0, "no log yet");
        let mut file = File::create(&log).unwrap();
        file.write_all(b"  CC      a.o\n  CC    ").unwrap();
        assert_eq!(counter.update(&log), 1, "the unfinished line waits");
        file.write_all(b"  b.o\n  LD      vmlinux.o\n").unwrap();
        assert_eq!(counter.update(&log), 3);
        assert_eq!(counter.update(&log), 3, "nothing new");
        assert_eq!(count_objects(&log), Some(3));
        assert_eq!(count_objects(&dir.path().join("none.log")), None);
    }

    #[test]
    fn the_watch_reports_the_count_as_the_log_grows_and_stops_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("build.log");
        let seen: Arc<Mutex<Vec<Snapshot>>> = Arc::default();
        let sink = seen.clone();
        let watch = Watch::start(log.clone(), Duration::from_millis(100), move |s| {
            sink.lock().unwrap().push(s)
        });
        std::fs::write(&log, LOG).unwrap();
        std::thread::sleep(Duration::from_millis(450));
        drop(watch);
        let got = seen.lock().unwrap().clone();
        assert!(got.len() >= 2, "a report every 100 ms: {got:?}");
        assert_eq!(got.last().unwrap().objects, 4);
        assert!(got.windows(2).all(|w| w[0].elapsed < w[1].elapsed));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            got.len(),
            seen.lock().unwrap().len(),
            "no reports after the drop"
        );
    }

    #[test]
    fn progress_lines() {
        let s = Snapshot {
            objects: 1234,
            elapsed: Duration::from_secs(195),
        };
        assert_eq!(line("make", s, None), "make: 1234 objects compiled, 3m 15s");
        assert_eq!(
            line("make", s, Some(2000)),
            "make: 1234 objects compiled, 3m 15s, about 61% of the last build's 2000"
        );
        let more = Snapshot { objects: 2500, ..s };
        assert!(line("make", more, Some(2000)).contains("about 99%"));
        assert_eq!(format_elapsed(Duration::from_secs(9)), "9s");
    }
}
