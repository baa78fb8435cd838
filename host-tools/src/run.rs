//! Every external program runs through here. A program that is missing names
//! its Debian package; one that fails names its command line, exit status and
//! the tail of its output.
use anyhow::{Context, Result, anyhow, bail};
use std::ffi::OsString;
use std::path::Path;

use crate::{doctor, ui};

/// How many lines of a failing command's output an error shows.
const TAIL_LINES: usize = 20;

/// An external command, built like `std::process::Command`.
pub struct Cmd {
    program: String,
    args: Vec<OsString>,
    dir: Option<std::path::PathBuf>,
    env: Vec<(OsString, OsString)>,
}

impl Cmd {
    pub fn new(program: &str) -> Cmd {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
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
        self.env.push((key.into(), value.into()));
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
            expr = expr.env(k, v);
        }
        Ok(expr)
    }

    /// Runs it; stdout and stderr are captured and shown only on failure.
    pub fn run(&self) -> Result<()> {
        self.output().map(|_| ())
    }

    /// Runs it and returns its stdout (stderr is shown only on failure).
    pub fn read(&self) -> Result<String> {
        self.output()
    }

    fn output(&self) -> Result<String> {
        let out = self
            .expression()?
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("could not start `{}`", self.display()))?;
        if !out.status.success() {
            let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
            if text.trim().is_empty() {
                text = String::from_utf8_lossy(&out.stdout).into_owned();
            }
            bail!(
                "`{}` failed ({}){}",
                self.display(),
                out.status,
                tail_block(&text, TAIL_LINES)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs it and returns what it did, whatever its exit status: for callers
    /// that read a failing program's output (`apt-get -s` explains a conflict
    /// on stdout and exits 100).
    pub fn output_unchecked(&self) -> Result<Output> {
        let out = self
            .expression()?
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .with_context(|| format!("could not start `{}`", self.display()))?;
        Ok(Output {
            success: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
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
            .unchecked()
            .run()
            .with_context(|| format!("could not start `{}`", self.display()))?
            .status;
        if !status.success() {
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
            .unchecked()
            .run()
            .with_context(|| format!("could not start `{}`", self.display()))?
            .status;
        if !status.success() {
            bail!("`{}` failed ({status})", self.display());
        }
        Ok(())
    }

    /// Starts it in the background (QEMU): no stdin, stdout discarded, stderr
    /// captured for the caller's error message; exit status not checked.
    pub fn start_background(&self) -> Result<duct::Handle> {
        self.expression()?
            .stdin_null()
            .stdout_null()
            .stderr_capture()
            .unchecked()
            .start()
            .with_context(|| format!("could not start `{}`", self.display()))
    }

    /// The duct expression, for callers that manage the process themselves
    /// (QEMU with a timeout). The program is checked first.
    pub fn into_expression(self) -> Result<duct::Expression> {
        self.expression()
    }
}

/// What a command run with [`Cmd::output_unchecked`] did.
#[derive(Debug, Clone)]
pub struct Output {
    pub success: bool,
    /// `exit status: 100`, for messages.
    pub status: String,
    pub stdout: String,
    pub stderr: String,
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
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin"].map(std::path::PathBuf::from);
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
