//! `kernel pin` (issue 9.2): on a scratch copy of `kernel/pin.toml` and small
//! tarballs made here, the pin is rewritten in place (comments kept), the
//! verification `kernel` runs before building accepts it, and a different
//! tarball at the pinned path is then refused, naming the sha256 mismatch
//! and `./k1os kernel pin`. No kernel is built; it takes about a second.
use std::fs;
use std::path::{Path, PathBuf};

use host_tools::kernel::{self, Pin, Source};
use host_tools::run::Cmd;

/// How a `host-tools` run ended.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn host_tools(args: &[&str]) -> Run {
    let out = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(args)
        .stdin_null()
        .output_unchecked()
        .unwrap_or_else(|e| panic!("{e:#}"));
    Run {
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// `dir/name`: a tar.xz of `top/Makefile` (Linux `version`) and `top/extra`,
/// every entry dated `mtime`.
fn tarball(dir: &Path, name: &str, top: &str, version: &str, extra: &str, mtime: i64) -> PathBuf {
    let tree = dir.join(format!("{name}.tree"));
    fs::create_dir_all(tree.join(top)).unwrap();
    let v: Vec<&str> = version.split('.').collect();
    fs::write(
        tree.join(top).join("Makefile"),
        format!(
            "# SPDX-License-Identifier: GPL-2.0\nVERSION = {}\nPATCHLEVEL = {}\nSUBLEVEL = {}\n\
             EXTRAVERSION =\nNAME = Scratch\n",
            v[0], v[1], v[2]
        ),
    )
    .unwrap();
    fs::write(tree.join(top).join("extra"), extra).unwrap();
    let path = dir.join(name);
    Cmd::new("tar")
        .arg("-cJf")
        .arg(&path)
        .arg("-C")
        .arg(&tree)
        .arg(format!("--mtime=@{mtime}"))
        .args(["--owner=0", "--group=0", top])
        .run()
        .unwrap();
    path
}

fn comments(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with('#')).collect()
}

#[test]
fn kernel_pin_rewrites_a_pin_that_kernel_then_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("pin.toml");
    fs::copy(kernel::pin_path(), &scratch).unwrap();
    let before = fs::read_to_string(&scratch).unwrap();
    let old = Pin::load_from(&scratch).unwrap();
    assert_ne!(
        old.version, "6.1.999",
        "the test needs another version than the real pin"
    );

    let first = tarball(
        dir.path(),
        "linux-6.1.999.tar.xz",
        "linux-6.1.999",
        "6.1.999",
        "one",
        1_700_000_000,
    );
    let scratch_arg = scratch.to_str().unwrap();
    let run = host_tools(&[
        "kernel",
        "pin",
        "--pin",
        scratch_arg,
        "--kernel-source",
        first.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let sha = host_tools::hash::sha256_file(&first).unwrap();
    for needle in [
        format!("{} -> 6.1.999", old.version),
        format!("{} -> {sha}", old.sha256),
        format!("{} -> 1700000000", old.build_epoch),
        format!("{} -> {}", old.path.display(), first.display()),
        "on purpose".to_string(),
        "in one commit".to_string(),
    ] {
        assert!(
            run.stdout.contains(&needle),
            "`{needle}` not in:\n{}",
            run.stdout
        );
    }

    // Rewritten in place: the values are the tarball's, the comments stay
    // (their version mentions follow the new version).
    let after = fs::read_to_string(&scratch).unwrap();
    let pin = Pin::load_from(&scratch).unwrap();
    assert_eq!(pin.version, "6.1.999");
    assert_eq!(pin.sha256, sha);
    assert_eq!(pin.path, first);
    assert_eq!(pin.tarball, "linux-6.1.999.tar.xz");
    assert_eq!(
        pin.build_epoch, 1_700_000_000,
        "the newest mtime inside the tarball"
    );
    assert_eq!(
        pin.debian(),
        None,
        "no Debian package installed a temporary file"
    );
    let expected_comments: Vec<String> = comments(&before)
        .iter()
        .map(|c| c.replace(&old.version, "6.1.999"))
        .collect();
    assert_eq!(comments(&after), expected_comments);
    assert_eq!(before.lines().count(), after.lines().count());

    // What `kernel` checks before building the pinned source accepts it.
    let source = kernel::verify_pinned(&pin).unwrap();
    assert_eq!(
        source,
        Source::Tarball {
            path: first.clone(),
            sha256: sha.clone()
        }
    );

    // Pinning the same tarball again changes nothing.
    let run = host_tools(&[
        "kernel",
        "pin",
        "--pin",
        scratch_arg,
        "--kernel-source",
        first.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("nothing changed"), "{}", run.stdout);
    assert_eq!(fs::read_to_string(&scratch).unwrap(), after);

    // Another tarball where the pinned one was (as when Debian updates the
    // package in place) is refused, with what to do.
    let second = tarball(
        dir.path(),
        "second.tar.xz",
        "linux-6.1.999",
        "6.1.999",
        "two",
        1_700_000_100,
    );
    fs::rename(&second, &first).unwrap();
    let second_sha = host_tools::hash::sha256_file(&first).unwrap();
    let err = kernel::verify_pinned(&pin).unwrap_err().to_string();
    for needle in [
        "sha256 mismatch".to_string(),
        format!("expected sha256 {sha}"),
        format!("actual sha256 {second_sha}"),
        "`./k1os kernel pin`".to_string(),
        scratch.display().to_string(),
    ] {
        assert!(err.contains(&needle), "`{needle}` not in: {err}");
    }

    // Re-pinning follows it: only the sha256 and the epoch change.
    let run = host_tools(&[
        "kernel",
        "pin",
        "--pin",
        scratch_arg,
        "--kernel-source",
        first.to_str().unwrap(),
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let changed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" -> "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(changed, ["sha256", "build_epoch"], "{}", run.stdout);
    let pin = Pin::load_from(&scratch).unwrap();
    assert!(kernel::verify_pinned(&pin).is_ok());
}

#[test]
fn kernel_pin_refuses_what_it_cannot_pin() {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("pin.toml");
    fs::copy(kernel::pin_path(), &scratch).unwrap();
    let before = fs::read_to_string(&scratch).unwrap();
    let missing = dir.path().join("nonexistent.tar.xz");
    let notes = dir.path().join("notes.txt");
    fs::write(&notes, "not a tarball\n").unwrap();
    for (source, needle) in [
        (
            &missing,
            "(--kernel-source) does not exist: pass the kernel tarball",
        ),
        (&notes, "is not a kernel tarball"),
        (&dir.path().to_path_buf(), "is a directory"),
    ] {
        let run = host_tools(&[
            "kernel",
            "pin",
            "--pin",
            scratch.to_str().unwrap(),
            "--kernel-source",
            source.to_str().unwrap(),
        ]);
        assert_eq!(run.code, Some(1), "{}", run.stderr);
        assert!(
            run.stderr.contains(needle),
            "`{needle}` not in: {}",
            run.stderr
        );
    }
    assert_eq!(
        fs::read_to_string(&scratch).unwrap(),
        before,
        "the pin is untouched"
    );
}
