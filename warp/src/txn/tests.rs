use super::*;
use crate::error::Code;
use crate::testutil::{Root, root};

/// No journal, no staged temporary file, no half-written database file.
fn clean(r: &Root) {
    assert!(!r.ctx.layout.journal().exists(), "journal left");
    assert_eq!(stray_temps(&r.ctx.layout).unwrap(), Vec::<String>::new());
    for path in r.listing().keys() {
        let name = path.rsplit('/').next().unwrap();
        assert!(
            !name.starts_with(".warp-") && !name.ends_with(".tmp"),
            "temporary file left: {path}"
        );
    }
}

fn hello(r: &Root, version: &str, text: &str) -> Change {
    r.package(
        "hello",
        version,
        &[
            ("usr/local/bin/hello", text),
            ("usr/local/bin/hi", "->hello"),
            ("usr/local/share/hello/", ""),
            ("usr/local/share/hello/README", "read me"),
        ],
    )
}

#[test]
fn install_puts_every_entry_in_place() {
    let r = root();
    let h = hello(&r, "1.0", "hi\n");
    let s = r.apply(&[&h], &[]).unwrap();
    assert_eq!(s.txid, 1);
    assert_eq!(s.installed, ["hello"]);
    let files = r.files();
    assert_eq!(
        files["usr/local/bin/hello"],
        format!("f 755 {}", warp_format::sha256_hex(b"hi\n"))
    );
    assert_eq!(files["usr/local/bin/hi"], "l hello");
    assert_eq!(files["usr/local/share/hello"], "d 755");
    assert_eq!(r.read("usr/local/share/hello/README"), "read me");

    let db = Db::load(&r.ctx.layout).unwrap();
    let p = &db.packages["hello"];
    assert_eq!(
        (p.version.as_str(), p.txid, p.sha256.as_str()),
        ("1.0", 1, h.sha256.as_str())
    );
    let created: Vec<&str> = db.created_dirs.iter().map(String::as_str).collect();
    // usr and usr/local are shared: used, never owned.
    assert_eq!(
        created,
        ["usr/local/bin", "usr/local/share", "usr/local/share/hello"]
    );
    let hist = db::history(&r.ctx.layout).unwrap();
    assert_eq!(hist.len(), 1);
    assert!(hist[0].before.is_empty());
    assert_eq!(hist[0].after[0].name, "hello");
    assert_eq!(hist[0].world_after, ["hello"]);
    assert_eq!(r.read("etc/warp/world"), "hello\n");
    clean(&r);
}

#[test]
fn upgrade_replaces_files_and_drops_those_the_new_version_lacks() {
    let r = root();
    let v1 = r.package(
        "hello",
        "1.0",
        &[
            ("usr/local/bin/hello", "v1"),
            ("usr/local/share/hello/old.txt", "old"),
            ("usr/local/lib/hello/libold.so", "lib"),
        ],
    );
    let v2 = r.package(
        "hello",
        "2.0",
        &[
            ("usr/local/bin/hello", "v2"),
            ("usr/local/share/hello/new.txt", "new"),
        ],
    );
    r.apply(&[&v1], &[]).unwrap();
    let s = r.apply(&[&v2], &[]).unwrap();
    assert_eq!(s.txid, 2);
    assert_eq!(r.read("usr/local/bin/hello"), "v2");
    assert_eq!(r.read("usr/local/share/hello/new.txt"), "new");
    let files = r.files();
    assert!(!files.contains_key("usr/local/share/hello/old.txt"));
    // The directories only the old version had, which warp made, go too.
    assert!(!files.contains_key("usr/local/lib/hello"));
    assert!(!files.contains_key("usr/local/lib"));
    let db = Db::load(&r.ctx.layout).unwrap();
    assert_eq!(db.packages["hello"].version, "2.0");
    assert!(!db.created_dirs.contains("usr/local/lib"));
    let hist = db::history(&r.ctx.layout).unwrap();
    assert_eq!(hist[1].before[0].version, "1.0");
    assert_eq!(hist[1].after[0].version, "2.0");
    clean(&r);
}

#[test]
fn remove_deletes_only_the_directories_warp_made_once_empty() {
    let r = root();
    // There before warp: never removed.
    fs::create_dir_all(r.path("opt/site")).unwrap();
    let a = r.package(
        "a",
        "1",
        &[
            ("usr/local/bin/a", "a"),
            ("usr/local/share/common/a.txt", "a"),
            ("usr/local/lib/a/liba.so", "a"),
            ("opt/site/a.conf", "a"),
        ],
    );
    let b = r.package(
        "b",
        "1",
        &[
            ("usr/local/bin/b", "b"),
            ("usr/local/share/common/b.txt", "b"),
        ],
    );
    r.apply(&[&a, &b], &[]).unwrap();
    r.apply(&[], &["a"]).unwrap();
    let files = r.files();
    assert!(!files.contains_key("usr/local/bin/a"));
    assert!(!files.contains_key("usr/local/lib"), "{files:#?}");
    assert!(files.contains_key("usr/local/share/common/b.txt"));
    assert!(files.contains_key("opt/site"));
    assert!(!files.contains_key("opt/site/a.conf"));

    // A file of the user's keeps its directory.
    fs::write(r.path("usr/local/share/common/mine.txt"), "mine").unwrap();
    r.apply(&[], &["b"]).unwrap();
    let left: Vec<String> = r.files().into_keys().collect();
    assert_eq!(
        left,
        [
            "opt",
            "opt/site",
            "usr",
            "usr/local",
            "usr/local/share",
            "usr/local/share/common",
            "usr/local/share/common/mine.txt"
        ]
    );
    assert!(Db::load(&r.ctx.layout).unwrap().packages.is_empty());
    clean(&r);
}

#[test]
fn conflicts_are_refused_with_nothing_changed() {
    type Setup = fn(&Root) -> (Vec<Change>, Vec<&'static str>);
    let cases: Vec<(&str, Setup, &str)> = vec![
        (
            "two packages of the plan",
            |r| {
                let x = r.package("x", "1", &[("usr/local/bin/tool", "x")]);
                let y = r.package("y", "1", &[("usr/local/bin/tool", "y")]);
                (vec![x, y], vec![])
            },
            "both x 1 (a file) and y 1 (a file) want it",
        ),
        (
            "an installed package's file",
            |r| {
                let x = r.package("x", "1", &[("usr/local/bin/tool", "x")]);
                r.apply(&[&x], &[]).unwrap();
                (
                    vec![r.package("y", "1", &[("usr/local/bin/tool", "y")])],
                    vec![],
                )
            },
            "x 1 has it (a file), y 1 wants it",
        ),
        (
            "a file no package owns",
            |r| {
                fs::create_dir_all(r.path("usr/local/bin")).unwrap();
                fs::write(r.path("usr/local/bin/tool"), "mine").unwrap();
                (
                    vec![r.package("x", "1", &[("usr/local/bin/tool", "x")])],
                    vec![],
                )
            },
            "belongs to no package",
        ),
        (
            "a symlink no package owns",
            |r| {
                fs::create_dir_all(r.path("usr/local/bin")).unwrap();
                std::os::unix::fs::symlink("/bin/sh", r.path("usr/local/bin/tool")).unwrap();
                (
                    vec![r.package("x", "1", &[("usr/local/bin/tool", "x")])],
                    vec![],
                )
            },
            "belongs to no package",
        ),
        (
            "a symlink in the path",
            |r| {
                fs::create_dir_all(r.path("usr/local")).unwrap();
                fs::create_dir_all(r.path("etc")).unwrap();
                std::os::unix::fs::symlink("../../etc", r.path("usr/local/lib")).unwrap();
                (
                    vec![r.package("x", "1", &[("usr/local/lib/x.so", "x")])],
                    vec![],
                )
            },
            "`usr/local/lib` is a symlink on disk; warp never writes through a symlink",
        ),
        (
            "a directory where a file goes",
            |r| {
                fs::create_dir_all(r.path("usr/local/bin/tool")).unwrap();
                (
                    vec![r.package("x", "1", &[("usr/local/bin/tool", "x")])],
                    vec![],
                )
            },
            "`usr/local/bin/tool` is a directory on disk, where x 1 wants a file",
        ),
        (
            "a file where a directory goes",
            |r| {
                let x = r.package("x", "1", &[("usr/local/share/x", "x")]);
                r.apply(&[&x], &[]).unwrap();
                (
                    vec![r.package("y", "1", &[("usr/local/share/x/y", "y")])],
                    vec![],
                )
            },
            "x 1 has it (a file), y 1 wants it (a directory)",
        ),
        (
            "a declared conflict",
            |r| {
                let x = r.package("x", "1", &[("usr/local/bin/x", "x")]);
                r.apply(&[&x], &[]).unwrap();
                let y = r.package_with("y", "1", &[("usr/local/bin/y", "y")], |m| {
                    m.conflicts.push("x<2".into())
                });
                (vec![y], vec![])
            },
            "y 1 conflicts with x 1 (it declares `x<2`)",
        ),
    ];
    for (what, setup, expect) in cases {
        let r = root();
        let (install, remove) = setup(&r);
        let before = r.listing();
        let err = r
            .apply(&install.iter().collect::<Vec<_>>(), &remove)
            .unwrap_err();
        assert_eq!(err.code, Code::Conflict, "{what}: {err}");
        assert!(err.msg.contains(expect), "{what}: {err}");
        assert_eq!(r.listing(), before, "{what}: the tree changed");
        clean(&r);
    }
}

#[test]
fn a_removed_package_frees_its_paths_for_another() {
    let r = root();
    let x = r.package("x", "1", &[("usr/local/bin/tool", "x")]);
    r.apply(&[&x], &[]).unwrap();
    let y = r.package("y", "1", &[("usr/local/bin/tool", "y")]);
    r.apply(&[&y], &["x"]).unwrap();
    assert_eq!(r.read("usr/local/bin/tool"), "y");
    clean(&r);
}

#[test]
fn reinstalling_the_same_version_restores_its_files() {
    let r = root();
    let h = hello(&r, "1.0", "hi\n");
    r.apply(&[&h], &[]).unwrap();
    let good = r.files();
    fs::write(r.path("usr/local/bin/hello"), "changed").unwrap();
    fs::remove_file(r.path("usr/local/bin/hi")).unwrap();
    fs::remove_dir_all(r.path("usr/local/share/hello")).unwrap();
    r.apply(&[&h], &[]).unwrap();
    assert_eq!(r.files(), good);
    clean(&r);
}

#[test]
fn a_damaged_archive_fails_in_staging_and_leaves_nothing() {
    let r = root();
    let base = r.package("base", "1", &[("usr/local/bin/base", "base")]);
    r.apply(&[&base], &[]).unwrap();
    let before = r.listing();
    let (m, mut tar) = r.build(
        "bad",
        "1",
        &[
            ("opt/bad/first", "first file, staged"),
            ("opt/bad/second", "second file, damaged"),
        ],
        |_| {},
    );
    let at = tar.windows(7).position(|w| w == b"damaged").unwrap();
    tar[at] = b'D';
    // The cache holds what was verified: the archive's own hash matches, its
    // content does not match its manifest.
    let bad = r.cache(m, &tar);
    let err = r.apply(&[&bad], &[]).unwrap_err();
    assert_eq!(err.code, Code::Integrity, "{err}");
    assert!(
        err.msg.contains("opt/bad/second") && err.msg.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(r.listing(), before);
    clean(&r);
}

#[test]
fn a_changed_cache_archive_is_refused() {
    let r = root();
    let h = hello(&r, "1.0", "hi\n");
    let mut bytes = fs::read(&h.archive).unwrap();
    bytes.push(0);
    fs::write(&h.archive, bytes).unwrap();
    let before = r.listing();
    let err = r.apply(&[&h], &[]).unwrap_err();
    assert_eq!(err.code, Code::Integrity);
    assert!(
        err.msg
            .contains("the archive changed since it was verified"),
        "{err}"
    );
    assert_eq!(r.listing(), before);
}

#[test]
fn too_little_space_is_refused_before_writing() {
    let r = root();
    let h = hello(&r, "1.0", "hi\n");
    let before = r.listing();
    TEST_FREE_BYTES.with(|c| c.set(Some(100 << 10)));
    let err = r.apply(&[&h], &[]);
    TEST_FREE_BYTES.with(|c| c.set(None));
    let err = err.unwrap_err();
    assert_eq!(err.code, Code::NoSpace, "{err}");
    assert!(err.msg.contains("not enough free space"), "{err}");
    assert_eq!(r.listing(), before);
}

#[test]
fn a_dry_run_checks_and_writes_nothing() {
    let mut r = root();
    // A root where warp never ran: not even the lock is created.
    fs::remove_dir_all(r.ctx.layout.state()).unwrap();
    r.ctx.dry_run = true;
    let h = hello(&r, "1.0", "hi\n");
    let before = r.listing();
    let s = r.apply(&[&h], &[]).unwrap();
    assert_eq!(
        (s.txid, s.installed.as_slice()),
        (0, ["hello".to_string()].as_slice())
    );
    assert_eq!(r.listing(), before);
    assert!(!r.ctx.layout.state().exists());
    // The checks still run.
    fs::create_dir_all(r.path("usr/local/bin")).unwrap();
    fs::write(r.path("usr/local/bin/hello"), "mine").unwrap();
    assert_eq!(r.apply(&[&h], &[]).unwrap_err().code, Code::Conflict);
}

#[test]
fn the_lock_is_exclusive() {
    let r = root();
    let first = lock(&r.ctx).unwrap();
    let err = lock(&r.ctx).err().unwrap();
    assert_eq!(err.code, Code::Locked);
    assert!(err.msg.contains("another warp is running (lock "), "{err}");
    drop(first);
    lock(&r.ctx).unwrap();
}

/// Runs a transaction up to its commit point (or short of it) and stops,
/// as a crash would.
fn interrupted(r: &Root, change: &Change, committing: bool) -> Journal {
    let plan = r.plan(&[change], &[]);
    let _lock = lock(&r.ctx).unwrap();
    let mut j = prepare(&r.ctx, &plan).unwrap().journal;
    j.save(&r.ctx.layout).unwrap();
    stage(&r.ctx, &plan, &j).unwrap();
    if committing {
        fsutil::sync_roots(r.ctx.layout.root()).unwrap();
        j.state = State::Committing;
        j.save(&r.ctx.layout).unwrap();
    }
    j
}

fn recover_now(r: &Root) -> Option<String> {
    let l = lock(&r.ctx).unwrap();
    recover(&r.ctx.layout, &l).unwrap()
}

#[test]
fn recovery_before_the_commit_point_rolls_back() {
    let r = root();
    r.apply(&[&hello(&r, "1.0", "v1")], &[]).unwrap();
    let before = r.listing();
    let v2 = r.package(
        "hello",
        "2.0",
        &[("usr/local/bin/hello", "v2"), ("opt/hello/new/file", "new")],
    );
    // Everything staged.
    let j = interrupted(&r, &v2, false);
    assert!(!j.mkdirs.is_empty());
    assert!(r.path(&j.staged[0].temp).exists());
    assert_eq!(
        recover_now(&r).as_deref(),
        Some("rolled back an interrupted transaction 2")
    );
    assert_eq!(r.listing(), before);
    clean(&r);

    // Interrupted after the journal, the directories and one file.
    let j = interrupted(&r, &v2, false);
    j.undo_staging(&r.ctx.layout).unwrap();
    j.save(&r.ctx.layout).unwrap();
    for d in &j.mkdirs {
        fs::create_dir(r.path(&d.path)).unwrap();
    }
    fs::write(r.path(&j.staged[0].temp), "half").unwrap();
    assert!(recover_now(&r).is_some());
    assert_eq!(r.listing(), before);
    clean(&r);
    assert_eq!(recover_now(&r), None);
}

#[test]
fn recovery_after_the_commit_point_completes() {
    // Where the commit was interrupted: before it began, after some of the
    // renames, and after everything but deleting the journal.
    for renames_done in [0, 1, usize::MAX] {
        let r = root();
        r.apply(&[&hello(&r, "1.0", "v1")], &[]).unwrap();
        let v2 = r.package(
            "hello",
            "2.0",
            &[("usr/local/bin/hello", "v2"), ("opt/hello/new/file", "new")],
        );
        // The set a whole transaction gives, on a twin root.
        let twin = root();
        twin.apply(&[&hello(&twin, "1.0", "v1")], &[]).unwrap();
        twin.apply(
            &[&twin.package(
                "hello",
                "2.0",
                &[("usr/local/bin/hello", "v2"), ("opt/hello/new/file", "new")],
            )],
            &[],
        )
        .unwrap();

        let j = interrupted(&r, &v2, true);
        if renames_done == usize::MAX {
            j.commit(&r.ctx.layout).unwrap();
            j.save(&r.ctx.layout).unwrap();
        } else {
            for s in j.staged.iter().take(renames_done) {
                fs::rename(r.path(&s.temp), r.path(&s.path)).unwrap();
            }
        }
        assert_eq!(
            recover_now(&r).as_deref(),
            Some("completed an interrupted transaction 2"),
            "{renames_done}"
        );
        assert_eq!(r.files(), twin.files(), "{renames_done}");
        let db = Db::load(&r.ctx.layout).unwrap();
        assert_eq!(db.packages["hello"].version, "2.0");
        assert_eq!(db::history(&r.ctx.layout).unwrap().len(), 2);
        clean(&r);
    }
}

#[test]
fn a_journal_of_a_removal_completes() {
    let r = root();
    r.apply(&[&hello(&r, "1.0", "v1")], &[]).unwrap();
    let plan = r.plan(&[], &["hello"]);
    let mut j = prepare(&r.ctx, &plan).unwrap().journal;
    j.state = State::Committing;
    j.save(&r.ctx.layout).unwrap();
    // Crashed after the first unlink.
    fs::remove_file(r.path(&j.unlinks[0])).unwrap();
    assert!(recover_now(&r).is_some());
    let left: Vec<String> = r.files().into_keys().collect();
    assert_eq!(left, ["usr", "usr/local"]);
    assert!(Db::load(&r.ctx.layout).unwrap().packages.is_empty());
    clean(&r);
}

#[test]
fn a_recovery_dry_run_changes_nothing() {
    let mut r = root();
    r.apply(&[&hello(&r, "1.0", "v1")], &[]).unwrap();
    interrupted(&r, &hello(&r, "2.0", "v2"), true);
    let before = r.listing();
    r.ctx.dry_run = true;
    let what = recover_now(&r).unwrap();
    assert!(what.contains("would be completed"), "{what}");
    assert_eq!(r.listing(), before);
}
