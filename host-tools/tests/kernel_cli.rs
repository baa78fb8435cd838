//! `kernel check`'s input and output (review §6) and `kernel`'s flags and
//! environment: a file that is no .config, stdin, gzip, the report on stdout,
//! the exit statuses, `--kernel-source` (and its old name `--source`) naming a
//! missing path, and a bad `K1OS_KERNEL_PROFILE` naming the variable. Nothing
//! is built; each run stops before the kernel build starts.
use std::fs;
use std::io::Write;
use std::path::Path;

use host_tools::kernel::{self, Profile};
use host_tools::run::Cmd;

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs host-tools with `env` set (or removed, for `None`) and `stdin`.
fn host_tools(args: &[&str], env: &[(&str, Option<&str>)], stdin: &[u8]) -> Run {
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(args)
        .stdin_bytes(stdin);
    for (key, value) in env {
        cmd = match value {
            Some(v) => cmd.env(key, v),
            None => cmd.env_remove(key),
        };
    }
    let out = cmd.output_unchecked().unwrap_or_else(|e| panic!("{e:#}"));
    Run {
        code: out.code,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// A .config that meets every requirement of `profile`.
fn complete_config(profile: Profile) -> String {
    let mut text = String::from("# Automatically generated file; DO NOT EDIT.\n");
    for req in kernel::requirements(profile).unwrap() {
        match &req.value {
            Some(v) => text += &format!("CONFIG_{}={v}\n", req.option),
            None => text += &format!("# CONFIG_{} is not set\n", req.option),
        }
    }
    text
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

const NO_PROFILE_ENV: (&str, Option<&str>) = (kernel::PROFILE_ENV, None);

#[test]
fn check_reads_stdin_and_gzip_and_reports_on_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let config = complete_config(Profile::Qemu);

    let run = host_tools(
        &["kernel", "check", "-", "--profile", "qemu"],
        &[NO_PROFILE_ENV],
        config.as_bytes(),
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.starts_with("<stdin>: all ") && run.stdout.contains("as required"),
        "the success line is on stdout: {:?} / {:?}",
        run.stdout,
        run.stderr
    );

    let gz = dir.path().join("config.gz");
    fs::write(&gz, gzip(&config)).unwrap();
    let run = host_tools(
        &["kernel", "check", gz.to_str().unwrap(), "--profile", "qemu"],
        &[NO_PROFILE_ENV],
        b"",
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("as required"), "{}", run.stdout);

    // One option missing: the list goes to stdout (so it pipes), status 1.
    let lacking: String = config
        .lines()
        .filter(|l| !l.starts_with("CONFIG_SQUASHFS="))
        .map(|l| format!("{l}\n"))
        .collect();
    let run = host_tools(
        &["kernel", "check", "-", "--profile", "qemu"],
        &[NO_PROFILE_ENV],
        lacking.as_bytes(),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stdout.contains("\n  CONFIG_SQUASHFS is not set"),
        "the problem is on stdout: {:?}",
        run.stdout
    );
    assert!(!run.stderr.contains("CONFIG_SQUASHFS"), "{}", run.stderr);
    assert!(run.stderr.contains("listed on stdout"), "{}", run.stderr);
}

#[test]
fn check_refuses_what_is_not_a_config_with_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
    let missing = dir.path().join("nonexistent/config");
    let binary = dir.path().join("bzImage");
    fs::write(&binary, b"MZ\xea\x07\xc0\x07\x8c\xc8\0\0HdrS\xff\xfe").unwrap();
    for (path, needle) in [
        (
            readme.as_path(),
            "is not a kernel .config: it has no `CONFIG_",
        ),
        (missing.as_path(), "reading "),
        (
            binary.as_path(),
            "is not a kernel .config: it is binary data",
        ),
    ] {
        let run = host_tools(
            &["kernel", "check", path.to_str().unwrap()],
            &[NO_PROFILE_ENV],
            b"",
        );
        assert_eq!(run.code, Some(2), "{}: {}", path.display(), run.stderr);
        assert!(
            run.stderr.contains(needle),
            "`{needle}` not in: {}",
            run.stderr
        );
        assert!(
            !run.stderr.contains("build one with"),
            "the hint is for the default path only: {}",
            run.stderr
        );
        assert!(!run.stderr.contains("guessed"), "no guess for a non-config");
        assert_eq!(run.stdout, "");
    }

    // The default path, missing: now the hint, typed as a user can.
    let run = host_tools(
        &["kernel", "check"],
        &[NO_PROFILE_ENV, ("K1OS_BUILD_DIR", dir.path().to_str())],
        b"",
    );
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("build one with `./k1os kernel`"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_bad_profile_variable_is_named_and_does_not_break_check() {
    let config = complete_config(Profile::Qemu);
    let bogus = (kernel::PROFILE_ENV, Some("bogus"));
    let run = host_tools(&["kernel", "check", "-"], &[bogus], config.as_bytes());
    assert_eq!(
        run.code,
        Some(0),
        "check ignores the variable: {}",
        run.stderr
    );

    let run = host_tools(
        &["kernel", "--kernel-source", "/nonexistent"],
        &[bogus],
        b"",
    );
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("K1OS_KERNEL_PROFILE=bogus: expected qemu, generic or debian"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("--profile"), "{}", run.stderr);

    // `--profile` wins over the variable; an empty variable counts as unset.
    for env in [bogus, (kernel::PROFILE_ENV, Some(""))] {
        let mut args = vec!["kernel", "--kernel-source", "/nonexistent"];
        if env == bogus {
            args.extend(["--profile", "qemu"]);
        }
        let run = host_tools(&args, &[env], b"");
        assert_eq!(run.code, Some(1));
        assert!(
            run.stderr.contains("does not exist"),
            "{:?}: {}",
            env,
            run.stderr
        );
    }
}

#[test]
fn a_missing_kernel_source_gets_a_sentence_under_both_names() {
    for flag in ["--kernel-source", "--source"] {
        let run = host_tools(
            &["kernel", "--profile", "qemu", flag, "/nonexistent"],
            &[NO_PROFILE_ENV],
            b"",
        );
        assert_eq!(run.code, Some(1), "{flag}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&kernel::missing_source_message(Path::new("/nonexistent"))),
            "{flag}: {}",
            run.stderr
        );
    }
    let run = host_tools(&["kernel", "--help"], &[NO_PROFILE_ENV], b"");
    assert!(run.stdout.contains("--kernel-source"), "{}", run.stdout);
    assert!(
        !run.stdout.contains("--source "),
        "the old name is a hidden alias"
    );
    assert!(
        run.stdout.contains("./k1os kernel pin"),
        "examples: {}",
        run.stdout
    );
}
