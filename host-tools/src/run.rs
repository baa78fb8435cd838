//! Every external program runs through here: [`Cmd`] runs it to the end
//! (checked, unchecked or with the terminal), [`Child`] is one running in the
//! background. A program that is missing names its Debian package; one that
//! fails names its command line, exit status and the tail of its output.
//!
//! Nothing else in `host-tools/src` uses `duct` or `std::process::Command`
//! (`ci/test.sh` checks it); tests may.
use anyhow::{Context, Result, anyhow, bail};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{doctor, ui};

/// How many lines of a failing command's output an error shows.
pub const TAIL_LINES: usize = 20;

/// An external command, built like `std::process::Command`.
pub struct Cmd {
    program: String,
    args: Vec<OsString>,
    dir: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Stdin,
    /// Exit codes that count as success (default: 0).
    accepted: Vec<i32>,
}

/// What a command reads.
enum Stdin {
    /// This process's stdin.
    Inherit,
    /// `/dev/null`: the command cannot wait for an answer.
    Null,
    Bytes(Vec<u8>),
}

impl Cmd {
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            stdin: Stdin::Inherit,
            accepted: vec![0],
        }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Cmd {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Runs it without `key` in its environment.
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Cmd {
        self.env.push((key.into(), None));
        self
    }

    /// Its stdin is `/dev/null` (by default it is this process's).
    pub fn stdin_null(mut self) -> Cmd {
        self.stdin = Stdin::Null;
        self
    }

    /// Its stdin is `bytes`.
    pub fn stdin_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Stdin::Bytes(bytes.into());
        self
    }

    /// Exit codes that mean success (`e2fsck -y`: `&[0, 1]`, 1 being
    /// "errors corrected"); 0 alone by default.
    pub fn accept_codes(mut self, codes: &[i32]) -> Cmd {
        self.accepted = codes.to_vec();
        self
    }

    /// The command line as a user would type it, for messages: words
    /// shell-quoted ([`quote`]), so it can be pasted into a shell.
    pub fn display(&self) -> String {
        let mut s = quote(&self.program).into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&quote(&a.to_string_lossy()));
        }
        s
    }

    fn expression(&self) -> Result<duct::Expression> {
        check_program(&self.program)?;
        ui::detail(&self.display());
        // Resolved here so that programs in /usr/sbin run even when PATH lacks it.
        let program = which(&self.program).unwrap_or_else(|| self.program.clone().into());
        let mut expr = duct::cmd(program, &self.args);
        if let Some(dir) = &self.dir {
            expr = expr.dir(dir);
        }
        for (k, v) in &self.env {
            expr = match v {
                Some(v) => expr.env(k, v),
                None => expr.env_remove(k),
            };
        }
        expr = match &self.stdin {
            Stdin::Inherit => expr,
            Stdin::Null => expr.stdin_null(),
            Stdin::Bytes(bytes) => expr.stdin_bytes(bytes.clone()),
        };
        Ok(expr.unchecked())
    }

    fn accepts(&self, status: std::process::ExitStatus) -> bool {
        status.code().is_some_and(|c| self.accepted.contains(&c))
    }

    /// Runs it; stdout and stderr are captured and shown only on failure.
    pub fn run(&self) -> Result<()> {
        self.read().map(|_| ())
    }

    /// Runs it and returns its stdout (stderr is shown only on failure).
    pub fn read(&self) -> Result<String> {
        let out = self.output_unchecked()?;
        if !out.success {
            let text = if out.stderr.trim().is_empty() {
                &out.stdout
            } else {
                &out.stderr
            };
            bail!(
                "`{}` failed ({}){}",
                self.display(),
                out.status,
                tail_block(text, TAIL_LINES)
            );
        }
        Ok(out.stdout)
    }

    /// Runs it and returns what it did, whatever its exit status: for callers
    /// that read a failing program's output (`apt-get -s` explains a conflict
    /// on stdout and exits 100).
    pub fn output_unchecked(&self) -> Result<Output> {
        let out = self
            .expression()?
            .stdout_capture()
            .stderr_capture()
            .run()
            .with_context(|| format!("could not start `{}`", self.display()))?;
        Ok(Output::new(self.accepts(out.status), &out))
    }

    /// Runs it with output going to `log` (stdout and stderr both); on failure
    /// the error shows the log's tail and where the full log is.
    pub fn run_logged(&self, log: &Path) -> Result<()> {
        let file =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let status = self
            .expression()?
            .stderr_to_stdout()
            .stdout_file(file)
            .run()
            .with_context(|| format!("could not start `{}`", self.display()))?
            .status;
        if !self.accepts(status) {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "`{}` failed ({status}); full log: {}{}",
                self.display(),
                log.display(),
                tail_block(&text, TAIL_LINES)
            );
        }
        Ok(())
    }

    /// Runs it with the terminal attached (interactive QEMU, apt-get).
    pub fn run_interactive(&self) -> Result<()> {
        let status = self
            .expression()?
            .run()
            .with_context(|| format!("could not start `{}`", self.display()))?
            .status;
        if !self.accepts(status) {
            bail!("`{}` failed ({status})", self.display());
        }
        Ok(())
    }

    /// Starts it in the background (QEMU): stdin `/dev/null` (unless
    /// [`Cmd::stdin_bytes`]), stdout discarded, stderr kept for the caller's
    /// messages.
    pub fn start_background(&self) -> Result<Child> {
        let mut expr = self.expression()?;
        if let Stdin::Inherit = self.stdin {
            expr = expr.stdin_null();
        }
        let handle = expr
            .stdout_null()
            .stderr_capture()
            .start()
            .with_context(|| format!("could not start `{}`", self.display()))?;
        Ok(Child {
            handle,
            display: self.display(),
        })
    }
}

/// What a command did: [`Cmd::output_unchecked`], or a [`Child`] that ended.
#[derive(Debug, Clone)]
pub struct Output {
    /// Its exit code is one the command accepts (0 unless
    /// [`Cmd::accept_codes`] says more).
    pub success: bool,
    /// `None` when a signal ended it.
    pub code: Option<i32>,
    /// `exit status: 100`, for messages.
    pub status: String,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    fn new(success: bool, out: &std::process::Output) -> Output {
        Output {
            success,
            code: out.status.code(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The last `n` lines of its stderr as a block for a message ([`tail_block`]).
    pub fn stderr_tail(&self, n: usize) -> String {
        tail_block(&self.stderr, n)
    }
}

/// A program running in the background ([`Cmd::start_background`]). Dropping
/// it does not stop the program: call [`Child::kill`].
pub struct Child {
    handle: duct::Handle,
    display: String,
}

impl Child {
    /// Its command line, for messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// What it did, if it has ended; never blocks.
    pub fn try_wait(&self) -> Result<Option<Output>> {
        let out = self
            .handle
            .try_wait()
            .with_context(|| format!("waiting for `{}`", self.display))?;
        Ok(out.map(|o| Output::new(o.status.success(), o)))
    }

    /// What it did, once it ends; `None` if it is still running after `timeout`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<Option<Output>> {
        let out = self
            .handle
            .wait_timeout(timeout)
            .with_context(|| format!("waiting for `{}`", self.display))?;
        Ok(out.map(|o| Output::new(o.status.success(), o)))
    }

    /// Kills it (if it still runs) and waits for it: what it did.
    pub fn kill(&self) -> Result<Output> {
        if let Some(out) = self.try_wait()? {
            return Ok(out);
        }
        self.handle
            .kill()
            .with_context(|| format!("killing `{}`", self.display))?;
        let out = self
            .handle
            .wait()
            .with_context(|| format!("waiting for `{}` after killing it", self.display))?;
        Ok(Output::new(false, out))
    }
}

/// `word` as a POSIX shell reads it back: unchanged when it has only
/// characters no shell treats specially, else in single quotes (a `'` inside
/// becomes `'\''`). The empty word is `''`.
pub fn quote(word: &str) -> std::borrow::Cow<'_, str> {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        word.into()
    } else {
        format!("'{}'", word.replace('\'', r"'\''")).into()
    }
}

/// `\n--- last N lines ---\n…` for an error message, or nothing for empty text.
pub fn tail_block(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(n);
    format!(
        "\n--- last {} lines of output ---\n{}",
        lines.len() - start,
        lines[start..].join("\n")
    )
}

/// Finds `program` on PATH; when missing, the error names its Debian package.
pub fn check_program(program: &str) -> Result<()> {
    if program.contains('/') || which(program).is_some() {
        return Ok(());
    }
    Err(match doctor::package_of(program) {
        Some(pkg) => anyhow!(
            "`{program}` is not installed: it comes with the Debian package `{pkg}` \
             (run `host-tools doctor --install`, or `apt-get install {pkg}`)"
        ),
        None => anyhow!("`{program}` is not installed (not found on PATH)"),
    })
}

/// The full path of `program` on PATH (plus the sbin directories, which a
/// non-root PATH may lack but Debian puts mkfs.* and friends in).
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_leaves_plain_words_and_quotes_the_rest() {
        for (word, quoted) in [
            ("mkfs.ext4", "mkfs.ext4"),
            ("-L", "-L"),
            ("O=/tmp/k1os/build-1", "O=/tmp/k1os/build-1"),
            (
                "mp/.with space.img.raw.partial",
                "'mp/.with space.img.raw.partial'",
            ),
            ("", "''"),
            ("it's", r"'it'\''s'"),
            ("$HOME", "'$HOME'"),
            ("a;b|c&d", "'a;b|c&d'"),
            ("~/x", "'~/x'"),
            ("*.img", "'*.img'"),
            ("line\nbreak", "'line\nbreak'"),
        ] {
            assert_eq!(quote(word), quoted, "{word:?}");
        }
        let cmd = Cmd::new("mkfs.ext4").args(["-L", "K1OS-DATA", "a b.img"]);
        assert_eq!(cmd.display(), "mkfs.ext4 -L K1OS-DATA 'a b.img'");
    }

    #[test]
    fn a_shell_reads_quoted_words_back() {
        let words = [
            "plain",
            "with space",
            "it's",
            "$HOME `x` \"y\"",
            "",
            "a\nb",
            "*",
        ];
        let line: Vec<String> = words.iter().map(|w| quote(w).into_owned()).collect();
        let out = Cmd::new("sh")
            .arg("-c")
            .arg(format!(
                "for w in {}; do printf '[%s]' \"$w\"; done",
                line.join(" ")
            ))
            .read()
            .unwrap();
        let expected: String = words.iter().map(|w| format!("[{w}]")).collect();
        assert_eq!(out, expected);
    }
}
