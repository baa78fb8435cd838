//! QEMU's human monitor (HMP) on a Unix socket: what a person would type at
//! `(qemu)`, for the tests that act on the machine rather than the guest —
//! screenshots (`screendump`), keys on the emulated keyboard (`sendkey`),
//! devices plugged in while the guest runs (`device_add`).
//!
//! QEMU creates the socket (`server=on,wait=off`) when it starts; the first
//! command connects. Each command's reply is what QEMU prints before its
//! next `(qemu) ` prompt, cleaned of the line editor's escape sequences and
//! of the echoed command.
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::console::Transcript;

/// How long QEMU gets to create the socket, and to answer one command.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The prompt after each reply.
const PROMPT: &str = "(qemu) ";
/// Between two keys: a guest polling its keyboard (GRUB) needs the gap.
const KEY_PAUSE: Duration = Duration::from_millis(100);

/// A running VM's monitor.
pub struct Monitor {
    path: PathBuf,
    stream: Option<UnixStream>,
}

/// A fresh Unix socket path for QEMU to listen on, `k1os-<kind>-<pid>-<n>.sock`
/// in the temporary directory (socket paths are short: 108 bytes), with
/// nothing left there from an earlier run.
pub(super) fn socket_path(kind: &str) -> PathBuf {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "k1os-{kind}-{}-{}.sock",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    path
}

impl Monitor {
    /// A fresh socket path in the temporary directory (Unix socket paths are
    /// short: 108 bytes).
    pub(super) fn new() -> Monitor {
        Monitor {
            path: socket_path("monitor"),
            stream: None,
        }
    }

    /// Where QEMU listens.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&mut self) -> Result<&mut UnixStream> {
        if self.stream.is_none() {
            let deadline = Instant::now() + TIMEOUT;
            let stream = loop {
                match UnixStream::connect(&self.path) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() > deadline => {
                        return Err(e).with_context(|| {
                            format!("connecting to QEMU's monitor at {}", self.path.display())
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            stream.set_read_timeout(Some(Duration::from_millis(100)))?;
            self.stream = Some(stream);
            // The banner, up to the first prompt.
            self.read_reply("connecting")?;
        }
        Ok(self.stream.as_mut().expect("connected above"))
    }

    /// Reads through the next prompt; returns the cleaned text before it.
    fn read_reply(&mut self, what: &str) -> Result<String> {
        let stream = self.stream.as_mut().expect("connected");
        let mut text = Transcript::default();
        let deadline = Instant::now() + TIMEOUT;
        let mut buf = [0u8; 4096];
        loop {
            if let Some(reply) = text.take_through(PROMPT) {
                return Ok(reply[..reply.len() - PROMPT.len()].to_string());
            }
            if Instant::now() > deadline {
                bail!(
                    "QEMU's monitor did not answer `{what}` within {} s; it said: {:?}",
                    TIMEOUT.as_secs(),
                    text.text()
                );
            }
            match stream.read(&mut buf) {
                Ok(0) => bail!("QEMU's monitor closed during `{what}` (QEMU ended)"),
                Ok(n) => text.push(&buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock
                            | std::io::ErrorKind::TimedOut
                            | std::io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("reading the monitor's reply to `{what}`"));
                }
            }
        }
    }

    /// Runs one monitor command and returns what QEMU printed for it.
    pub fn command(&mut self, command: &str) -> Result<String> {
        if command.contains('\n') {
            bail!("a monitor command is one line: {command:?}");
        }
        let stream = self.connect()?;
        stream
            .write_all(format!("{command}\n").as_bytes())
            .with_context(|| format!("sending `{command}` to QEMU's monitor"))?;
        let reply = self.read_reply(command)?;
        // The line editor echoes the command first.
        Ok(match reply.split_once('\n') {
            Some((_echo, rest)) => rest.to_string(),
            None => String::new(),
        })
    }

    /// Runs a command that prints nothing when it works; fails with what
    /// QEMU said otherwise.
    pub fn command_quiet(&mut self, command: &str) -> Result<()> {
        let reply = self.command(command)?;
        if !reply.trim().is_empty() {
            bail!("QEMU's monitor refused `{command}`: {}", reply.trim());
        }
        Ok(())
    }

    /// Saves what the screen shows now as a binary PPM (`P6`) at `path`.
    pub fn screendump(&mut self, path: &Path) -> Result<()> {
        let Some(s) = path.to_str().filter(|s| !s.contains(char::is_whitespace)) else {
            bail!(
                "{}: QEMU's monitor takes a screenshot path without spaces, in UTF-8",
                path.display()
            );
        };
        let _ = std::fs::remove_file(path);
        self.command_quiet(&format!("screendump {s}"))?;
        if !path.is_file() {
            bail!("`screendump` wrote no {}", path.display());
        }
        Ok(())
    }

    /// Presses each of `keys` (QEMU's key names: `ret`, `down`,
    /// `ctrl-alt-delete`…) in turn.
    pub fn send_keys(&mut self, keys: &[&str]) -> Result<()> {
        for key in keys {
            self.command_quiet(&format!("sendkey {key}"))?;
            std::thread::sleep(KEY_PAUSE);
        }
        Ok(())
    }

    /// Types `text` on the keyboard (US layout; `\n` is Enter). Characters
    /// without a key here are refused before anything is typed.
    pub fn type_text(&mut self, text: &str) -> Result<()> {
        let keys: Vec<String> = text
            .chars()
            .map(|c| key_for(c).with_context(|| format!("no key types {c:?} (in {text:?})")))
            .collect::<Result<_>>()?;
        for key in &keys {
            self.command_quiet(&format!("sendkey {key}"))?;
        }
        Ok(())
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// QEMU's `sendkey` name for a character on a US keyboard.
fn key_for(c: char) -> Option<String> {
    let shifted = |k: &str| Some(format!("shift-{k}"));
    match c {
        'a'..='z' | '0'..='9' => Some(c.to_string()),
        'A'..='Z' => shifted(&c.to_ascii_lowercase().to_string()),
        ' ' => Some("spc".into()),
        '\n' => Some("ret".into()),
        '-' => Some("minus".into()),
        '_' => shifted("minus"),
        '=' => Some("equal".into()),
        '+' => shifted("equal"),
        '.' => Some("dot".into()),
        '>' => shifted("dot"),
        ',' => Some("comma".into()),
        '<' => shifted("comma"),
        '/' => Some("slash".into()),
        '?' => shifted("slash"),
        ';' => Some("semicolon".into()),
        ':' => shifted("semicolon"),
        '\'' => Some("apostrophe".into()),
        '"' => shifted("apostrophe"),
        '|' => shifted("backslash"),
        '\\' => Some("backslash".into()),
        '&' => shifted("7"),
        '$' => shifted("4"),
        '*' => shifted("8"),
        '(' => shifted("9"),
        ')' => shifted("0"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_become_sendkey_names() {
        let keys: Vec<String> = "cat /dev/vcs1 > A_b\n"
            .chars()
            .map(|c| key_for(c).unwrap())
            .collect();
        assert_eq!(
            keys.join(" "),
            "c a t spc slash d e v slash v c s 1 spc shift-dot spc shift-a shift-minus b ret"
        );
        assert_eq!(key_for('é'), None);
    }
}
