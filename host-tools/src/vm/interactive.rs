//! A VM with its serial console on the terminal (`host-tools qemu`). A GRUB
//! menu entry other than the default is chosen with QEMU's `sendkey` (the
//! PS/2 keyboard, one of GRUB's two terminals) through a second monitor on
//! a socket, once the menu shows in the console's log.
use anyhow::{Context, Result};
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::args::{self, Serial};
use super::console::{Transcript, menu_position};
use super::{FirmwareVars, Machine, Purpose, QEMU, accel};
use crate::run::Cmd;

pub(super) fn run(machine: &Machine, log: &Path, entry: Option<&str>) -> Result<()> {
    // Down presses from the default entry, and the title drawn last.
    let (down, last) = match entry {
        Some(title) => menu_position(title)?,
        None => (0, ""),
    };
    machine.check_inputs()?;
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _ = std::fs::remove_file(log);
    let (_lock, accel) = accel::lock_and_choose(machine, Purpose::Interactive)?;
    let monitor = (down > 0)
        .then(|| std::env::temp_dir().join(format!("k1os-monitor-{}.sock", std::process::id())));
    let serial = Serial::Terminal {
        log,
        monitor: monitor.as_deref(),
    };
    // Lives until QEMU has ended (end of this function).
    let vars = FirmwareVars::for_machine(machine)?;
    let cmd = Cmd::new(QEMU).args(args::qemu_args(
        machine,
        accel,
        &serial,
        vars.as_ref().map(FirmwareVars::path),
    )?);
    let stop = Arc::new(AtomicBool::new(false));
    let chooser = monitor.clone().map(|monitor| {
        let stop = Arc::clone(&stop);
        let log = log.to_path_buf();
        std::thread::spawn(move || choose_with_sendkey(&log, &monitor, last, down, &stop))
    });
    let result = cmd.run_interactive();
    stop.store(true, Ordering::Relaxed);
    if let Some(chooser) = chooser {
        let _ = chooser.join();
    }
    if let Some(monitor) = monitor {
        let _ = std::fs::remove_file(monitor);
    }
    result
}

/// Waits for `last` (GRUB's last menu title) in `log`, then presses Down
/// `down` times and Enter through QEMU's monitor.
fn choose_with_sendkey(log: &Path, monitor: &Path, last: &str, down: usize, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let mut console = Transcript::default();
        console.push(&std::fs::read(log).unwrap_or_default());
        if console.take_through(last).is_some() {
            if let Ok(mut hmp) = UnixStream::connect(monitor) {
                let mut keys = "sendkey down\n".repeat(down);
                keys.push_str("sendkey ret\n");
                let _ = hmp.write_all(keys.as_bytes());
                // Let QEMU read the commands before the connection closes.
                std::thread::sleep(Duration::from_millis(500));
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
