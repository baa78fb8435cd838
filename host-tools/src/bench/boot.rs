//! One benchmark boot: a VM that runs until stage 2 says it is ready (or
//! powers off, fails, or times out), its serial log, and its [`Timeline`].
//!
//! The VMs hold [`qemu::vm_lock`] like every other VM of this process, so
//! boots never overlap and each one has the machine's cores to itself (as
//! far as other processes allow).
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use k1os_contract::contract;

use super::timeline::Timeline;
use crate::qemu::{self, Accel, Drive, Serial, Vm};
use crate::run::tail_block;

/// How often the serial log is looked at while a VM runs.
const POLL: Duration = Duration::from_millis(25);

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
/// disk (if any) as the first virtio disk with `snapshot=on` (every boot
/// sees it as it was made), `extra_devices` times `extra` as SCSI disks.
pub fn vm(kernel: &Path, initrd: &Path, iso: &Path, extra: &Path, setup: &Setup) -> Vm {
    let mode = if setup.persistent() { "persist" } else { "ram" };
    let mut vm = Vm::new(kernel)
        .initrd(initrd)
        .append(format!("k1os.mode={mode}"))
        .append("k1os.onfail=poweroff")
        .drive(Drive::cdrom(iso));
    if let Some(data) = &setup.data {
        vm = vm.qemu_arg("-drive").qemu_arg(format!(
            "file={},format=raw,if=virtio,snapshot=on",
            data.display().to_string().replace(',', ",,")
        ));
    }
    if setup.extra_devices > 0 {
        vm = vm
            .qemu_arg("-device")
            .qemu_arg("virtio-scsi-pci,id=benchscsi");
        let file = extra.display().to_string().replace(',', ",,");
        for i in 0..setup.extra_devices {
            vm = vm
                .qemu_arg("-drive")
                .qemu_arg(format!(
                    "file={file},format=raw,if=none,id=extra{i},readonly=on"
                ))
                .qemu_arg("-device")
                .qemu_arg(format!(
                    "scsi-hd,drive=extra{i},bus=benchscsi.0,channel=0,scsi-id={i},lun=0"
                ));
        }
    }
    vm
}

/// How a boot ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// Stage 2 said it is ready (the VM was then stopped, or powered off).
    Ready,
    /// QEMU exited without the ready line (power-off after a fatal error, panic).
    Exited,
    /// Neither within the timeout: QEMU was killed.
    TimedOut,
}

impl Ended {
    pub fn name(self) -> &'static str {
        match self {
            Ended::Ready => "ready",
            Ended::Exited => "exited without ready",
            Ended::TimedOut => "timed out",
        }
    }
}

/// One boot's outcome.
#[derive(Clone, Debug)]
pub struct Boot {
    pub log_path: PathBuf,
    pub timeline: Timeline,
    pub ended: Ended,
    /// Wall-clock time from QEMU's start to its end.
    pub wall: Duration,
    pub accel: Accel,
}

/// Boots `vm` with its serial console in `log` until the ready line, QEMU's
/// exit or `timeout`. Only QEMU failing to start at all is an error.
pub fn run(vm: &Vm, log: &Path, timeout: Duration) -> Result<Boot> {
    for f in std::iter::once(&vm.kernel)
        .chain(&vm.initrd)
        .chain(vm.drives.iter().map(|d| &d.path))
    {
        if !f.is_file() {
            bail!("cannot boot the VM: {} does not exist", f.display());
        }
    }
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let _guard = qemu::vm_lock();
    let accel = match vm.accel {
        Some(a) => a,
        None => Accel::choose(&vm.kernel)?,
    };
    let cmd = vm.command(accel, &Serial::File(log.to_path_buf()))?;
    let display = cmd.display();
    let _ = std::fs::remove_file(log);
    let start = Instant::now();
    let handle = cmd.start_background_duct()?;
    // The printk line (a copy without a timestamp does not count).
    let ready_line = format!("] {}", contract::MARKER_STAGE2_READY);
    let ended = loop {
        std::thread::sleep(POLL);
        if let Some(output) = handle.try_wait()? {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if !output.status.success() && text.trim().is_empty() {
                bail!(
                    "`{display}` failed ({}) before the guest printed anything{}",
                    output.status,
                    tail_block(&String::from_utf8_lossy(&output.stderr), 20)
                );
            }
            break if text.contains(&ready_line) {
                Ended::Ready
            } else {
                Ended::Exited
            };
        }
        let text = std::fs::read(log).unwrap_or_default();
        if contains(&text, ready_line.as_bytes()) {
            handle.kill()?;
            break Ended::Ready;
        }
        if start.elapsed() > timeout {
            handle.kill()?;
            break Ended::TimedOut;
        }
    };
    let wall = start.elapsed();
    let raw = std::fs::read(log).unwrap_or_default();
    let text = String::from_utf8_lossy(&raw).replace('\r', "");
    Ok(Boot {
        log_path: log.to_path_buf(),
        timeline: Timeline::parse(&text),
        ended,
        wall,
        accel,
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
