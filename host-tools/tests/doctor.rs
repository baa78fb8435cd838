//! `doctor --install`'s plan against apt's real answers: outputs of
//! `LANG=C apt-get -s install …` and `apt-cache policy` recorded on a Debian 12
//! machine whose `qemu-utils` came from bookworm-backports (10.0.2), where
//! installing Debian 12's `qemu-system-x86` (7.2) removes or breaks it.
use host_tools::doctor::{
    Lack, PinnedPackage, Plan, Policy, Purpose, Simulation, packages_for, resolve,
};

const BREAKS: &str = include_str!("fixtures/apt/install-breaks.txt");
const REMOVES: &str = include_str!("fixtures/apt/install-removes.txt");
const DOWNGRADES: &str = include_str!("fixtures/apt/install-downgrades.txt");
const VERSION_GONE: &str = include_str!("fixtures/apt/install-version-gone.txt");
const POLICY_QEMU_UTILS: &str = include_str!("fixtures/apt/policy-qemu-utils.txt");
const POLICY_LINUX_SOURCE: &str = include_str!("fixtures/apt/policy-linux-source.txt");

fn kernel_pin() -> PinnedPackage {
    PinnedPackage {
        name: "linux-source-6.1".into(),
        version: "6.1.192-2".into(),
        pinned_in: "kernel/pin.toml".into(),
    }
}

fn lack(package: &str) -> Lack {
    Lack::Package {
        what: format!("program for {package}"),
        package: package.into(),
    }
}

#[test]
fn the_plan_is_the_whole_set_when_anything_is_missing() {
    let plan = Plan::for_lacks(Purpose::Test, &[kernel_pin()], &[lack("qemu-system-x86")]);
    let names = plan.names();
    for package in packages_for(Purpose::Test) {
        assert!(names.contains(&package), "{package} missing from {names:?}");
    }
    // Installed and needed: asked for anyway, so apt cannot trade it away.
    assert!(names.contains(&"qemu-utils"));
    assert!(
        plan.requests
            .contains(&"linux-source-6.1=6.1.192-2".to_string())
    );
    assert!(!plan.requests.contains(&"linux-source-6.1".to_string()));
    assert!(!plan.allow_downgrades);
}

#[test]
fn nothing_missing_means_no_apt_at_all() {
    let plan = Plan::for_lacks(Purpose::Test, &[kernel_pin()], &[Lack::RustTarget("x")]);
    assert!(plan.requests.is_empty());
}

#[test]
fn the_build_purpose_needs_no_test_tools() {
    let build = packages_for(Purpose::Build);
    for test_only in [
        "qemu-system-x86",
        "qemu-utils",
        "ovmf",
        "gdisk",
        "busybox-static",
        "dosfstools",
        "fdisk",
    ] {
        assert!(!build.contains(&test_only), "{test_only} in the build set");
        assert!(packages_for(Purpose::Test).contains(&test_only));
    }
    for needed in [
        "xorriso",
        "grub-pc-bin",
        "grub-efi-amd64-bin",
        "squashfs-tools",
        "bison",
    ] {
        assert!(build.contains(&needed), "{needed} not in the build set");
    }
}

#[test]
fn a_pinned_package_at_another_version_allows_the_downgrade() {
    let lacks = [Lack::PinnedVersion {
        pin: kernel_pin(),
        installed: Some("6.1.192-3".into()),
    }];
    let plan = Plan::for_lacks(Purpose::Build, &[kernel_pin()], &lacks);
    assert!(plan.allow_downgrades);
    assert!(
        plan.requests
            .contains(&"linux-source-6.1=6.1.192-2".to_string())
    );
}

#[test]
fn a_removal_of_a_needed_package_is_caught() {
    let sim = Simulation::parse(REMOVES, true);
    assert_eq!(sim.removes, ["qemu-utils"]);
    assert!(!sim.is_clean());
    assert_eq!(
        sim.conflicts(&["qemu-system-x86", "qemu-utils"]),
        ["qemu-utils"]
    );
}

#[test]
fn a_breaks_conflict_is_caught() {
    let sim = Simulation::parse(BREAKS, false);
    assert!(!sim.is_clean());
    assert_eq!(sim.broken, ["qemu-utils"]);
    assert!(
        sim.explanation
            .iter()
            .any(|l| l.contains("Breaks: qemu-system-common"))
    );
}

#[test]
fn the_resolved_plan_simulates_clean() {
    let sim = Simulation::parse(DOWNGRADES, true);
    assert!(sim.is_clean(), "{sim:?}");
    assert_eq!(sim.downgrades, ["qemu-utils"]);
}

#[test]
fn policy_finds_the_archive_version_beside_a_foreign_installed_one() {
    let policy = Policy::parse(POLICY_QEMU_UTILS);
    assert_eq!(
        policy.installed.as_deref(),
        Some("1:10.0.2+ds-2+deb13u1~bpo12+1")
    );
    // The installed version is listed only by the dpkg status file: not an archive.
    assert!(!policy.archive.iter().any(|(v, _)| v.contains("bpo12")));
    assert_eq!(policy.archive_version(), Some("1:7.2+dfsg-7+deb12u18+b3"));
}

#[test]
fn a_conflict_is_resolved_by_requesting_the_archive_version() {
    let plan = Plan::for_lacks(Purpose::Test, &[kernel_pin()], &[lack("qemu-system-x86")]);
    for (fixture, solvable) in [(BREAKS, false), (REMOVES, true)] {
        let sim = Simulation::parse(fixture, solvable);
        let resolved = resolve(plan.clone(), &sim, |package| {
            assert_eq!(package, "qemu-utils");
            Ok(Policy::parse(POLICY_QEMU_UTILS))
        })
        .unwrap();
        assert!(resolved.allow_downgrades);
        assert!(
            resolved
                .requests
                .contains(&"qemu-utils=1:7.2+dfsg-7+deb12u18+b3".to_string())
        );
        assert_eq!(resolved.requests.len(), plan.requests.len());
        assert_eq!(
            resolved.downgrades,
            [(
                "qemu-utils".to_string(),
                "1:10.0.2+ds-2+deb13u1~bpo12+1".to_string(),
                "1:7.2+dfsg-7+deb12u18+b3".to_string()
            )]
        );
    }
}

#[test]
fn a_conflict_apt_already_resolved_at_the_archive_version_stops_with_apt_words() {
    let plan = Plan::for_lacks(Purpose::Test, &[kernel_pin()], &[lack("qemu-system-x86")]);
    let sim = Simulation::parse(BREAKS, false);
    // qemu-utils already at the archive's version: nothing K1OS can pick.
    let err = resolve(plan, &sim, |_| {
        Ok(Policy {
            installed: Some("1:7.2+dfsg-7+deb12u18+b3".into()),
            candidate: Some("1:7.2+dfsg-7+deb12u18+b3".into()),
            archive: vec![("1:7.2+dfsg-7+deb12u18+b3".into(), 500)],
        })
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("qemu-utils"), "{err}");
    assert!(err.contains("Breaks: qemu-system-common"), "{err}");
    assert!(err.contains("Nothing was installed"), "{err}");
}

#[test]
fn a_pin_that_left_the_archive_says_how_to_move_on() {
    let plan = Plan::for_lacks(Purpose::Build, &[kernel_pin()], &[lack("bc")]);
    let sim = Simulation::parse(VERSION_GONE, false);
    assert_eq!(
        sim.unknown_versions,
        [("linux-source-6.1".to_string(), "6.1.100-1".to_string())]
    );
    let err = resolve(plan, &sim, |package| {
        assert_eq!(package, "linux-source-6.1");
        Ok(Policy::parse(POLICY_LINUX_SOURCE))
    })
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("linux-source-6.1 6.1.100-1 is not in the archive"),
        "{err}"
    );
    assert!(err.contains("6.1.192-3"), "{err}");
    assert!(err.contains("./k1os kernel pin"), "{err}");
}

#[test]
fn lacks_say_how_to_fix_them() {
    assert_eq!(lack("qemu-utils").fix(), "sudo apt-get install qemu-utils");
    let toolchain = Lack::Toolchain("cargo").describe();
    assert!(toolchain.contains("`cargo` is not on PATH"), "{toolchain}");
    assert!(toolchain.contains("rustup"), "{toolchain}");
    let pinned = Lack::PinnedVersion {
        pin: kernel_pin(),
        installed: Some("6.1.192-3".into()),
    };
    assert_eq!(
        pinned.describe(),
        "linux-source-6.1 6.1.192-3 is installed, but kernel/pin.toml pins 6.1.192-2"
    );
}

#[test]
fn a_conflict_that_outlives_its_fix_stops_instead_of_pinning_again() {
    let plan = Plan::for_lacks(Purpose::Test, &[kernel_pin()], &[lack("qemu-system-x86")]);
    let sim = Simulation::parse(BREAKS, false);
    let policy = |_: &str| Ok(Policy::parse(POLICY_QEMU_UTILS));
    let once = resolve(plan, &sim, policy).unwrap();
    assert_eq!(once.downgrades.len(), 1);
    // apt still says the same after the pin: nothing new to request.
    let err = resolve(once, &sim, policy).unwrap_err().to_string();
    assert!(err.contains("Breaks: qemu-system-common"), "{err}");
    assert!(err.contains("Nothing was installed"), "{err}");
}
