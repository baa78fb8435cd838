//! Stage 1's size budget (`host-tools bench --check-budget`, run by
//! `ci/test.sh` after the initramfs step): fails one byte over, passes at the
//! limit, and on the real `build/init` when one is built. No kernel, no QEMU.
use std::path::Path;

use host_tools::bench::sizes::{Budget, INIT_BUDGET, INITRAMFS_GZIP_BUDGET};
use host_tools::initramfs::{self, Compression, Entry};
use host_tools::paths;
use host_tools::ui::group_digits;

/// A build directory holding a stage 1 of `init_bytes` bytes and a gzip
/// initramfs around it (its compressed size is far below its limit).
fn build_dir(dir: &Path, init_bytes: u64) {
    let init: Vec<u8> = (0..init_bytes).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.join("init"), &init).unwrap();
    let archive = initramfs::write_newc(initramfs::stage1_entries(init), 0).unwrap();
    let image = initramfs::compress(&archive, Compression::Gzip).unwrap();
    std::fs::write(dir.join("initramfs.img"), image).unwrap();
}

/// A gzip image of exactly `bytes` bytes: a real gzip stream of an archive,
/// padded with zero bytes (which gunzip tolerates after the stream).
fn gzip_image_of(dir: &Path, bytes: u64) {
    let archive = initramfs::write_newc(vec![Entry::dir("dev")], 0).unwrap();
    let mut image = initramfs::compress(&archive, Compression::Gzip).unwrap();
    assert!(image.len() as u64 <= bytes);
    image.resize(bytes as usize, 0);
    std::fs::write(dir.join("initramfs.img"), image).unwrap();
}

#[test]
fn stage1_one_byte_over_fails_and_exactly_at_the_budget_passes() {
    let dir = tempfile::tempdir().unwrap();

    build_dir(dir.path(), INIT_BUDGET);
    let at = Budget::measure(dir.path()).unwrap();
    assert_eq!(at.init.bytes, Some(INIT_BUDGET));
    at.check().unwrap();
    let limit = group_digits(INIT_BUDGET);
    let line = &at.lines()[0];
    assert!(
        line.contains(&format!("{limit} B of {limit} B budget (0 B left)")),
        "{line}"
    );

    build_dir(dir.path(), INIT_BUDGET + 1);
    let over = Budget::measure(dir.path()).unwrap();
    let err = over.check().unwrap_err().to_string();
    for part in [
        format!("init is {} B", group_digits(INIT_BUDGET + 1)),
        format!("1 B over its budget of {limit} B"),
        "make stage 1 smaller".into(),
        "raise INIT_BUDGET".into(),
        "commit message".into(),
    ] {
        assert!(err.contains(&part), "{part:?} not in {err:?}");
    }
    assert!(
        over.lines()[0].contains("OVER by 1 B"),
        "{:?}",
        over.lines()
    );
}

#[test]
fn initramfs_one_byte_over_fails_and_exactly_at_the_budget_passes() {
    let dir = tempfile::tempdir().unwrap();
    build_dir(dir.path(), 1000);

    gzip_image_of(dir.path(), INITRAMFS_GZIP_BUDGET);
    let at = Budget::measure(dir.path()).unwrap();
    assert_eq!(at.initramfs_gzip.bytes, Some(INITRAMFS_GZIP_BUDGET));
    at.check().unwrap();

    gzip_image_of(dir.path(), INITRAMFS_GZIP_BUDGET + 1);
    let err = Budget::measure(dir.path())
        .unwrap()
        .check()
        .unwrap_err()
        .to_string();
    for part in [
        format!(
            "initramfs.img (gzip) is {} B",
            group_digits(INITRAMFS_GZIP_BUDGET + 1)
        ),
        format!(
            "1 B over its budget of {} B",
            group_digits(INITRAMFS_GZIP_BUDGET)
        ),
        "raise INITRAMFS_GZIP_BUDGET".into(),
    ] {
        assert!(err.contains(&part), "{part:?} not in {err:?}");
    }
}

#[test]
fn nothing_built_is_an_error_that_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let err = Budget::measure(dir.path())
        .unwrap()
        .check()
        .unwrap_err()
        .to_string();
    assert!(err.contains("not built"), "{err}");
    assert!(err.contains("initramfs` first"), "{err}");
}

/// The real stage 1, when `host-tools initramfs` has built one here.
#[test]
fn the_real_stage1_is_within_its_budget() {
    let build = paths::build_dir();
    if !build.join("init").is_file() {
        println!(
            "note: {} is not built: only the synthetic budget tests ran \
             (`host-tools initramfs` builds it)",
            build.join("init").display()
        );
        return;
    }
    let budget = Budget::measure(&build).unwrap();
    for line in budget.lines() {
        println!("{line}");
    }
    if let Err(e) = budget.check() {
        panic!("{e}");
    }
}
