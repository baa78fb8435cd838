//! The package builder (`host_tools::packages`, `host_tools::rootfs`) on
//! the host, no VM: scratch package directories and caches (a failing
//! script, the cache, conflicts, a missing licence) and the real packages'
//! reproducibility.
use std::fs;
use std::path::PathBuf;

use host_tools::packages::{Plan, Settings};
use host_tools::rootfs::{self, Compression};
use k1os_contract::contract;

/// A scratch packages directory, cache and work directory.
struct Scratch {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        fs::create_dir_all(root.join("packages")).unwrap();
        Scratch { _tmp: tmp, root }
    }

    fn settings(&self) -> Settings {
        Settings {
            packages_dir: self.root.join("packages"),
            cache_dir: self.root.join("cache"),
            work_dir: self.root.join("work"),
            jobs: 1,
        }
    }

    fn options(&self, image: &str) -> rootfs::Options {
        rootfs::Options {
            settings: self.settings(),
            staging: self.root.join("staging"),
            image: self.root.join(image),
            compression: Compression::Zstd,
            kernel_modules: None,
        }
    }

    fn package(&self, name: &str, depends: &[&str], extra: &str, script: &str) {
        let dir = self.root.join("packages").join(name);
        fs::create_dir_all(&dir).unwrap();
        let deps: Vec<String> = depends.iter().map(|d| format!("\"{d}\"")).collect();
        fs::write(
            dir.join("package.toml"),
            format!(
                "name = \"{name}\"\nversion = \"1.0\"\ndescription = \"test package {name}\"\n\
                 license = \"MIT\"\ndepends = [{}]\n{extra}",
                deps.join(", ")
            ),
        )
        .unwrap();
        fs::write(dir.join("build.sh"), script).unwrap();
    }

    /// A package that makes the tree bootable-looking (what `check_staging` wants).
    fn skeleton(&self) {
        self.package(
            "skel",
            &[],
            "",
            "for d in dev proc sys run tmp sbin etc; do mkdir -p \"$DESTDIR/$d\"; done\n\
             printf '#!/bin/sh\\n' > \"$DESTDIR/sbin/init\"\nchmod 755 \"$DESTDIR/sbin/init\"\n\
             echo NAME=TEST > \"$DESTDIR/etc/os-release\"\n",
        );
    }
}

fn built_names(r: &rootfs::Rootfs, cached: bool) -> Vec<String> {
    r.packages
        .iter()
        .filter(|b| b.cached == cached)
        .map(|b| b.name.clone())
        .collect()
}

#[test]
fn a_failing_package_stops_the_build_with_its_name_and_log_tail() {
    let s = Scratch::new();
    s.package("first", &[], "", "echo first > \"$DESTDIR/first\"\n");
    s.package(
        "broken",
        &["first"],
        "",
        "echo 'configuring broken'\necho 'error: the compiler is on strike (on purpose)' >&2\nexit 3\n",
    );
    s.package(
        "after",
        &["broken"],
        "",
        "echo after > \"$DESTDIR/after\"\n",
    );
    let plan = Plan::new(s.settings()).unwrap();
    let mut reported = Vec::new();
    let err = plan.build(|b| reported.push(b.name.clone())).unwrap_err();
    let msg = format!("{err:#}");
    for expected in [
        "package `broken` 1.0 failed to build",
        "exit status: 3",
        "error: the compiler is on strike (on purpose)",
        "configuring broken",
        "broken.log",
    ] {
        assert!(
            msg.contains(expected),
            "{expected:?} not in the error:\n{msg}"
        );
    }
    assert_eq!(
        reported,
        vec!["first"],
        "only the package before the broken one is done"
    );
    let log = fs::read_to_string(s.root.join("work/broken.log")).unwrap();
    assert!(log.contains("on strike"), "the full log is kept: {log}");
    // Nothing of the broken build is left in the cache.
    let cached: Vec<String> = fs::read_dir(s.root.join("cache/packages"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].starts_with("first-"), "{cached:?}");
}

#[test]
fn a_second_build_with_nothing_changed_rebuilds_no_package() {
    let s = Scratch::new();
    s.skeleton();
    let tree = s.root.join("packages/lib/files");
    fs::create_dir_all(&tree).unwrap();
    fs::write(tree.join("greeting"), "hello\n").unwrap();
    s.package(
        "lib",
        &[],
        "[[source]]\ntree = \"files\"\n",
        "mkdir -p \"$DESTDIR/usr/lib\"\ncp \"$SRCDIR/files/greeting\" \"$DESTDIR/usr/lib/greeting\"\n",
    );
    s.package(
        "app",
        &["lib"],
        "",
        // A dependency's output is in $SYSROOT.
        "mkdir -p \"$DESTDIR/usr/bin\"\n{ echo '#!/bin/sh'; echo \"echo $(cat \"$SYSROOT/usr/lib/greeting\")\"; } \
         > \"$DESTDIR/usr/bin/app\"\nchmod 755 \"$DESTDIR/usr/bin/app\"\n",
    );

    let first = rootfs::build(&s.options("one.squashfs"), |_| {}).unwrap();
    assert_eq!(built_names(&first, false), vec!["lib", "app", "skel"]);
    let second = rootfs::build(&s.options("two.squashfs"), |_| {}).unwrap();
    assert_eq!(
        built_names(&second, false),
        Vec::<String>::new(),
        "nothing changed, nothing rebuilt"
    );
    assert_eq!(
        fs::read(&first.image).unwrap(),
        fs::read(&second.image).unwrap(),
        "two builds give identical images"
    );
    assert_eq!(
        fs::read_to_string(s.root.join("staging/usr/bin/app")).unwrap(),
        "#!/bin/sh\necho hello\n"
    );
    assert!(first.packed && second.packed);
    // The same tree again into an image it made: that image is kept (its
    // stamp says what it was packed from).
    let again = rootfs::build(&s.options("two.squashfs"), |_| {}).unwrap();
    assert!(!again.packed, "same tree, same image: kept");
    assert_eq!(again.verity, second.verity);

    // A change in a tree source rebuilds its package and what depends on it,
    // and the image is packed again.
    fs::write(tree.join("greeting"), "bonjour\n").unwrap();
    let third = rootfs::build(&s.options("two.squashfs"), |_| {}).unwrap();
    assert!(third.packed, "the tree changed: packed again");
    assert_eq!(built_names(&third, false), vec!["lib", "app"]);
    assert_eq!(built_names(&third, true), vec!["skel"]);
    assert_ne!(
        fs::read(&first.image).unwrap(),
        fs::read(&third.image).unwrap()
    );
}

#[test]
fn two_packages_installing_the_same_file_are_refused() {
    let s = Scratch::new();
    s.skeleton();
    s.package(
        "one",
        &[],
        "",
        "mkdir -p \"$DESTDIR/etc\"\necho 1 > \"$DESTDIR/etc/motd\"\n",
    );
    s.package(
        "two",
        &[],
        "",
        "mkdir -p \"$DESTDIR/etc\"\necho 2 > \"$DESTDIR/etc/motd\"\n",
    );
    let err = format!(
        "{:#}",
        rootfs::build(&s.options("x.squashfs"), |_| {}).unwrap_err()
    );
    assert!(
        err.contains("`one` and `two` both install /etc/motd"),
        "{err}"
    );
}

#[test]
fn a_package_without_a_licence_is_refused_before_anything_is_built() {
    let s = Scratch::new();
    s.skeleton();
    let dir = s.root.join("packages/nolicence");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("package.toml"),
        "name = \"nolicence\"\nversion = \"1\"\ndescription = \"d\"\n",
    )
    .unwrap();
    fs::write(dir.join("build.sh"), "exit 0\n").unwrap();
    let err = format!("{:#}", Plan::new(s.settings()).unwrap_err());
    assert!(
        err.contains("nolicence/package.toml") && err.contains("`license` is missing"),
        "{err}"
    );
    assert!(!s.root.join("cache").exists(), "nothing was built");
}

/// The real packages: a second build with nothing changed rebuilds nothing
/// and gives the same bytes. (The first may build: it downloads busybox-static
/// from the Debian mirror when the source cache does not have it yet.)
#[test]
fn the_real_rootfs_is_cached_and_reproducible() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = rootfs::Options::default_for_checkout(Compression::Zstd);
    opts.staging = tmp.path().join("rootfs");
    opts.image = tmp.path().join("one.squashfs");
    opts.settings.work_dir = tmp.path().join("packages");
    let first = rootfs::build(&opts, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    opts.image = tmp.path().join("two.squashfs");
    let second = rootfs::build(&opts, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(built_names(&second, false), Vec::<String>::new());
    assert_eq!(
        fs::read(&first.image).unwrap(),
        fs::read(&second.image).unwrap()
    );
    for path in [
        "sbin/init",
        "bin/sh",
        "etc/inittab",
        "etc/os-release",
        "lib/k1os/contract.sh",
    ] {
        assert!(
            fs::symlink_metadata(opts.staging.join(path)).is_ok(),
            "/{path} is missing"
        );
    }
    let contract_sh = fs::read_to_string(opts.staging.join("lib/k1os/contract.sh")).unwrap();
    assert!(
        contract_sh.contains(&format!(
            "K1OS_MARKER_STAGE2_READY='{}'",
            contract::MARKER_STAGE2_READY
        )),
        "{contract_sh}"
    );
    assert!(!contract_sh.contains("@K1OS_"), "{contract_sh}");
}
