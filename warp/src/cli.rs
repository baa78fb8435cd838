//! What the commands share: printing results, turning lexopt's errors into
//! usage errors, taking the lock (and recovering first), and loading the
//! repositories with their verified indexes.
use std::fmt;
use std::io::Write;

use crate::config::{self, Repo};
use crate::context::Ctx;
use crate::error::{Code, Error, Result};
use crate::repos::{self, RepoIndex};
use crate::txn::{self, Lock};

/// Writes a result to stdout. A closed pipe (`warp list | head`) ends warp
/// quietly, as SIGPIPE would end a C program, instead of a panic.
pub fn out(text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Error::failure(format!("writing to stdout: {e}"))),
    }
}

/// [`out`] with a line end.
pub fn outln(line: fmt::Arguments<'_>) -> Result<()> {
    out(&format!("{line}\n"))
}

/// A lexopt error as a usage error naming the command.
pub fn usage(command: &str) -> impl Fn(lexopt::Error) -> Error + '_ {
    move |e| Error::usage(format!("{command}: {e} (see warp {command} --help)"))
}

/// An argument that must be UTF-8 text.
pub fn text(command: &str, value: std::ffi::OsString) -> Result<String> {
    value.into_string().map_err(|v| {
        Error::usage(format!(
            "{command}: `{}` is not UTF-8 text",
            v.to_string_lossy()
        ))
    })
}

/// Takes warp's lock and finishes or undoes an interrupted transaction, as
/// every command does before it reads or changes the installed state.
pub fn lock_and_recover(ctx: &Ctx) -> Result<Lock> {
    let lock = txn::lock(ctx)?;
    if let Some(what) = txn::recover(&ctx.layout, &lock)? {
        ctx.info(&format!("warp: recovered: {what}"));
    }
    Ok(lock)
}

/// For the commands that only read (search, info, list, history): the lock
/// and recovery when the lock is free. While another warp holds it, or when
/// the state cannot be written (a user who is not root), they read the last
/// committed state instead of failing: every state file is replaced
/// atomically, so what they read is whole.
pub fn lock_to_read(ctx: &Ctx) -> Result<Option<Lock>> {
    match lock_and_recover(ctx) {
        Ok(lock) => Ok(Some(lock)),
        Err(e) if e.code == Code::Locked => {
            ctx.info("warp: another warp is running: showing the state before its transaction");
            Ok(None)
        }
        Err(e) if e.code == Code::Failure && !ctx.layout.journal().exists() => {
            ctx.detail(&format!("reading without the lock: {e}"));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The repositories and every stored verified index.
#[derive(Default)]
pub struct Sources {
    pub repos: Vec<Repo>,
    pub indexes: Vec<RepoIndex>,
}

impl Sources {
    pub fn load(ctx: &Ctx) -> Result<Sources> {
        let (repos, _) = config::load_repositories(&ctx.layout)?;
        let keys = config::load_keys(ctx)?;
        let indexes = repos::load_all(ctx, &repos, &config::public_keys(&keys))?;
        Ok(Sources { repos, indexes })
    }

    pub fn repo(&self, name: &str) -> Option<&Repo> {
        self.repos.iter().find(|r| r.name == name)
    }
}

/// Stage 1's boot record says `mode=ram`: the upper layer is a tmpfs. The
/// record is `key=value` lines (`docs/boot-contract.md`, "What stage 2
/// finds"; the key is `boot_file::MODE` of `init-nostd/src/contract.rs`,
/// the value `persist` or `ram`, never `auto`). No record (not K1OS, or
/// `--root`) is not RAM mode.
pub fn ram_mode(ctx: &Ctx) -> bool {
    std::fs::read_to_string(ctx.layout.boot_record())
        .is_ok_and(|s| s.lines().any(|l| l.trim() == "mode=ram"))
}

/// The RAM-mode warning of install and upgrade.
pub fn warn_ram_mode(ctx: &Ctx) {
    if ram_mode(ctx) {
        ctx.warn("this system runs in RAM mode: what you install is gone at the next boot");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::root;

    /// Records as stage 1 writes them (`init-nostd/src/record.rs`).
    #[test]
    fn ram_mode_reads_the_boot_record() {
        let r = root();
        assert!(!ram_mode(&r.ctx), "no record");
        std::fs::create_dir_all(r.path("run/k1os")).unwrap();
        let record = |mode: &str, data: &str| {
            format!(
                "mode={mode}\nmedia=/dev/sr0\ndata={data}\nimage=/system.squashfs\n\
                 init=/sbin/init\ntime_us.early=2125\ntime_us.media=41311\n"
            )
        };
        std::fs::write(r.path("run/k1os/boot"), record("ram", "none")).unwrap();
        assert!(ram_mode(&r.ctx));
        std::fs::write(r.path("run/k1os/boot"), record("persist", "/dev/vda")).unwrap();
        assert!(!ram_mode(&r.ctx));
        // Another key's value is not the mode.
        std::fs::write(r.path("run/k1os/boot"), "mode=persist\nimage=mode=ram\n").unwrap();
        assert!(!ram_mode(&r.ctx));
    }
}
