//! The QEMU harness: a VM description ([`Vm`], [`Drive`]), the accelerator
//! choice ([`Accel`]), and a run with a timeout whose serial console ends up in
//! a log file ([`BootLog`], with marker helpers for assertions).
//!
//! Used by the boot tests (`host-tools/tests/boot.rs`), `host-tools qemu` and
//! the benchmarks. Every VM boots a kernel directly (`-kernel`/`-initrd`, no
//! firmware menu), headless: `-display none -monitor none -nodefaults`, the
//! first serial port into a file, `-no-reboot` so that a guest reboot (or a
//! kernel panic, see [`Vm::exit_on_panic`]) ends QEMU.
//!
//! Only one VM runs at a time per process ([`vm_lock`]): the machines this
//! project runs on have 2 cores, and TCG guests booted in parallel get slow
//! enough to hit timeouts. `cargo test` runs tests on several threads; they all
//! queue on the lock, and each test's timeout only starts once its VM starts.
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::run::{Cmd, tail_block};
use crate::{paths, ui};

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";
/// Kernel command-line words every VM gets: the serial console (what the log
/// captures) and printk timestamps (stage-1 timings are read from them).
pub const BASE_CMDLINE: &[&str] = &["console=ttyS0", "printk.time=1"];
/// Guest memory unless [`Vm::memory_mib`] says otherwise.
pub const DEFAULT_MEMORY_MIB: u32 = 256;
/// How many lines of the serial log a failure message shows.
pub const FAILURE_TAIL_LINES: usize = 40;
/// Environment variable that chooses the accelerator: `kvm`, `tcg` or `auto`.
pub const ACCEL_ENV: &str = "K1OS_ACCEL";

/// The accelerator QEMU runs the guest with.
///
/// **How it is chosen** ([`Accel::choose`]): `K1OS_ACCEL=tcg` or unset means
/// **TCG**; `K1OS_ACCEL=kvm` means KVM, unchecked; `K1OS_ACCEL=auto` probes
/// KVM once per process by booting the VM's own kernel under it
/// ([`Accel::kvm_boots`]) and falls back to TCG when that fails.
///
/// Why TCG by default rather than a probe: these machines are VMs themselves
/// and nested KVM is broken in a way a cheap probe does not see. Measured
/// here: `/dev/kvm` opens, and a 16-byte real-mode firmware that writes to
/// QEMU's `isa-debug-exit` port runs fine under `-accel kvm` (0.1 s), yet the
/// qemu-profile kernel prints nothing at all (not even `earlyprintk`) and
/// hangs until killed, with `-cpu host`, `qemu64` or `max`. Only booting a
/// real kernel tells, which costs up to [`KVM_PROBE_TIMEOUT`] per process on
/// machines like these; TCG boots take 3–8 s and always behave the same. So
/// KVM is opt-in, for machines where it is known to work (`kvm`) or where the
/// probe's cost is acceptable (`auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

/// How long `K1OS_ACCEL=auto` lets a kernel boot under KVM before deciding
/// KVM does not work. A working KVM gets to the root mount in well under 1 s.
pub const KVM_PROBE_TIMEOUT: Duration = Duration::from_secs(10);

impl Accel {
    /// The accelerator for a VM booting `kernel` (see the type's doc). The
    /// `auto` probe runs once per process; its answer is reused.
    pub fn choose(kernel: &Path) -> Result<Accel> {
        let value = std::env::var(ACCEL_ENV).unwrap_or_default();
        match value.trim() {
            "" | "tcg" => Ok(Accel::Tcg),
            "kvm" => Ok(Accel::Kvm),
            "auto" => {
                static PROBED: OnceLock<Accel> = OnceLock::new();
                Ok(*PROBED.get_or_init(|| {
                    if Accel::kvm_boots(kernel) {
                        Accel::Kvm
                    } else {
                        ui::step(&format!(
                            "{ACCEL_ENV}=auto: KVM does not boot a kernel here, using TCG"
                        ));
                        Accel::Tcg
                    }
                }))
            }
            other => bail!("{ACCEL_ENV}={other:?}: expected `kvm`, `tcg` or `auto`"),
        }
    }

    /// Whether KVM boots `kernel` here: QEMU runs it under KVM without an
    /// initramfs or root device (`panic=-1`, so its "cannot mount root" panic
    /// reboots and `-no-reboot` ends QEMU) and the serial console must show
    /// the kernel's banner (`Linux version`) within [`KVM_PROBE_TIMEOUT`].
    /// False as well when `/dev/kvm` cannot be opened or QEMU fails.
    pub fn kvm_boots(kernel: &Path) -> bool {
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_err()
        {
            return false;
        }
        Self::probe_kvm(kernel).unwrap_or_else(|err| {
            ui::detail(&format!("KVM probe: {err:#}"));
            false
        })
    }

    fn probe_kvm(kernel: &Path) -> Result<bool> {
        let serial =
            std::env::temp_dir().join(format!("k1os-kvm-probe-{}.log", std::process::id()));
        let vm = Vm::new(kernel)
            .memory_mib(128)
            .append("root=/dev/k1os-kvm-probe");
        let child = vm
            .command(Accel::Kvm, &Serial::File(serial.clone()))?
            .start_background()
            .context("starting the KVM probe")?;
        if child.wait_timeout(KVM_PROBE_TIMEOUT)?.is_none() {
            child.kill()?;
        }
        let log = std::fs::read(&serial).unwrap_or_default();
        let _ = std::fs::remove_file(&serial);
        Ok(String::from_utf8_lossy(&log).contains("Linux version"))
    }

    /// QEMU's arguments for this accelerator.
    pub fn qemu_args(self) -> &'static [&'static str] {
        match self {
            Accel::Kvm => &["-accel", "kvm", "-cpu", "host"],
            Accel::Tcg => &["-accel", "tcg"],
        }
    }
}

/// How a drive is attached to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    /// An ATAPI CD-ROM on the chipset's IDE controller (`/dev/sr0`).
    Cdrom,
    /// A virtio-blk disk (`/dev/vda`).
    Virtio,
    /// A disk on the chipset's IDE controller (`/dev/sda` through libata).
    Ide,
    /// A disk on an AHCI (SATA) controller added for it (`/dev/sdX`).
    Sata,
}

/// The image format of a drive's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        }
    }
}

/// One drive of a [`Vm`].
#[derive(Clone, Debug)]
pub struct Drive {
    pub path: PathBuf,
    pub bus: Bus,
    pub format: Format,
    /// The guest cannot write to it (always true for a CD-ROM).
    pub read_only: bool,
}

impl Drive {
    /// A read-only raw drive on `bus`.
    pub fn new(bus: Bus, path: impl Into<PathBuf>) -> Drive {
        Drive {
            path: path.into(),
            bus,
            format: Format::Raw,
            read_only: bus == Bus::Cdrom,
        }
    }

    /// A CD-ROM with `path` (an ISO) inserted.
    pub fn cdrom(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Cdrom, path)
    }

    /// A writable raw virtio disk.
    pub fn virtio(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Virtio, path)
    }

    /// A writable raw disk on the IDE controller.
    pub fn ide(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Ide, path)
    }

    /// A writable raw disk on an AHCI controller.
    pub fn sata(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Sata, path)
    }

    pub fn read_only(mut self, read_only: bool) -> Drive {
        self.read_only = read_only || self.bus == Bus::Cdrom;
        self
    }

    pub fn format(mut self, format: Format) -> Drive {
        self.format = format;
        self
    }
}

/// Where the guest's first serial port (its console) goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Serial {
    /// Written to a file (QEMU truncates it).
    File(PathBuf),
    /// A named pipe pair `<path>.in` / `<path>.out` (QEMU's `pipe:`), for a
    /// caller that talks to the guest.
    Pipe(PathBuf),
    /// The terminal, multiplexed with QEMU's monitor (`mon:stdio`: Ctrl-A X
    /// quits); for interactive runs with [`Cmd::run_interactive`].
    Stdio,
}

/// A VM that boots a kernel directly. Build it with the methods, then
/// [`Vm::run`] (logs under `build/test-logs/`) or [`Vm::run_with_log`].
#[derive(Clone, Debug)]
pub struct Vm {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    /// Kernel command-line words after [`BASE_CMDLINE`].
    pub cmdline: Vec<String>,
    pub memory_mib: u32,
    pub cpus: u32,
    pub drives: Vec<Drive>,
    /// `None`: [`Accel::choose`].
    pub accel: Option<Accel>,
    /// Adds `panic=-1` to the command line: a kernel panic reboots at once,
    /// which `-no-reboot` turns into QEMU exiting, so a panicking guest fails
    /// its test in seconds instead of at the timeout. On by default.
    pub exit_on_panic: bool,
    /// Further QEMU arguments, appended last.
    pub extra_args: Vec<OsString>,
}

impl Vm {
    pub fn new(kernel: impl Into<PathBuf>) -> Vm {
        Vm {
            kernel: kernel.into(),
            initrd: None,
            cmdline: Vec::new(),
            memory_mib: DEFAULT_MEMORY_MIB,
            cpus: 1,
            drives: Vec::new(),
            accel: None,
            exit_on_panic: true,
            extra_args: Vec::new(),
        }
    }

    pub fn initrd(mut self, initrd: impl Into<PathBuf>) -> Vm {
        self.initrd = Some(initrd.into());
        self
    }

    /// Appends one word (`k1os.mode=ram`) to the kernel command line.
    pub fn append(mut self, word: impl Into<String>) -> Vm {
        self.cmdline.push(word.into());
        self
    }

    /// Appends whitespace-separated words to the kernel command line.
    pub fn append_all(mut self, words: &str) -> Vm {
        self.cmdline
            .extend(words.split_whitespace().map(String::from));
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Vm {
        self.memory_mib = mib;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Vm {
        self.cpus = cpus;
        self
    }

    pub fn drive(mut self, drive: Drive) -> Vm {
        self.drives.push(drive);
        self
    }

    pub fn accel(mut self, accel: Accel) -> Vm {
        self.accel = Some(accel);
        self
    }

    pub fn exit_on_panic(mut self, on: bool) -> Vm {
        self.exit_on_panic = on;
        self
    }

    pub fn qemu_arg(mut self, arg: impl Into<OsString>) -> Vm {
        self.extra_args.push(arg.into());
        self
    }

    /// The whole kernel command line.
    pub fn kernel_cmdline(&self) -> String {
        let mut words: Vec<&str> = BASE_CMDLINE.to_vec();
        if self.exit_on_panic {
            words.push("panic=-1");
        }
        words.extend(self.cmdline.iter().map(String::as_str));
        words.join(" ")
    }

    /// QEMU's arguments, with the serial console going to `serial`.
    pub fn qemu_args(&self, accel: Accel, serial: &Serial) -> Result<Vec<OsString>> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: &str| args.push(a.into());
        for a in accel.qemu_args() {
            push(a);
        }
        push("-nodefaults");
        push("-no-user-config");
        push("-no-reboot");
        push("-display");
        push("none");
        push("-monitor");
        push("none");
        push("-m");
        push(&self.memory_mib.to_string());
        push("-smp");
        push(&self.cpus.to_string());
        push("-serial");
        match serial {
            Serial::File(path) => push(&format!("file:{}", path_str(path)?)),
            Serial::Pipe(path) => push(&format!("pipe:{}", path_str(path)?)),
            Serial::Stdio => push("mon:stdio"),
        }
        push("-kernel");
        push(path_str(&self.kernel)?);
        if let Some(initrd) = &self.initrd {
            push("-initrd");
            push(path_str(initrd)?);
        }
        push("-append");
        push(&self.kernel_cmdline());
        let mut sata_port = 0;
        for (i, d) in self.drives.iter().enumerate() {
            let file = format!(
                "file={},format={}{}",
                escape_opt(path_str(&d.path)?),
                d.format.name(),
                if d.read_only { ",readonly=on" } else { "" }
            );
            match d.bus {
                Bus::Cdrom => {
                    push("-drive");
                    push(&format!("{file},if=ide,media=cdrom"));
                }
                Bus::Virtio => {
                    push("-drive");
                    push(&format!("{file},if=virtio"));
                }
                Bus::Ide => {
                    push("-drive");
                    push(&format!("{file},if=ide,media=disk"));
                }
                Bus::Sata => {
                    if sata_port == 0 {
                        push("-device");
                        push("ahci,id=ahci0");
                    }
                    push("-drive");
                    push(&format!("{file},if=none,id=drive{i}"));
                    push("-device");
                    push(&format!("ide-hd,drive=drive{i},bus=ahci0.{sata_port}"));
                    sata_port += 1;
                }
            }
        }
        args.extend(self.extra_args.iter().cloned());
        Ok(args)
    }

    /// The QEMU command (see [`Vm::qemu_args`]).
    pub fn command(&self, accel: Accel, serial: &Serial) -> Result<Cmd> {
        Ok(Cmd::new(QEMU).args(self.qemu_args(accel, serial)?))
    }

    /// Boots with the serial log in `build/test-logs/<name>.log` (see
    /// [`Vm::run_with_log`]).
    pub fn run(&self, name: &str, timeout: Duration) -> Result<BootLog> {
        self.run_with_log(&test_log_path(name), timeout)
    }

    /// Boots and waits until QEMU exits or `timeout` has passed since it
    /// started (then QEMU is killed), holding [`vm_lock`] meanwhile. The
    /// serial console goes to `log`. A guest that times out or fails is not an
    /// error here (the [`BootLog`] says what happened); QEMU that cannot start,
    /// or exits with an error before the guest printed anything, is.
    pub fn run_with_log(&self, log: &Path, timeout: Duration) -> Result<BootLog> {
        for f in std::iter::once(&self.kernel)
            .chain(&self.initrd)
            .chain(self.drives.iter().map(|d| &d.path))
        {
            if !f.is_file() {
                bail!("cannot boot the VM: {} does not exist", f.display());
            }
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        // The `auto` probe boots a VM too: it runs under the lock as well.
        let _guard = vm_lock();
        let accel = match self.accel {
            Some(a) => a,
            None => Accel::choose(&self.kernel)?,
        };
        let cmd = self.command(accel, &Serial::File(log.to_path_buf()))?;
        let display = cmd.display();
        // QEMU truncates the file itself; removing it first means a stale log
        // never passes for this run's when QEMU fails to start.
        let _ = std::fs::remove_file(log);
        let start = Instant::now();
        let child = cmd.start_background()?;
        let (outcome, stderr) = match child.wait_timeout(timeout)? {
            Some(output) => (Outcome::Exited(output.code), output.stderr),
            None => {
                child.kill()?;
                (Outcome::TimedOut, String::new())
            }
        };
        let elapsed = start.elapsed();
        let raw = std::fs::read(log).unwrap_or_default();
        let text = String::from_utf8_lossy(&raw).replace('\r', "");
        if let Outcome::Exited(code) = outcome
            && code != Some(0)
            && text.trim().is_empty()
        {
            bail!(
                "`{display}` failed (exit status {code:?}) before the guest printed anything{}",
                tail_block(&stderr, 20)
            );
        }
        Ok(BootLog {
            text,
            outcome,
            elapsed,
            timeout,
            log_path: log.to_path_buf(),
            qemu_stderr: stderr,
            accel,
        })
    }
}

/// `build/test-logs/<name>.log`.
pub fn test_log_path(name: &str) -> PathBuf {
    paths::build_dir()
        .join("test-logs")
        .join(format!("{name}.log"))
}

/// The lock every VM run holds: one VM at a time in this process. Callers
/// that run QEMU themselves (interactive `host-tools qemu`) may take it too.
pub fn vm_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A test that panicked while holding it poisons it; the lock itself is fine.
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// QEMU exited by itself (guest power-off or reboot) with this status
    /// (`None`: killed by a signal).
    Exited(Option<i32>),
    /// The timeout passed; QEMU was killed.
    TimedOut,
}

/// The serial console of one run, and how it ended.
#[derive(Clone, Debug)]
pub struct BootLog {
    /// The serial output, `\r` removed.
    pub text: String,
    pub outcome: Outcome,
    /// From QEMU's start to its exit (or kill).
    pub elapsed: Duration,
    pub timeout: Duration,
    /// Where the serial output was written (kept for inspection).
    pub log_path: PathBuf,
    /// QEMU's own stderr (warnings, errors).
    pub qemu_stderr: String,
    pub accel: Accel,
}

/// The kernel's line when it powers the machine off.
pub const KERNEL_POWER_DOWN: &str = "reboot: Power down";
/// The kernel's line when it restarts the machine.
pub const KERNEL_RESTART: &str = "reboot: Restarting system";
/// The start of the kernel's panic line.
pub const KERNEL_PANIC: &str = "Kernel panic";

impl BootLog {
    /// QEMU exited by itself before the timeout.
    pub fn exited(&self) -> bool {
        matches!(self.outcome, Outcome::Exited(_))
    }

    pub fn timed_out(&self) -> bool {
        self.outcome == Outcome::TimedOut
    }

    /// The guest powered itself off (the kernel said so and QEMU exited).
    pub fn powered_off(&self) -> bool {
        self.exited() && self.contains(KERNEL_POWER_DOWN)
    }

    pub fn contains(&self, marker: &str) -> bool {
        self.text.contains(marker)
    }

    /// The first line that contains `marker`.
    pub fn line(&self, marker: &str) -> Option<&str> {
        self.text.lines().find(|l| l.contains(marker))
    }

    /// Every line that contains `marker`.
    pub fn lines_with<'a>(&'a self, marker: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.text.lines().filter(move |l| l.contains(marker))
    }

    /// The index of the first line that contains `marker`.
    pub fn line_index(&self, marker: &str) -> Option<usize> {
        self.text.lines().position(|l| l.contains(marker))
    }

    /// The text after `marker` on its first line, trimmed.
    pub fn value_after(&self, marker: &str) -> Option<&str> {
        let line = self.line(marker)?;
        let at = line.find(marker)? + marker.len();
        Some(line[at..].trim())
    }

    /// The last `n` lines of the serial output.
    pub fn tail(&self, n: usize) -> String {
        let lines: Vec<&str> = self.text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// A failure message: `what`, how the run ended, where the log is, and
    /// its last lines.
    pub fn failure(&self, what: &str) -> String {
        let ended = match self.outcome {
            Outcome::Exited(code) => format!(
                "QEMU exited ({code:?}) after {:.1} s",
                self.elapsed.as_secs_f64()
            ),
            Outcome::TimedOut => format!(
                "QEMU was killed at the {:.0} s timeout",
                self.timeout.as_secs_f64()
            ),
        };
        let stderr = if self.qemu_stderr.trim().is_empty() {
            String::new()
        } else {
            format!("\n--- QEMU stderr ---\n{}", self.qemu_stderr.trim_end())
        };
        format!(
            "{what}\n{ended} ({:?}); full serial log: {}\n--- last {FAILURE_TAIL_LINES} lines of the serial log ---\n{}{stderr}",
            self.accel,
            self.log_path.display(),
            self.tail(FAILURE_TAIL_LINES)
        )
    }

    /// The first line containing `marker`, or an error with the log's tail.
    pub fn expect_line(&self, marker: &str) -> Result<&str> {
        match self.line(marker) {
            Some(line) => Ok(line),
            None => bail!(
                "{}",
                self.failure(&format!("no line containing {marker:?} in the serial log"))
            ),
        }
    }

    /// Panics (with the log's tail) unless a line contains `marker`; returns it.
    #[track_caller]
    pub fn assert_line(&self, marker: &str) -> &str {
        match self.line(marker) {
            Some(line) => line,
            None => panic!(
                "{}",
                self.failure(&format!("no line containing {marker:?} in the serial log"))
            ),
        }
    }

    /// Panics (with the log's tail) unless a line contains all of `parts`;
    /// returns the first such line.
    #[track_caller]
    pub fn assert_line_with_all(&self, parts: &[&str]) -> &str {
        match self
            .text
            .lines()
            .find(|l| parts.iter().all(|p| l.contains(p)))
        {
            Some(line) => line,
            None => panic!(
                "{}",
                self.failure(&format!(
                    "no line containing all of {parts:?} in the serial log"
                ))
            ),
        }
    }

    /// Panics (with the log's tail) if the log contains `marker`.
    #[track_caller]
    pub fn assert_absent(&self, marker: &str) {
        if let Some(line) = self.line(marker) {
            panic!(
                "{}",
                self.failure(&format!("the serial log contains {marker:?}: {line:?}"))
            );
        }
    }

    /// Panics unless `first` appears on a line before the first line with `second`.
    #[track_caller]
    pub fn assert_order(&self, first: &str, second: &str) {
        let a = self.line_index(first);
        let b = self.line_index(second);
        match (a, b) {
            (Some(a), Some(b)) if a < b => {}
            _ => panic!(
                "{}",
                self.failure(&format!(
                    "expected {first:?} (line {a:?}) before {second:?} (line {b:?})"
                ))
            ),
        }
    }

    /// Panics unless QEMU exited by itself before the timeout.
    #[track_caller]
    pub fn assert_exited(&self) {
        if !self.exited() {
            panic!("{}", self.failure("the guest did not end by itself"));
        }
    }
}

/// A path as UTF-8 (QEMU options are strings).
fn path_str(path: &Path) -> Result<&str> {
    path.to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

/// Escapes a value inside a QEMU `-drive` option list (`,` is doubled).
fn escape_opt(value: &str) -> String {
    value.replace(',', ",,")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_has_console_and_timestamps() {
        let vm = Vm::new("/k").append("k1os.mode=ram");
        assert_eq!(
            vm.kernel_cmdline(),
            "console=ttyS0 printk.time=1 panic=-1 k1os.mode=ram"
        );
        let vm = vm.exit_on_panic(false);
        assert_eq!(
            vm.kernel_cmdline(),
            "console=ttyS0 printk.time=1 k1os.mode=ram"
        );
    }

    #[test]
    fn drives_become_qemu_options() {
        let vm = Vm::new("/k")
            .initrd("/i")
            .drive(Drive::cdrom("/media,1.iso"))
            .drive(Drive::virtio("/d.qcow2").format(Format::Qcow2))
            .drive(Drive::ide("/r.img").read_only(true))
            .drive(Drive::sata("/s.img"));
        let args: Vec<String> = vm
            .qemu_args(Accel::Tcg, &Serial::File("/log".into()))
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.starts_with("-accel tcg -nodefaults"), "{joined}");
        assert!(joined.contains("-no-reboot"));
        assert!(joined.contains("-serial file:/log"));
        assert!(
            joined.contains("-drive file=/media,,1.iso,format=raw,readonly=on,if=ide,media=cdrom")
        );
        assert!(joined.contains("-drive file=/d.qcow2,format=qcow2,if=virtio"));
        assert!(joined.contains("-drive file=/r.img,format=raw,readonly=on,if=ide,media=disk"));
        assert!(
            joined
                .contains("-device ahci,id=ahci0 -drive file=/s.img,format=raw,if=none,id=drive3")
        );
        assert!(joined.contains("-device ide-hd,drive=drive3,bus=ahci0.0"));
    }

    #[test]
    fn log_helpers() {
        let log = BootLog {
            text: "a\nk1os-init: exec /sbin/init\nK1OS-TEST: stage 2 up\n".into(),
            outcome: Outcome::Exited(Some(0)),
            elapsed: Duration::from_secs(1),
            timeout: Duration::from_secs(9),
            log_path: "/x.log".into(),
            qemu_stderr: String::new(),
            accel: Accel::Tcg,
        };
        assert_eq!(log.value_after("k1os-init: exec "), Some("/sbin/init"));
        log.assert_order("exec", "stage 2");
        assert!(
            log.expect_line("nope")
                .unwrap_err()
                .to_string()
                .contains("K1OS-TEST: stage 2 up")
        );
        assert_eq!(log.tail(1), "K1OS-TEST: stage 2 up");
    }
}
