//! Crash points for the tests: with the `crash-points` feature (never in
//! the shipped binary), `point("after-stage")` kills the process with
//! SIGKILL when `WARP_CRASH_AT=after-stage`, so a test can interrupt a
//! transaction exactly there. Without the feature it compiles to nothing.

#[cfg(feature = "crash-points")]
pub fn point(name: &str) {
    if std::env::var("WARP_CRASH_AT").is_ok_and(|v| v == name) {
        eprintln!("warp: crash point {name}");
        // SIGKILL, not a panic or exit: what a power cut looks like to the
        // files (no destructors, no flushing of buffered writers).
        let _ =
            rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn point(_name: &str) {}
