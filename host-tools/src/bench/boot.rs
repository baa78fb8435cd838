//! One benchmark boot: the VM of a scenario, run until stage 2 says it is
//! ready (or powers off, fails, or times out), its serial log, and its
//! [`Timeline`].
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::time::Duration;

use k1os_contract::contract;

use super::timeline::Timeline;
use crate::vm::{Accel, Drive, Machine, Outcome};

/// The devices and mode of a boot; the same for every variant compared.
#[derive(Clone, Debug, PartialEq)]
pub struct Setup {
    /// `k1os.mode=persist` with `data` attached, or `k1os.mode=ram`.
    pub data: Option<PathBuf>,
    /// How many extra (empty) block devices, on a virtio-scsi controller.
    pub extra_devices: usize,
}

impl Setup {
    pub fn persistent(&self) -> bool {
        self.data.is_some()
    }
}

/// The VM of one boot: `kernel` + `initrd`, the ISO as a CD-ROM, the data
/// disk (if any) as the first virtio disk, a snapshot (every boot sees it as
/// it was made), `extra_devices` times `extra` as read-only SCSI disks.
pub fn vm(kernel: &Path, initrd: &Path, iso: &Path, extra: &Path, setup: &Setup) -> Machine {
    let mode = if setup.persistent() { "persist" } else { "ram" };
    let mut vm = Machine::kernel(kernel)
        .initrd(initrd)
        .append(&format!("k1os.mode={mode} k1os.onfail=poweroff"))
        .drive(Drive::cdrom(iso));
    if let Some(data) = &setup.data {
        vm = vm.drive(Drive::virtio(data).snapshot());
    }
    for _ in 0..setup.extra_devices {
        vm = vm.drive(Drive::scsi(extra).read_only());
    }
    vm
}

/// One boot's outcome.
#[derive(Clone, Debug)]
pub struct Boot {
    pub log_path: PathBuf,
    pub timeline: Timeline,
    /// [`Outcome::Stopped`]: stage 2 said it is ready.
    pub outcome: Outcome,
    /// Wall-clock time from QEMU's start to its end.
    pub wall: Duration,
    pub accel: Accel,
}

impl Boot {
    /// Stage 2 said it is ready.
    pub fn ready(&self) -> bool {
        self.outcome == Outcome::Stopped
    }

    /// How it ended, for the report: `ready`, `exited without ready`, `timed out`.
    pub fn ended(&self) -> &'static str {
        match self.outcome {
            Outcome::Stopped => "ready",
            Outcome::Exited(_) => "exited without ready",
            Outcome::TimedOut => "timed out",
        }
    }
}

/// Boots `vm` with its serial console in `log` until stage 2's ready line
/// (printk's copy: a line without the timestamp does not count), QEMU's exit
/// or `timeout`. Only QEMU failing to start at all is an error.
pub fn run(vm: &Machine, log: &Path, timeout: Duration) -> Result<Boot> {
    let ready_line = format!("] {}", contract::MARKER_STAGE2_READY);
    let run = vm.run_until(log, &ready_line, timeout)?;
    Ok(Boot {
        timeline: Timeline::parse(&run.text),
        log_path: run.log_path,
        outcome: run.outcome,
        wall: run.elapsed,
        accel: run.accel,
    })
}
