//! Drives a VM's serial console like a user at a terminal: wait for a prompt
//! or a line ([`Console::wait_for`]), type a line ([`Console::send_line`]),
//! run a shell command and get its output and exit status ([`Console::run`]).
//!
//! The VM is a [`Vm`] of the QEMU harness; its first serial port goes to a
//! Unix socket (`-chardev socket,server=on,wait=on`: QEMU waits until this
//! side is connected, so no output is lost) instead of a file. Everything
//! received is appended to a log file (`build/test-logs/<name>.log` by
//! default), and kept, cleaned of `\r` and terminal escape sequences (busybox
//! ash prints `ESC[6n` after each prompt), for matching. The console holds
//! the harness's [`vm_lock`] while the VM runs, like [`Vm::run`].
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::qemu::{self, Accel, QEMU, Serial, Vm, vm_lock};
use crate::run::{Cmd, tail_block};

/// How many lines of the console a failure message shows.
pub const FAILURE_TAIL_LINES: usize = 40;
/// How long QEMU gets to create the console socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// The chardev id of the serial console.
const CHARDEV: &str = "k1os-serial";

/// How to start a [`Console`].
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep QEMU running when the guest reboots (drops `-no-reboot`), so that
    /// a test can watch a reboot on the same console. A guest that powers off
    /// still ends QEMU.
    pub allow_reboot: bool,
    /// The log file (default `build/test-logs/<name>.log`).
    pub log: Option<PathBuf>,
}

/// A running VM and its serial console.
pub struct Console {
    name: String,
    child: Option<duct::Handle>,
    stream: UnixStream,
    socket: PathBuf,
    log: std::fs::File,
    log_path: PathBuf,
    /// Bytes received but not cleaned yet (an escape sequence cut in two).
    raw: Vec<u8>,
    /// Everything received, cleaned.
    text: Vec<u8>,
    /// Where the next [`Console::wait_for`] starts looking in `text`.
    pos: usize,
    eof: bool,
    start: Instant,
    accel: Accel,
    commands: u32,
    _lock: MutexGuard<'static, ()>,
}

/// A command's output and exit status, from [`Console::run`].
#[derive(Clone, Debug)]
pub struct Output {
    /// What the command printed (cleaned, lines ending in `\n`).
    pub text: String,
    pub status: i32,
}

impl Console {
    /// Boots `vm` with its console on a socket (see the module's doc). The
    /// [`vm_lock`] is taken first and held until the console is dropped.
    pub fn start(vm: &Vm, name: &str, options: Options) -> Result<Console> {
        for f in std::iter::once(&vm.kernel)
            .chain(&vm.initrd)
            .chain(vm.drives.iter().map(|d| &d.path))
        {
            if !f.is_file() {
                bail!("cannot boot the VM: {} does not exist", f.display());
            }
        }
        let log_path = options
            .log
            .clone()
            .unwrap_or_else(|| qemu::test_log_path(name));
        if let Some(dir) = log_path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;

        let lock = vm_lock();
        let accel = match vm.accel {
            Some(a) => a,
            None => Accel::choose(&vm.kernel)?,
        };
        static COUNT: AtomicU32 = AtomicU32::new(0);
        // Unix socket paths are short (108 bytes): the temporary directory.
        let socket = std::env::temp_dir().join(format!(
            "k1os-console-{}-{}.sock",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        let args = console_args(
            vm.qemu_args(accel, &Serial::File("/dev/null".into()))?,
            &socket,
            options.allow_reboot,
        )?;
        let cmd = Cmd::new(QEMU).args(args);
        let display = cmd.display();
        let child = cmd.start_background_duct()?;
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(&socket) {
                Ok(s) => break s,
                Err(err) => {
                    if let Some(out) = child.try_wait()? {
                        bail!(
                            "`{display}` exited ({}) before its console could be connected{}",
                            out.status,
                            tail_block(&String::from_utf8_lossy(&out.stderr), 20)
                        );
                    }
                    if start.elapsed() > CONNECT_TIMEOUT {
                        let _ = child.kill();
                        bail!(
                            "QEMU did not create its console socket {} in time: {err}",
                            socket.display()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        };
        stream.set_read_timeout(Some(Duration::from_millis(50)))?;
        Ok(Console {
            name: name.to_string(),
            child: Some(child),
            stream,
            socket,
            log,
            log_path,
            raw: Vec::new(),
            text: Vec::new(),
            pos: 0,
            eof: false,
            start,
            accel,
            commands: 0,
            _lock: lock,
        })
    }

    /// Reads what has arrived (waiting up to the read timeout); false at the
    /// end (QEMU closed the console).
    fn pump(&mut self) -> Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.eof = true;
                Ok(false)
            }
            Ok(n) => {
                self.log
                    .write_all(&buf[..n])
                    .with_context(|| format!("writing {}", self.log_path.display()))?;
                self.raw.extend_from_slice(&buf[..n]);
                let used = clean(&self.raw, &mut self.text);
                self.raw.drain(..used);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Ok(true),
            Err(e) => Err(e).context("reading the serial console"),
        }
    }

    /// Waits until `pattern` appears after the previous match, and returns the
    /// text from there up to and including it. Fails (with the console's tail)
    /// after `timeout` or when the VM ends first.
    pub fn wait_for(&mut self, pattern: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = find(&self.text[self.pos..], pattern.as_bytes()) {
                let end = self.pos + at + pattern.len();
                let found = String::from_utf8_lossy(&self.text[self.pos..end]).into_owned();
                self.pos = end;
                return Ok(found);
            }
            if !self.pump()? {
                bail!(
                    "{}",
                    self.failure(&format!(
                        "the console closed (QEMU ended) before {pattern:?} appeared"
                    ))
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{}",
                    self.failure(&format!(
                        "{pattern:?} did not appear within {:.0} s",
                        timeout.as_secs_f64()
                    ))
                );
            }
        }
    }

    /// Types `text` as is.
    pub fn send(&mut self, text: &str) -> Result<()> {
        self.stream
            .write_all(text.as_bytes())
            .context("writing to the serial console")?;
        self.stream.flush()?;
        Ok(())
    }

    /// Types `line` and Enter (a carriage return, as a terminal sends it).
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        self.send(&format!("{line}\r"))
    }

    /// Runs `command` in the shell at the console and returns what it printed
    /// and its exit status. The output is framed by two marker lines the shell
    /// prints (`echo`), written so that the terminal's echo of the typed line
    /// cannot match them.
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<Output> {
        self.commands += 1;
        let n = self.commands;
        let begin = format!("K1OS-CMD-{n}-BEGIN");
        let end = format!("K1OS-CMD-{n}-END:");
        self.send_line(&format!(
            "echo 'K1OS-CMD-{n}''-BEGIN'; {command}; echo 'K1OS-CMD-{n}''-END:'$?"
        ))?;
        self.wait_for(&format!("{begin}\n"), timeout)
            .with_context(|| format!("running `{command}` at the console"))?;
        let out = self
            .wait_for(&end, timeout)
            .with_context(|| format!("running `{command}` at the console"))?;
        let text = out[..out.len() - end.len()].to_string();
        let status_line = self.wait_for("\n", timeout)?;
        let status = status_line.trim().parse().with_context(|| {
            self.failure(&format!(
                "`{command}`: no exit status after its end marker: {status_line:?}"
            ))
        })?;
        Ok(Output { text, status })
    }

    /// Like [`Console::run`], but fails unless the command exits with 0.
    pub fn run_ok(&mut self, command: &str, timeout: Duration) -> Result<String> {
        let out = self.run(command, timeout)?;
        if out.status != 0 {
            bail!(
                "{}",
                self.failure(&format!(
                    "`{command}` exited with {}:\n{}",
                    out.status, out.text
                ))
            );
        }
        Ok(out.text)
    }

    /// Waits until QEMU exits by itself (the guest powered off, or rebooted
    /// without [`Options::allow_reboot`]) and returns its exit code; QEMU is
    /// killed and this fails after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Option<i32>> {
        let deadline = Instant::now() + timeout;
        while self.pump()? {
            if Instant::now() > deadline {
                break;
            }
        }
        let child = self.child.as_ref().context("QEMU was already waited for")?;
        loop {
            if let Some(out) = child.try_wait()? {
                let code = out.status.code();
                self.child = None;
                return Ok(code);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!(
                    "{}",
                    self.failure(&format!(
                        "QEMU did not exit within {:.0} s",
                        timeout.as_secs_f64()
                    ))
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the console showed so far, cleaned.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// Since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// A failure message: `what`, the time, the log file and the console's last lines.
    pub fn failure(&self, what: &str) -> String {
        let text = self.transcript();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(FAILURE_TAIL_LINES)..].join("\n");
        format!(
            "{}: {what}\nafter {:.1} s ({:?}); full console log: {}\n--- last {FAILURE_TAIL_LINES} lines of the console ---\n{tail}",
            self.name,
            self.start.elapsed().as_secs_f64(),
            self.accel,
            self.log_path.display()
        )
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            let _ = child.kill();
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// QEMU's arguments for `vm` (made with [`Serial::File`] as a placeholder), with the first serial port on `socket` instead, and
/// without `-no-reboot` when `allow_reboot`.
fn console_args(args: Vec<OsString>, socket: &Path, allow_reboot: bool) -> Result<Vec<OsString>> {
    let socket = socket
        .to_str()
        .context("the socket path is not UTF-8")?
        .replace(',', ",,");
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut it = args.into_iter();
    let mut replaced = false;
    while let Some(a) = it.next() {
        if a == "-serial" && !replaced {
            it.next().context("-serial without a value")?;
            out.push("-chardev".into());
            out.push(format!("socket,id={CHARDEV},path={socket},server=on,wait=on").into());
            out.push("-serial".into());
            out.push(format!("chardev:{CHARDEV}").into());
            replaced = true;
        } else if a == "-no-reboot" && allow_reboot {
            continue;
        } else {
            out.push(a);
        }
    }
    if !replaced {
        bail!("the harness's QEMU arguments have no -serial to replace");
    }
    Ok(out)
}

/// Appends `raw` to `out` without `\r` and terminal escape sequences
/// (`ESC [ params final`, `ESC x`); returns how many bytes of `raw` were used
/// (an escape sequence cut at the end is left for the next call).
fn clean(raw: &[u8], out: &mut Vec<u8>) -> usize {
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' => i += 1,
            0x1b => {
                let Some(&next) = raw.get(i + 1) else {
                    return i;
                };
                if next == b'[' {
                    let mut j = i + 2;
                    while j < raw.len() && (0x20..0x40).contains(&raw[j]) {
                        j += 1;
                    }
                    if j >= raw.len() {
                        return i;
                    }
                    i = j + 1;
                } else {
                    i += 2;
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    i
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_drops_cr_and_escapes_even_when_cut() {
        let mut out = Vec::new();
        let raw = b"root@k1os:~# \x1b[6nls\r\nbin\x1b[";
        let used = clean(raw, &mut out);
        assert_eq!(out, b"root@k1os:~# ls\nbin");
        assert_eq!(&raw[used..], b"\x1b[");
        let mut rest = raw[used..].to_vec();
        rest.extend_from_slice(b"1;32mok\x1b7!");
        let used = clean(&rest, &mut out);
        assert_eq!(used, rest.len());
        assert_eq!(out, b"root@k1os:~# ls\nbinok!");
    }

    #[test]
    fn serial_goes_to_a_socket() {
        let vm = Vm::new("/k");
        let args = vm
            .qemu_args(Accel::Tcg, &Serial::File("/dev/null".into()))
            .unwrap();
        let args = console_args(args, Path::new("/tmp/a,b.sock"), true).unwrap();
        let joined = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            joined.contains("-chardev socket,id=k1os-serial,path=/tmp/a,,b.sock,server=on,wait=on"),
            "{joined}"
        );
        assert!(joined.contains("-serial chardev:k1os-serial"), "{joined}");
        assert!(!joined.contains("file:"), "{joined}");
        assert!(!joined.contains("-no-reboot"), "{joined}");
    }
}
