//! The accelerator QEMU runs a guest with, and the lock every VM runs under.
//! `K1OS_ACCEL` is read here and nowhere else.
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::{Boot, Machine};
use crate::run::Cmd;
use crate::{iso, paths, ui};

/// Environment variable that chooses the accelerator: `auto`, `kvm` or `tcg`.
pub const ACCEL_ENV: &str = "K1OS_ACCEL";

/// How long `auto` lets a kernel boot under KVM before deciding KVM does not
/// work. A working KVM gets to the root mount in well under 1 s.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The accelerator a VM runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// QEMU's arguments for it.
    pub fn qemu_args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => &["-accel", "tcg"],
        }
    }

    /// `KVM` or `TCG`, for messages and reports.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "KVM",
            Accel::Tcg => "TCG",
        }
    }
}

/// What was asked for: `--accel` or `K1OS_ACCEL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccelChoice {
    /// KVM if it boots a kernel here, else TCG.
    Auto,
    Kvm,
    Tcg,
}

impl From<Accel> for AccelChoice {
    fn from(accel: Accel) -> AccelChoice {
        match accel {
            Accel::Kvm => AccelChoice::Kvm,
            Accel::Tcg => AccelChoice::Tcg,
        }
    }
}

/// Who starts the VM: it decides what an unset `K1OS_ACCEL` means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// `host-tools qemu`: a person at the terminal.
    Interactive,
    /// The tests and the benchmarks.
    Automated,
}

impl AccelChoice {
    /// What applies when neither `--accel` nor `K1OS_ACCEL` says.
    ///
    /// **Automated runs: TCG.** These machines are VMs themselves and nested
    /// KVM is broken in a way a cheap probe does not see. Measured here:
    /// `/dev/kvm` opens, and a 16-byte real-mode firmware that writes to
    /// QEMU's `isa-debug-exit` port runs fine under `-accel kvm` (0.1 s), yet
    /// the qemu-profile kernel prints nothing at all (not even `earlyprintk`)
    /// and hangs until killed, with `-cpu host`, `qemu64` or `max`. Only
    /// booting a real kernel tells, which costs up to [`KVM_PROBE_TIMEOUT`] per
    /// process on machines like these; TCG boots take 3–8 s and always behave
    /// the same. So tests and benchmarks use KVM only when asked (`kvm`, or
    /// `auto` where the probe's cost is acceptable).
    ///
    /// **Interactive runs: auto.** A person booting the ISO once pays the
    /// probe once, and on a real machine gets KVM's speed without a flag.
    pub fn default_for(purpose: Purpose) -> AccelChoice {
        match purpose {
            Purpose::Interactive => AccelChoice::Auto,
            Purpose::Automated => AccelChoice::Tcg,
        }
    }

    /// `K1OS_ACCEL`, parsed once per process: `None` when unset or empty; any
    /// other value than `auto`, `kvm` or `tcg` is an error naming the variable.
    pub fn from_env() -> Result<Option<AccelChoice>> {
        static PARSED: OnceLock<std::result::Result<Option<AccelChoice>, String>> = OnceLock::new();
        PARSED
            .get_or_init(|| {
                let Some(value) = paths::env_var(ACCEL_ENV) else {
                    return Ok(None);
                };
                let value = value.to_string_lossy();
                <AccelChoice as clap::ValueEnum>::from_str(value.trim(), true)
                    .map(Some)
                    .map_err(|_| format!("{ACCEL_ENV}={value}: expected auto, kvm or tcg"))
            })
            .clone()
            .map_err(anyhow::Error::msg)
    }

    /// `flag` (`--accel`), else `K1OS_ACCEL`, else the default for `purpose`.
    pub fn resolve(flag: Option<AccelChoice>, purpose: Purpose) -> Result<AccelChoice> {
        match flag {
            Some(choice) => Ok(choice),
            None => Ok(AccelChoice::from_env()?.unwrap_or(AccelChoice::default_for(purpose))),
        }
    }
}

/// The lock every VM of this process runs under: one VM at a time. The
/// machines this project runs on have 2 cores, and TCG guests booted in
/// parallel get slow enough to hit timeouts. `cargo test` runs tests on
/// several threads; they all queue here, and each test's timeout only starts
/// once its VM starts.
pub fn vm_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that panicked while holding it poisons it; the lock itself is fine.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Takes [`vm_lock`] and chooses the accelerator for `machine` (its own
/// choice, else `K1OS_ACCEL`, else the default for `purpose`). The `auto`
/// probe boots a VM too, so it runs under the lock.
pub fn lock_and_choose(
    machine: &Machine,
    purpose: Purpose,
) -> Result<(MutexGuard<'static, ()>, Accel)> {
    // A bad K1OS_ACCEL is reported before waiting for other VMs.
    let choice = AccelChoice::resolve(machine.accel, purpose)?;
    let lock = vm_lock();
    let accel = choose(choice, machine)?;
    Ok((lock, accel))
}

/// The accelerator for `machine` under `purpose` (see [`lock_and_choose`];
/// the lock is released again): for callers that boot many VMs and must
/// know it first (the bench's report).
pub fn for_machine(machine: &Machine, purpose: Purpose) -> Result<Accel> {
    lock_and_choose(machine, purpose).map(|(_, accel)| accel)
}

/// `Auto` probes once per process ([`kvm_boots`]); its answer is reused.
fn choose(choice: AccelChoice, machine: &Machine) -> Result<Accel> {
    match choice {
        AccelChoice::Kvm => Ok(Accel::Kvm),
        AccelChoice::Tcg => Ok(Accel::Tcg),
        AccelChoice::Auto => {
            static PROBED: OnceLock<Accel> = OnceLock::new();
            if let Some(accel) = PROBED.get() {
                return Ok(*accel);
            }
            let accel = if !kvm_device_opens() {
                ui::note("no usable /dev/kvm: using TCG (slower)");
                Accel::Tcg
            } else {
                let step = ui::Step::start(format!(
                    "checking that KVM boots a kernel here (up to {} s; kvm or tcg in \
                     {ACCEL_ENV} or --accel skips this)",
                    KVM_PROBE_TIMEOUT.as_secs()
                ));
                let kernel = ProbeKernel::of(machine)?;
                if kvm_boots(kernel.path()) {
                    step.done("KVM");
                    Accel::Kvm
                } else {
                    step.done("KVM does not boot a kernel here: using TCG (slower)");
                    Accel::Tcg
                }
            };
            Ok(*PROBED.get_or_init(|| accel))
        }
    }
}

fn kvm_device_opens() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Whether KVM boots `kernel` here: QEMU runs it under KVM without an
/// initramfs or root device (its "cannot mount root" panic reboots, which
/// ends QEMU) and the console must show the kernel's banner (`Linux
/// version`) within [`KVM_PROBE_TIMEOUT`]. False as well when `/dev/kvm`
/// cannot be opened or QEMU fails. The caller holds [`vm_lock`].
fn kvm_boots(kernel: &Path) -> bool {
    if !kvm_device_opens() {
        return false;
    }
    let probe = Machine::kernel(kernel)
        .memory_mib(128)
        .append("root=/dev/k1os-kvm-probe");
    let log = std::env::temp_dir().join(format!("k1os-kvm-probe-{}.log", std::process::id()));
    let booted = super::Console::spawn(&probe, "kvm-probe", &log, Accel::Kvm, None)
        .and_then(|mut console| console.wait_for("Linux version", KVM_PROBE_TIMEOUT));
    let _ = std::fs::remove_file(&log);
    match booted {
        Ok(_) => true,
        Err(err) => {
            ui::detail(&format!("KVM probe: {err:#}"));
            false
        }
    }
}

/// The kernel the `auto` probe boots: the machine's own, or for a firmware
/// boot the one inside its ISO (extracted to a temporary file).
enum ProbeKernel {
    Own(PathBuf),
    Extracted(PathBuf),
}

impl ProbeKernel {
    fn of(machine: &Machine) -> Result<ProbeKernel> {
        if let Boot::Kernel { kernel, .. } = &machine.boot {
            return Ok(ProbeKernel::Own(kernel.clone()));
        }
        let Some(iso_path) = machine.drives.iter().find(|d| d.boot).map(|d| &d.path) else {
            bail!("{ACCEL_ENV}=auto: the machine has no boot drive to find a kernel in");
        };
        let out = std::env::temp_dir().join(format!("k1os-probe-vmlinuz-{}", std::process::id()));
        let _ = std::fs::remove_file(&out);
        Cmd::new("xorriso")
            .args(["-osirrox", "on", "-indev"])
            .arg(iso_path)
            .args(["-extract", iso::KERNEL_PATH])
            .arg(&out)
            .run()
            .with_context(|| {
                format!(
                    "extracting {} from {} for the KVM probe",
                    iso::KERNEL_PATH,
                    iso_path.display()
                )
            })?;
        Ok(ProbeKernel::Extracted(out))
    }

    fn path(&self) -> &Path {
        match self {
            ProbeKernel::Own(p) | ProbeKernel::Extracted(p) => p,
        }
    }
}

impl Drop for ProbeKernel {
    fn drop(&mut self) {
        if let ProbeKernel::Extracted(p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_differ_by_purpose() {
        assert_eq!(
            AccelChoice::default_for(Purpose::Interactive),
            AccelChoice::Auto
        );
        assert_eq!(
            AccelChoice::default_for(Purpose::Automated),
            AccelChoice::Tcg
        );
        // A flag wins over everything.
        assert_eq!(
            AccelChoice::resolve(Some(AccelChoice::Kvm), Purpose::Automated).unwrap(),
            AccelChoice::Kvm
        );
    }

    #[test]
    fn accel_args() {
        assert_eq!(Accel::Tcg.qemu_args(), ["-accel", "tcg"]);
        assert_eq!(Accel::Kvm.qemu_args(), ["-accel", "kvm", "-cpu", "host"]);
    }
}
