//! The built image carries `THIRD-PARTY-NOTICES` naming every package and every
//! crate linked into the binaries K1OS ships.

use host_tools::notices::{self, NOTICES_PATH, SHIPPED_BINARIES};
use host_tools::packages;
use host_tools::rootfs::{self, Compression, Options};
use host_tools::run::Cmd;

#[test]
fn image_lists_every_package_and_shipped_crate() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::default_for_checkout(Compression::Zstd);
    opts.staging = dir.path().join("rootfs");
    opts.image = dir.path().join("system.squashfs");
    rootfs::build(&opts, |_| {}).unwrap();

    let text = Cmd::new("unsquashfs")
        .args(["-cat"])
        .arg(&opts.image)
        .arg(NOTICES_PATH)
        .read()
        .unwrap();
    for p in packages::load(&packages::packages_dir()).unwrap() {
        let entry = format!("{} {}\n  licence: {}", p.name, p.version, p.license);
        assert!(text.contains(&entry), "no entry `{entry}` in:\n{text}");
    }
    assert!(
        text.contains("corresponding\n  source"),
        "GPL packages say where their source is"
    );
    for binary in SHIPPED_BINARIES {
        let crates = notices::shipped_crates(binary).unwrap();
        assert!(!crates.is_empty());
        for c in crates {
            let entry = format!("{} {}  ({})", c.name, c.version, c.license);
            assert!(
                text.contains(&entry),
                "no entry `{entry}` for {binary} in:\n{text}"
            );
        }
    }
}
