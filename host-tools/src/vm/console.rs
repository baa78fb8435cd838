//! A running VM's serial console, driven like a user at a terminal.
//!
//! QEMU serves the console on a Unix socket and waits (`wait=on`) until this
//! side connects, so nothing is lost. Everything received is appended raw to
//! the log file and kept, cleaned of `\r` and terminal escape sequences
//! (GRUB's and OVMF's menu drawing, busybox ash's `ESC[6n` after each
//! prompt), in a [`Transcript`] that waits match against.
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use super::args::Serial;
use super::log::{self, BootLog, KERNEL_POWER_DOWN, Outcome};
use super::{Accel, Machine, Monitor, Running};
use crate::iso;

/// How long QEMU gets to create the console socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one read of the console waits for bytes.
const READ_TIMEOUT: Duration = Duration::from_millis(50);
/// How long GRUB gets to take each key (it reads the serial port between
/// redraws).
const KEY_PAUSE: Duration = Duration::from_millis(300);

/// Everything a console showed, cleaned, and a cursor: each match looks
/// only after the previous one.
#[derive(Default)]
pub struct Transcript {
    /// Received but not cleaned yet (an escape sequence cut in two).
    pending: Vec<u8>,
    text: Vec<u8>,
    cursor: usize,
}

impl Transcript {
    /// Appends received bytes.
    pub fn push(&mut self, raw: &[u8]) {
        self.pending.extend_from_slice(raw);
        let used = clean(&self.pending, &mut self.text);
        self.pending.drain(..used);
    }

    /// Everything so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.text).into_owned()
    }

    /// Finds `needle` after the cursor: moves the cursor past it and returns
    /// the text from the old cursor through the match.
    pub fn take_through(&mut self, needle: &str) -> Option<String> {
        let at = find(&self.text[self.cursor..], needle.as_bytes())?;
        let end = self.cursor + at + needle.len();
        let taken = String::from_utf8_lossy(&self.text[self.cursor..end]).into_owned();
        self.cursor = end;
        Some(taken)
    }
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

/// What a shell command printed and its exit status ([`Console::run`]).
#[derive(Clone, Debug)]
pub struct CommandOutput {
    /// Cleaned, lines ending in `\n`.
    pub text: String,
    pub status: i32,
}

/// How a wait ended.
enum Waited {
    /// The text from the cursor through the match.
    Found(String),
    /// The console closed: QEMU ended.
    Closed,
    TimedOut,
}

/// A running VM and its serial console. Dropping it kills QEMU (and
/// releases the VM lock).
pub struct Console {
    vm: Running,
    stream: UnixStream,
    log: std::fs::File,
    transcript: Transcript,
    /// The console closed (QEMU ended).
    closed: bool,
    /// Shell commands run so far (numbers their markers).
    commands: u32,
    monitor: Monitor,
}

impl Console {
    /// Starts QEMU for `machine` under `accel` and connects to its console.
    /// `lock`: the VM lock, held until the console is dropped (`None`: the
    /// caller holds it).
    pub(super) fn spawn(
        machine: &Machine,
        name: &str,
        log_path: &Path,
        accel: Accel,
        lock: Option<MutexGuard<'static, ()>>,
    ) -> Result<Console> {
        let socket = super::monitor::socket_path("console");
        let monitor = Monitor::new();
        let mut vm = Running::spawn(
            machine,
            name,
            log_path,
            accel,
            lock,
            &Serial::Socket {
                console: &socket,
                monitor: Some(monitor.path()),
            },
        )?;
        let stream = connect(&mut vm, &socket);
        // Connected (or failed): the path is no longer needed.
        let _ = std::fs::remove_file(&socket);
        let stream = stream?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        Ok(Console {
            vm,
            stream,
            log,
            transcript: Transcript::default(),
            closed: false,
            commands: 0,
            monitor,
        })
    }

    /// Reads what has arrived (waiting up to [`READ_TIMEOUT`]); false once
    /// the console has closed.
    fn pump(&mut self) -> Result<bool> {
        if self.closed {
            return Ok(false);
        }
        let mut buf = [0u8; 4096];
        match self.stream.read(&mut buf) {
            Ok(0) => {
                self.closed = true;
                Ok(false)
            }
            Ok(n) => {
                self.log
                    .write_all(&buf[..n])
                    .with_context(|| format!("writing {}", self.vm.log_path().display()))?;
                self.transcript.push(&buf[..n]);
                Ok(true)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                Ok(true)
            }
            Err(e) => Err(e).context("reading the serial console"),
        }
    }

    fn wait_until(&mut self, needle: &str, deadline: Instant) -> Result<Waited> {
        loop {
            if let Some(found) = self.transcript.take_through(needle) {
                return Ok(Waited::Found(found));
            }
            if !self.pump()? {
                // Reaped, so that messages have QEMU's status and stderr.
                self.vm.wait(Instant::now() + Duration::from_secs(5))?;
                return Ok(Waited::Closed);
            }
            if Instant::now() > deadline {
                return Ok(Waited::TimedOut);
            }
        }
    }

    /// Waits until `needle` appears after the previous match, and returns the
    /// text from there through it. Fails (with the console's tail) after
    /// `timeout` or when QEMU ends first.
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String> {
        match self.wait_until(needle, Instant::now() + timeout)? {
            Waited::Found(text) => Ok(text),
            Waited::Closed => bail!(
                "{}",
                self.failure(&format!("QEMU ended before {needle:?} appeared"))
            ),
            Waited::TimedOut => bail!(
                "{}",
                self.failure(&format!(
                    "{needle:?} did not appear within {:.0} s",
                    timeout.as_secs_f64()
                ))
            ),
        }
    }

    /// Reads until a line contains `marker` (then stops QEMU), QEMU exits, or
    /// `deadline` (then kills it).
    pub(super) fn run_until(&mut self, marker: &str, deadline: Instant) -> Result<Outcome> {
        match self.wait_until(marker, deadline)? {
            Waited::Found(_) => {
                self.vm.kill(Outcome::Stopped)?;
                Ok(Outcome::Stopped)
            }
            Waited::Closed => self.vm.wait(deadline),
            Waited::TimedOut => {
                self.vm.kill(Outcome::TimedOut)?;
                Ok(Outcome::TimedOut)
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
    pub fn run(&mut self, command: &str, timeout: Duration) -> Result<CommandOutput> {
        self.commands += 1;
        let n = self.commands;
        let begin = format!("K1OS-CMD-{n}-BEGIN\n");
        let end = format!("K1OS-CMD-{n}-END:");
        self.send_line(&format!(
            "echo 'K1OS-CMD-{n}''-BEGIN'; {command}; echo 'K1OS-CMD-{n}''-END:'$?"
        ))?;
        let context = || format!("running `{command}` at the console");
        self.wait_for(&begin, timeout).with_context(context)?;
        let out = self.wait_for(&end, timeout).with_context(context)?;
        let text = out[..out.len() - end.len()].to_string();
        let status_line = self.wait_for("\n", timeout).with_context(context)?;
        let status = status_line.trim().parse().with_context(|| {
            self.failure(&format!(
                "`{command}`: no exit status after its end marker: {status_line:?}"
            ))
        })?;
        Ok(CommandOutput { text, status })
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

    /// Waits until a shell answers: `echo` with arithmetic, so the answer
    /// never matches the echoed command, retried every few seconds (keys
    /// typed before the shell reads its terminal may be lost).
    pub fn wait_for_shell(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            self.send_line("echo K1OS-SHELL-$((6*7))")?;
            let wait = Instant::now() + Duration::from_secs(5);
            match self.wait_until("K1OS-SHELL-42", wait.min(deadline))? {
                Waited::Found(_) => return Ok(()),
                Waited::Closed => bail!("{}", self.failure("QEMU ended before a shell answered")),
                Waited::TimedOut if Instant::now() >= deadline => bail!(
                    "{}",
                    self.failure(&format!(
                        "no shell answered within {:.0} s",
                        timeout.as_secs_f64()
                    ))
                ),
                Waited::TimedOut => {}
            }
        }
    }

    /// Waits for GRUB's menu (its last entry drawn), then chooses the entry
    /// titled `title` (one of [`iso::menu_entries`]) with Down and Enter.
    pub fn select_entry(&mut self, title: &str, timeout: Duration) -> Result<()> {
        let (index, last) = menu_position(title)?;
        self.wait_for(last, timeout)
            .context("waiting for GRUB's menu")?;
        for _ in 0..index {
            self.send("\x1b[B")?;
            std::thread::sleep(KEY_PAUSE);
        }
        self.send("\r")
    }

    /// Waits until QEMU exits by itself (the guest powered off, or rebooted
    /// without [`Machine::allow_reboot`]), reading the console meanwhile;
    /// kills it at `timeout` ([`Outcome::TimedOut`]).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<Outcome> {
        let deadline = Instant::now() + timeout;
        while self.pump()? {
            if Instant::now() > deadline {
                break;
            }
        }
        self.vm.wait(deadline)
    }

    /// `poweroff` at the shell, then waits for QEMU to exit with status 0
    /// after the kernel's power-down line.
    pub fn power_off(&mut self, timeout: Duration) -> Result<()> {
        self.send_line("poweroff")?;
        let outcome = self.wait_exit(timeout)?;
        if outcome != Outcome::Exited(Some(0)) || !self.transcript().contains(KERNEL_POWER_DOWN) {
            bail!("{}", self.failure("the guest did not power off"));
        }
        Ok(())
    }

    /// The run as a [`BootLog`], once it has ended with `outcome` (e.g. what
    /// [`Console::wait_exit`] returned): for a test that acted on the
    /// machine while it ran and then asserts on the whole log.
    pub fn into_log(self, outcome: Outcome, timeout: Duration) -> Result<BootLog> {
        let text = self.transcript();
        if let Outcome::Exited(code) = outcome
            && code != Some(0)
            && text.trim().is_empty()
        {
            return Err(self.vm.early_exit("the guest printed anything"));
        }
        Ok(BootLog {
            name: self.vm.name().to_string(),
            text,
            outcome,
            elapsed: self.vm.elapsed(),
            timeout,
            log_path: self.vm.log_path().to_path_buf(),
            qemu_stderr: self.vm.stderr().to_string(),
            accel: self.vm.accel(),
        })
    }

    /// QEMU's monitor: the machine's screen, keyboard and devices.
    pub fn monitor(&mut self) -> &mut Monitor {
        &mut self.monitor
    }

    /// Everything the console showed so far, cleaned.
    pub fn transcript(&self) -> String {
        self.transcript.text()
    }

    pub fn log_path(&self) -> &Path {
        self.vm.log_path()
    }

    pub fn accel(&self) -> Accel {
        self.vm.accel()
    }

    /// Since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.vm.elapsed()
    }

    /// A failure message ([`log::failure`]) about this run so far.
    pub fn failure(&self, what: &str) -> String {
        let ended = match self.vm.outcome() {
            Some(outcome) => outcome.describe(self.vm.elapsed(), None),
            None => format!(
                "QEMU still running after {:.1} s",
                self.vm.elapsed().as_secs_f64()
            ),
        };
        log::failure(
            self.vm.name(),
            what,
            &ended,
            self.vm.accel(),
            self.vm.log_path(),
            &self.transcript(),
            self.vm.stderr(),
        )
    }
}

/// Connects to the console socket `vm`'s QEMU creates; fails when QEMU
/// exits first or takes longer than [`CONNECT_TIMEOUT`].
fn connect(vm: &mut Running, socket: &Path) -> Result<UnixStream> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    loop {
        match UnixStream::connect(socket) {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                if vm.poll()?.is_some() {
                    return Err(vm.early_exit("its console could be connected"));
                }
                if Instant::now() > deadline {
                    vm.kill(Outcome::TimedOut)?;
                    return Err(vm.early_exit(&format!(
                        "it created its console socket {} within {CONNECT_TIMEOUT:?} ({err})",
                        socket.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Where `title` is in GRUB's menu ([`iso::menu_entries`]), and the title
/// drawn last (the menu is complete once it shows).
pub(super) fn menu_position(title: &str) -> Result<(usize, &'static str)> {
    let entries = iso::menu_entries();
    let last = entries.last().context("the menu has no entries")?.title;
    match entries.iter().position(|e| e.title == title) {
        Some(index) => Ok((index, last)),
        None => {
            let titles: Vec<&str> = entries.iter().map(|e| e.title).collect();
            bail!("no GRUB menu entry is titled {title:?} (the menu: {titles:?})")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleaning_drops_cr_and_escapes_even_when_cut() {
        let mut t = Transcript::default();
        t.push(b"root@k1os:~# \x1b[6nls\r\nbin\x1b[");
        assert_eq!(t.text(), "root@k1os:~# ls\nbin");
        t.push(b"1;32mok\x1b7!");
        assert_eq!(t.text(), "root@k1os:~# ls\nbinok!");
        t.push(b"\x1b");
        t.push(b"[2J\x1b[1;1H  K1OS (RAM mode)\x1b[0m\x1bc");
        assert_eq!(t.text(), "root@k1os:~# ls\nbinok!  K1OS (RAM mode)");
    }

    #[test]
    fn matches_move_a_cursor() {
        let mut t = Transcript::default();
        t.push(b"one\ntwo\none\n");
        assert_eq!(t.take_through("one").as_deref(), Some("one"));
        assert_eq!(t.take_through("one").as_deref(), Some("\ntwo\none"));
        assert_eq!(t.take_through("one"), None);
        t.push(b"three");
        assert_eq!(t.take_through("ee").as_deref(), Some("\nthree"));
    }

    #[test]
    fn menu_entries_by_title() {
        assert_eq!(
            menu_position(iso::TITLE_AUTO).unwrap(),
            (0, iso::TITLE_DEBUG)
        );
        assert_eq!(menu_position(iso::TITLE_RAM).unwrap().0, 1);
        let err = menu_position("K1OS (typo)").unwrap_err().to_string();
        assert!(
            err.contains("no GRUB menu entry is titled \"K1OS (typo)\""),
            "{err}"
        );
    }
}
