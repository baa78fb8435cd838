//! Booting the ISO the way a PC does — firmware (SeaBIOS, or OVMF for UEFI)
//! → GRUB's menu → kernel → stage 1 → stage 2 — with the ISO as a CD-ROM, a
//! hard disk or a USB stick, and optionally a data disk.
//!
//! [`crate::qemu::Vm`] boots a kernel directly; this is its firmware-side
//! sibling, for the ISO tests and `host-tools qemu`. Two ways to run:
//!
//! - [`IsoVm::start`]: a [`Session`] that talks to the guest's serial console
//!   over a Unix socket, expect-style ([`Session::wait_for`],
//!   [`Session::select_entry`], [`Session::run`]), with the console also in a
//!   log file. Used by `host-tools/tests/iso.rs`; holds
//!   [`crate::qemu::vm_lock`] while QEMU runs.
//! - [`IsoVm::run_interactive`]: the serial console on the terminal
//!   (`mon:stdio`: Ctrl-A X quits, Ctrl-A C is QEMU's monitor). A menu entry
//!   other than the default is chosen with QEMU's `sendkey` (the PS/2
//!   keyboard, one of GRUB's two terminals) once the menu shows in the log.
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::qemu::{self, Accel, Format, Outcome};
use crate::run::{Cmd, tail_block};

/// UEFI firmware for QEMU (Debian package `ovmf`).
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
/// Guest memory: the generic kernel, OVMF and a RAM-mode upper layer fit.
pub const DEFAULT_MEMORY_MIB: u32 = 512;
/// How many lines of the console a failure message shows.
pub const FAILURE_TAIL_LINES: usize = 40;
/// How long QEMU gets to connect to the serial socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How often waits look at the console.
const POLL: Duration = Duration::from_millis(50);

/// The machine's firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default: GRUB's El Torito image from a CD, the
    /// hybrid MBR from a disk.
    Bios,
    /// OVMF: `BOOTX64.EFI` from the ESP (El Torito's second entry on a CD,
    /// GPT partition 2 on a disk).
    Uefi,
}

/// How the ISO is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attach {
    /// An IDE CD-ROM.
    Cdrom,
    /// An IDE hard disk: what the ISO written raw to a disk or stick looks like.
    Disk,
    /// A USB mass-storage stick behind an xHCI controller.
    Usb,
}

/// A VM that boots the ISO through its firmware.
#[derive(Clone, Debug)]
pub struct IsoVm {
    pub iso: PathBuf,
    pub firmware: Firmware,
    pub attach: Attach,
    /// A data disk (virtio), writable.
    pub data: Option<(PathBuf, Format)>,
    pub memory_mib: u32,
    pub cpus: u32,
    /// A VGA display in a window (interactive runs); headless otherwise.
    pub gui: bool,
    /// Further QEMU arguments, appended last.
    pub extra_args: Vec<OsString>,
}

/// Where the serial console goes.
enum Serial<'a> {
    /// A Unix socket we listen on (QEMU connects as a client).
    Socket(&'a Path),
    /// The terminal, muxed with the monitor, and copied to a log file.
    Stdio { log: &'a Path },
}

impl IsoVm {
    pub fn new(iso: impl Into<PathBuf>) -> IsoVm {
        IsoVm {
            iso: iso.into(),
            firmware: Firmware::Bios,
            attach: Attach::Cdrom,
            data: None,
            memory_mib: DEFAULT_MEMORY_MIB,
            cpus: 1,
            gui: false,
            extra_args: Vec::new(),
        }
    }

    pub fn firmware(mut self, firmware: Firmware) -> IsoVm {
        self.firmware = firmware;
        self
    }

    pub fn attach(mut self, attach: Attach) -> IsoVm {
        self.attach = attach;
        self
    }

    pub fn data(mut self, path: impl Into<PathBuf>, format: Format) -> IsoVm {
        self.data = Some((path.into(), format));
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> IsoVm {
        self.memory_mib = mib;
        self
    }

    pub fn gui(mut self, gui: bool) -> IsoVm {
        self.gui = gui;
        self
    }

    /// Files that must exist before QEMU starts (the ISO, OVMF, the data disk).
    fn check_files(&self) -> Result<()> {
        let mut files = vec![self.iso.clone()];
        if self.firmware == Firmware::Uefi {
            files.push(OVMF.into());
        }
        files.extend(self.data.iter().map(|(p, _)| p.clone()));
        for file in files {
            if !file.is_file() {
                let hint = if file == Path::new(OVMF) {
                    " (Debian package `ovmf`; `./k1os doctor --install`)"
                } else {
                    ""
                };
                bail!(
                    "cannot boot the VM: {} does not exist{hint}",
                    file.display()
                );
            }
        }
        Ok(())
    }

    fn qemu_args(
        &self,
        accel: Accel,
        serial: &Serial,
        monitor: Option<&Path>,
    ) -> Result<Vec<OsString>> {
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |a: String| args.push(a.into());
        for a in accel.qemu_args() {
            push(a.to_string());
        }
        for a in ["-nodefaults", "-no-user-config", "-no-reboot"] {
            push(a.into());
        }
        if self.gui {
            push("-vga".into());
            push("std".into());
        } else {
            push("-display".into());
            push("none".into());
        }
        push("-m".into());
        push(self.memory_mib.to_string());
        push("-smp".into());
        push(self.cpus.to_string());
        push("-chardev".into());
        match serial {
            Serial::Socket(path) => push(format!("socket,id=serial0,path={}", opt(path)?)),
            Serial::Stdio { log } => push(format!(
                "stdio,id=serial0,mux=on,signal=off,logfile={}",
                opt(log)?
            )),
        }
        push("-serial".into());
        push("chardev:serial0".into());
        if let Serial::Stdio { .. } = serial {
            push("-mon".into());
            push("chardev=serial0,mode=readline".into());
        }
        if let Some(monitor) = monitor {
            push("-chardev".into());
            push(format!(
                "socket,id=hmp,path={},server=on,wait=off",
                opt(monitor)?
            ));
            push("-mon".into());
            push("chardev=hmp,mode=readline".into());
        }
        if self.firmware == Firmware::Uefi {
            push("-bios".into());
            push(OVMF.into());
        }
        let iso = opt(&self.iso)?;
        match self.attach {
            Attach::Cdrom => {
                push("-drive".into());
                push(format!(
                    "if=none,id=boot,file={iso},format=raw,media=cdrom,readonly=on"
                ));
                push("-device".into());
                push("ide-cd,drive=boot,bootindex=0".into());
            }
            Attach::Disk => {
                // ide-hd refuses read-only drives: writes go to a throwaway overlay.
                push("-drive".into());
                push(format!("if=none,id=boot,file={iso},format=raw,snapshot=on"));
                push("-device".into());
                push("ide-hd,drive=boot,bootindex=0".into());
            }
            Attach::Usb => {
                push("-device".into());
                push("qemu-xhci,id=xhci".into());
                push("-drive".into());
                push(format!("if=none,id=boot,file={iso},format=raw,snapshot=on"));
                push("-device".into());
                push("usb-storage,bus=xhci.0,drive=boot,removable=on,bootindex=0".into());
            }
        }
        if let Some((path, format)) = &self.data {
            let format = match format {
                Format::Raw => "raw",
                Format::Qcow2 => "qcow2",
            };
            push("-drive".into());
            push(format!("if=virtio,file={},format={format}", opt(path)?));
        }
        args.extend(self.extra_args.iter().cloned());
        Ok(args)
    }

    /// The QEMU command line with the console on a socket (for messages and tests).
    pub fn command_line(&self, accel: Accel) -> Result<String> {
        let args = self.qemu_args(accel, &Serial::Socket(Path::new("SOCKET")), None)?;
        Ok(Cmd::new(qemu::QEMU).args(args).display())
    }

    /// Starts QEMU under [`qemu::vm_lock`] with the console on a socket, logged
    /// to `build/test-logs/<name>.log`.
    pub fn start(&self, name: &str, accel: Accel) -> Result<Session> {
        self.check_files()?;
        let log_path = qemu::test_log_path(name);
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let lock = qemu::vm_lock();
        let socket = socket_path(name);
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("listening on {}", socket.display()))?;
        listener.set_nonblocking(true)?;
        let cmd =
            Cmd::new(qemu::QEMU).args(self.qemu_args(accel, &Serial::Socket(&socket), None)?);
        let display = cmd.display();
        let started = Instant::now();
        let handle = cmd.start_background_duct()?;
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("accepting QEMU's serial connection"),
            }
            if let Some(output) = handle.try_wait()? {
                bail!(
                    "`{display}` exited ({}) before connecting its serial console{}",
                    output.status,
                    tail_block(&String::from_utf8_lossy(&output.stderr), 20)
                );
            }
            if started.elapsed() > CONNECT_TIMEOUT {
                let _ = handle.kill();
                bail!("`{display}` did not connect its serial console within {CONNECT_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        stream.set_nonblocking(false)?;
        let _ = std::fs::remove_file(&socket);
        let received = Arc::new(Mutex::new(Vec::new()));
        let mut log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let reader = {
            let mut stream = stream.try_clone()?;
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let _ = log.write_all(&buf[..n]);
                            received
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .extend_from_slice(&buf[..n]);
                        }
                    }
                }
            })
        };
        Ok(Session {
            name: name.to_string(),
            display,
            handle: Some(handle),
            outcome: None,
            stream,
            received,
            reader: Some(reader),
            cursor: 0,
            started,
            log_path,
            accel,
            _lock: lock,
        })
    }

    /// Runs QEMU with the console on the terminal until the guest powers off
    /// or the user quits (Ctrl-A X). The console is copied to `log`.
    /// `entry`: a menu entry to choose other than the default (0).
    pub fn run_interactive(&self, accel: Accel, log: &Path, entry: usize) -> Result<()> {
        self.check_files()?;
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let _ = std::fs::remove_file(log);
        let monitor = (entry > 0).then(|| socket_path("monitor"));
        let args = self.qemu_args(accel, &Serial::Stdio { log }, monitor.as_deref())?;
        let stop = Arc::new(AtomicBool::new(false));
        let chooser = monitor.clone().map(|monitor| {
            let stop = Arc::clone(&stop);
            let log = log.to_path_buf();
            std::thread::spawn(move || choose_with_sendkey(&log, &monitor, entry, &stop))
        });
        let result = Cmd::new(qemu::QEMU).args(args).run_interactive();
        stop.store(true, Ordering::Relaxed);
        if let Some(chooser) = chooser {
            let _ = chooser.join();
        }
        if let Some(monitor) = monitor {
            let _ = std::fs::remove_file(monitor);
        }
        result
    }
}

/// Waits for GRUB's menu in `log`, then presses Down `entry` times and Enter
/// through QEMU's monitor.
fn choose_with_sendkey(log: &Path, monitor: &Path, entry: usize, stop: &AtomicBool) {
    let last_title = super::TITLE_DEBUG;
    while !stop.load(Ordering::Relaxed) {
        let text = std::fs::read(log).map(|b| clean(&b)).unwrap_or_default();
        if text.contains(last_title) {
            if let Ok(mut hmp) = UnixStream::connect(monitor) {
                let mut keys = "sendkey down\n".repeat(entry);
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

/// A short socket path (Unix socket paths are limited to 107 bytes).
fn socket_path(name: &str) -> PathBuf {
    let short: String = name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(24)
        .collect();
    std::env::temp_dir().join(format!("k1os-{}-{short}.sock", std::process::id()))
}

/// A path as a QEMU option value (UTF-8, `,` doubled).
fn opt(path: &Path) -> Result<String> {
    let s = path
        .to_str()
        .with_context(|| format!("path is not UTF-8: {}", path.display()))?;
    Ok(s.replace(',', ",,"))
}

/// `at`, moved forward to a char boundary of `text` (or its end): the lossy
/// UTF-8 decoding of a console that ended mid-character can shift offsets.
fn boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// The console as text to match against: `\r` and terminal escape sequences
/// (GRUB's menu drawing, OVMF's, the shell's `ESC[6n`) removed.
pub fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {}
            '\x1b' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    // CSI: parameters and intermediates, then one final byte.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(_) => {
                    chars.next();
                }
                None => {}
            },
            c => out.push(c),
        }
    }
    out
}

/// A running VM whose serial console the caller reads and types into.
/// Dropping it kills QEMU.
pub struct Session {
    name: String,
    display: String,
    handle: Option<duct::Handle>,
    outcome: Option<(Outcome, String)>,
    stream: UnixStream,
    received: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Matches look only after this offset of [`Session::text`].
    cursor: usize,
    started: Instant,
    log_path: PathBuf,
    accel: Accel,
    _lock: MutexGuard<'static, ()>,
}

impl Session {
    /// The console so far, cleaned ([`clean`]).
    pub fn text(&self) -> String {
        clean(&self.received.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Waits until `needle` appears after the cursor, then moves the cursor
    /// past it. Returns the time since QEMU started. Fails (with the
    /// console's tail) at `timeout` from now or when QEMU exits first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<Duration> {
        self.wait_for_any(&[needle], timeout).map(|(_, at)| at)
    }

    /// Like [`Session::wait_for`] for the first of several needles; returns
    /// its index.
    pub fn wait_for_any(
        &mut self,
        needles: &[&str],
        timeout: Duration,
    ) -> Result<(usize, Duration)> {
        let deadline = Instant::now() + timeout;
        loop {
            let text = self.text();
            let from = boundary(&text, self.cursor);
            let hit = needles
                .iter()
                .enumerate()
                .filter_map(|(i, n)| text[from..].find(n).map(|at| (at, i, n.len())))
                .min();
            if let Some((at, i, len)) = hit {
                self.cursor = from + at + len;
                return Ok((i, self.elapsed()));
            }
            if self.poll_exit().is_some() {
                // One last look: the reader may have got the last bytes meanwhile.
                std::thread::sleep(Duration::from_millis(100));
                let text = self.text();
                if needles
                    .iter()
                    .any(|n| text[boundary(&text, from)..].contains(n))
                {
                    continue;
                }
                bail!(
                    "{}",
                    self.failure(&format!(
                        "QEMU exited before the console showed {needles:?}"
                    ))
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}",
                    self.failure(&format!("no {needles:?} on the console within {timeout:?}"))
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// Types `text` into the serial console; later matches look only at what
    /// comes after.
    pub fn send(&mut self, text: &str) -> Result<()> {
        self.cursor = self.text().len();
        self.stream
            .write_all(text.as_bytes())
            .context("writing to the serial console")?;
        self.stream.flush()?;
        Ok(())
    }

    /// Waits for GRUB's menu (its last entry drawn), then chooses entry
    /// `index` (0 = the first) with Down and Enter over the serial console.
    pub fn select_entry(&mut self, index: usize, timeout: Duration) -> Result<Duration> {
        let at = self.wait_for(super::TITLE_DEBUG, timeout)?;
        // GRUB reads the serial port between redraws; give it the keys one by one.
        for _ in 0..index {
            self.send("\x1b[B")?;
            std::thread::sleep(Duration::from_millis(300));
        }
        self.send("\r")?;
        Ok(at)
    }

    /// Runs a shell command: types it with a newline and waits for `expect`
    /// in its output (choose `expect` so the echoed command line does not
    /// contain it). Returns the console text from the command to the match.
    pub fn run(&mut self, command: &str, expect: &str, timeout: Duration) -> Result<String> {
        let from = self.text().len();
        self.send(&format!("{command}\n"))?;
        self.wait_for(expect, timeout)
            .with_context(|| format!("running `{command}` in the guest"))?;
        let text = self.text();
        let (from, to) = (boundary(&text, from), boundary(&text, self.cursor));
        Ok(text[from.min(to)..to].to_string())
    }

    /// Waits until a shell answers on the console: `echo` with arithmetic, so
    /// the answer never matches the echoed command, retried every few seconds
    /// (keys typed before the shell reads its terminal may be lost). Returns
    /// the time since QEMU started.
    pub fn wait_for_shell(&mut self, timeout: Duration) -> Result<Duration> {
        let deadline = Instant::now() + timeout;
        loop {
            self.send("echo K1OS-SHELL-$((6*7))\n")?;
            let left = deadline.saturating_duration_since(Instant::now());
            match self.wait_for("K1OS-SHELL-42", left.min(Duration::from_secs(5))) {
                Ok(at) => return Ok(at),
                Err(err) if Instant::now() >= deadline || self.poll_exit().is_some() => {
                    return Err(err.context("waiting for a shell on the console"));
                }
                Err(_) => {}
            }
        }
    }

    /// Waits until QEMU exits by itself (guest power-off); kills it at the timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Outcome> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(outcome) = self.poll_exit() {
                return Ok(outcome);
            }
            if Instant::now() >= deadline {
                self.kill();
                return Ok(Outcome::TimedOut);
            }
            std::thread::sleep(POLL);
        }
    }

    /// `poweroff` in the guest's shell (stage 2 stops its services and
    /// unmounts), then waits for QEMU to exit.
    pub fn power_off(&mut self, timeout: Duration) -> Result<()> {
        self.send("poweroff\n")?;
        match self.wait_exit(timeout)? {
            Outcome::Exited(_) => Ok(()),
            Outcome::TimedOut => bail!("{}", self.failure("the guest did not power off")),
        }
    }

    fn poll_exit(&mut self) -> Option<Outcome> {
        if let Some((outcome, _)) = &self.outcome {
            return Some(*outcome);
        }
        let handle = self.handle.as_ref()?;
        match handle.try_wait() {
            Ok(Some(output)) => {
                let outcome = Outcome::Exited(output.status.code());
                let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                self.outcome = Some((outcome, stderr));
                self.finish_reader();
                Some(outcome)
            }
            _ => None,
        }
    }

    fn kill(&mut self) {
        if let Some(handle) = &self.handle
            && self.outcome.is_none()
        {
            let _ = handle.kill();
            self.outcome = Some((Outcome::TimedOut, String::new()));
        }
        self.finish_reader();
    }

    fn finish_reader(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }

    /// A failure message: `what`, the run, the log path, the console's tail
    /// and QEMU's stderr.
    pub fn failure(&self, what: &str) -> String {
        let text = self.text();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(FAILURE_TAIL_LINES)..].join("\n");
        let stderr = match &self.outcome {
            Some((_, s)) if !s.trim().is_empty() => {
                format!("\n--- QEMU stderr ---\n{}", s.trim_end())
            }
            _ => String::new(),
        };
        format!(
            "{}: {what}\nafter {:.1} s ({:?}); `{}`\nfull serial log: {}\n--- last {FAILURE_TAIL_LINES} lines of the console ---\n{tail}{stderr}",
            self.name,
            self.elapsed().as_secs_f64(),
            self.accel,
            self.display,
            self.log_path.display()
        )
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_drops_escapes_and_carriage_returns() {
        let raw = b"\x1b[2J\x1b[1;1H  K1OS (RAM mode)\x1b[0m\r\n~ # \x1b[6necho hi\r\nhi\x1bc";
        assert_eq!(clean(raw), "  K1OS (RAM mode)\n~ # echo hi\nhi");
    }

    #[test]
    fn qemu_args_per_attachment() {
        let join = |vm: &IsoVm| {
            vm.qemu_args(Accel::Tcg, &Serial::Socket(Path::new("/s")), None)
                .unwrap()
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let cd = join(&IsoVm::new("/a,b.iso"));
        assert!(
            cd.starts_with("-accel tcg -nodefaults -no-user-config -no-reboot -display none"),
            "{cd}"
        );
        assert!(
            cd.contains("-chardev socket,id=serial0,path=/s -serial chardev:serial0"),
            "{cd}"
        );
        assert!(cd.contains("file=/a,,b.iso,format=raw,media=cdrom,readonly=on -device ide-cd,drive=boot,bootindex=0"), "{cd}");
        assert!(!cd.contains("-bios"), "{cd}");
        let disk = join(
            &IsoVm::new("/k.iso")
                .firmware(Firmware::Uefi)
                .attach(Attach::Disk)
                .data("/d.img", Format::Raw),
        );
        assert!(disk.contains(&format!("-bios {OVMF}")), "{disk}");
        assert!(
            disk.contains(
                "file=/k.iso,format=raw,snapshot=on -device ide-hd,drive=boot,bootindex=0"
            ),
            "{disk}"
        );
        assert!(
            disk.contains("-drive if=virtio,file=/d.img,format=raw"),
            "{disk}"
        );
        let usb = join(&IsoVm::new("/k.iso").attach(Attach::Usb));
        assert!(usb.contains("-device qemu-xhci,id=xhci"), "{usb}");
        assert!(
            usb.contains("usb-storage,bus=xhci.0,drive=boot,removable=on,bootindex=0"),
            "{usb}"
        );
    }
}
