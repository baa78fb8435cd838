//! QEMU running in the background: started, polled, killed at a timeout,
//! and the error when it exits before it should.
use anyhow::{Context, Result, anyhow};
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::args::{self, Serial};
use super::{Accel, FirmwareVars, Machine, Outcome, QEMU};
use crate::run::{self, Cmd};

/// How often waits look at QEMU.
const POLL: Duration = Duration::from_millis(20);

/// A VM whose QEMU runs in the background. Dropping it kills QEMU.
pub struct Running {
    child: run::Child,
    name: String,
    started: Instant,
    accel: Accel,
    log_path: PathBuf,
    ended: Option<Ended>,
    /// [`super::accel::vm_lock`], held while QEMU runs (`None`: the caller holds it).
    _lock: Option<MutexGuard<'static, ()>>,
    /// The Secure Boot firmware's variables, removed after QEMU is killed
    /// (fields drop after `drop` ran).
    _vars: Option<FirmwareVars>,
}

/// How and when QEMU ended, and what it said.
struct Ended {
    outcome: Outcome,
    after: Duration,
    output: run::Output,
}

impl Running {
    /// Starts QEMU for `machine` with the console on `serial`, after checking
    /// that its files exist and making `log_path`'s directory (a stale log
    /// there is removed, so it never passes for this run's).
    pub(super) fn spawn(
        machine: &Machine,
        name: &str,
        log_path: &Path,
        accel: Accel,
        lock: Option<MutexGuard<'static, ()>>,
        serial: &Serial,
    ) -> Result<Running> {
        machine.check_inputs()?;
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let _ = std::fs::remove_file(log_path);
        let vars = FirmwareVars::for_machine(machine)?;
        let cmd = Cmd::new(QEMU).args(args::qemu_args(
            machine,
            accel,
            serial,
            vars.as_ref().map(FirmwareVars::path),
        )?);
        let child = cmd.start_background()?;
        Ok(Running {
            child,
            name: name.to_string(),
            started: Instant::now(),
            accel,
            log_path: log_path.to_path_buf(),
            ended: None,
            _lock: lock,
            _vars: vars,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// Where the serial console is logged.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Since QEMU started (until it ended, once it has).
    pub fn elapsed(&self) -> Duration {
        match &self.ended {
            Some(ended) => ended.after,
            None => self.started.elapsed(),
        }
    }

    /// How it ended, if it has.
    pub fn outcome(&self) -> Option<Outcome> {
        self.ended.as_ref().map(|e| e.outcome)
    }

    /// QEMU's stderr (known once it has ended).
    pub fn stderr(&self) -> &str {
        self.ended.as_ref().map_or("", |e| &e.output.stderr)
    }

    /// How it ended, if it has; never blocks.
    pub fn poll(&mut self) -> Result<Option<Outcome>> {
        if self.ended.is_none()
            && let Some(out) = self.child.try_wait()?
        {
            self.end(Outcome::Exited(out.code), out);
        }
        Ok(self.outcome())
    }

    /// Waits until QEMU exits by itself, or kills it at `deadline`
    /// ([`Outcome::TimedOut`]).
    pub fn wait(&mut self, deadline: Instant) -> Result<Outcome> {
        loop {
            if let Some(outcome) = self.poll()? {
                return Ok(outcome);
            }
            if Instant::now() >= deadline {
                self.kill(Outcome::TimedOut)?;
                return Ok(Outcome::TimedOut);
            }
            std::thread::sleep(POLL);
        }
    }

    /// Kills QEMU if it still runs, recording `outcome` ([`Outcome::Stopped`]
    /// or [`Outcome::TimedOut`]) as how it ended.
    pub fn kill(&mut self, outcome: Outcome) -> Result<()> {
        if self.poll()?.is_none() {
            let out = self.child.kill()?;
            self.end(outcome, out);
        }
        Ok(())
    }

    /// Records how QEMU ended. Its stderr loses the notice QEMU prints while
    /// it waits for the console socket's connection (every run has it; it
    /// says nothing).
    fn end(&mut self, outcome: Outcome, mut output: run::Output) {
        output.stderr = output
            .stderr
            .lines()
            .filter(|l| !l.contains("info: QEMU waiting for connection on"))
            .map(|l| format!("{l}\n"))
            .collect();
        self.ended = Some(Ended {
            outcome,
            after: self.started.elapsed(),
            output,
        });
    }

    /// The error for QEMU that ended (or was killed) before `what`: its
    /// command line, exit status and the tail of its stderr.
    pub fn early_exit(&self, what: &str) -> anyhow::Error {
        let ended = match self.outcome() {
            Some(Outcome::Exited(code)) => format!("exited ({code:?})"),
            Some(_) => "was killed".to_string(),
            None => "is still running".to_string(),
        };
        anyhow!(
            "{}: `{}` {ended} before {what}{}",
            self.name,
            self.child.display(),
            self.ended
                .as_ref()
                .map_or(String::new(), |e| e.output.stderr_tail(run::TAIL_LINES))
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.kill(Outcome::Stopped);
    }
}
