//! A running VM without a serial port: a PC whose only console is its screen
//! and keyboard, both reached through QEMU's monitor.
use anyhow::Result;
use std::time::{Duration, Instant};

use super::args::Serial;
use super::{Machine, Monitor, Outcome, Purpose, Running, accel, test_log_path};

pub struct ScreenOnly {
    // Dropped after the monitor: its socket goes before QEMU is killed.
    monitor: Monitor,
    vm: Running,
}

impl Machine {
    /// Starts the VM with no serial port (`-serial none`); give it a
    /// [`super::Display::Screen`] to have something to look at. Takes the VM
    /// lock like [`Machine::start`].
    pub fn start_without_serial(&self, name: &str) -> Result<ScreenOnly> {
        let (lock, accel) = accel::lock_and_choose(self, Purpose::Automated)?;
        let monitor = Monitor::new();
        let vm = Running::spawn(
            self,
            name,
            &test_log_path(name),
            accel,
            Some(lock),
            &Serial::None {
                monitor: monitor.path(),
            },
        )?;
        Ok(ScreenOnly { monitor, vm })
    }
}

impl ScreenOnly {
    pub fn monitor(&mut self) -> &mut Monitor {
        &mut self.monitor
    }

    /// How it ended, if it has; never blocks.
    pub fn poll(&mut self) -> Result<Option<Outcome>> {
        self.vm.poll()
    }

    /// Waits until QEMU exits by itself, or kills it at `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Outcome> {
        self.vm.wait(Instant::now() + timeout)
    }

    /// Since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.vm.elapsed()
    }

    /// QEMU's stderr, once it has ended.
    pub fn stderr(&self) -> &str {
        self.vm.stderr()
    }
}
