//! The root image's dm-verity hash tree (`host_tools::verity`) against the
//! reference tool, `veritysetup` (Debian's `cryptsetup-bin`), without a VM:
//! an image packed by the real packer (`rootfs::squashfs`) verifies with
//! `veritysetup verify`, and `veritysetup format` with the same salt and
//! UUID writes the very same bytes; a flipped byte fails both verifiers; two
//! packs of the same tree are byte-identical; the real image
//! (`build/system.squashfs`, or `K1OS_TEST_ROOTFS`) verifies too.
mod common;

use std::fs;
use std::path::Path;

use common::OrPanic;
use host_tools::rootfs::{self, Compression};
use host_tools::run::Cmd;
use host_tools::verity::{self, BLOCK, Verity};
use host_tools::{initramfs, testimg};
use k1os_contract::verity::Params;

/// `veritysetup verify` of `image` (data and tree in the one file) against
/// `root`: whether it passed, and what it said.
fn veritysetup_verify(image: &Path, v: &Verity, root: &str) -> (bool, String) {
    let out = Cmd::new("veritysetup")
        .arg("verify")
        .arg(format!("--hash-offset={}", v.hash_offset()))
        .arg(image)
        .arg(image)
        .arg(root)
        .output_unchecked()
        .or_panic();
    (out.success, format!("{}{}", out.stdout, out.stderr))
}

/// A small tree packed like the real image: the test root filesystem
/// (busybox and a script) plus a file of a few blocks.
fn packed(dir: &Path, name: &str) -> (std::path::PathBuf, Verity) {
    let tree = dir.join("tree");
    if !tree.exists() {
        testimg::test_rootfs(&tree).or_panic();
        fs::write(tree.join("etc/os-release"), "NAME=K1OS\n").unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 253) as u8).collect();
        fs::write(tree.join("etc/blocks"), data).unwrap();
    }
    let image = dir.join(name);
    let v = rootfs::squashfs(&tree, &image, Compression::Zstd, 1_767_225_600).or_panic();
    (image, v)
}

#[test]
fn the_tree_is_veritysetups() {
    let dir = common::scratch("verity-tree");
    let (image, v) = packed(&dir, "a.squashfs");
    assert_eq!(
        fs::metadata(&image).unwrap().len(),
        v.hash_offset() + v.tree_bytes
    );
    assert_eq!(verity::read(&image).or_panic(), v);

    // veritysetup reads our superblock and checks every block.
    let (ok, said) = veritysetup_verify(&image, &v, &v.root_hex());
    assert!(ok, "veritysetup verify failed:\n{said}");
    let wrong = "0".repeat(64);
    let (ok, said) = veritysetup_verify(&image, &v, &wrong);
    assert!(!ok, "veritysetup verify took a wrong root hash:\n{said}");

    // veritysetup format, with our salt and UUID, on the data alone: the
    // same root hash and the very same bytes.
    let copy = dir.join("formatted.squashfs");
    let data = fs::read(&image).unwrap();
    fs::write(&copy, &data[..v.hash_offset() as usize]).unwrap();
    let out = Cmd::new("veritysetup")
        .arg("format")
        .arg(format!("--hash-offset={}", v.hash_offset()))
        .arg(format!("--data-blocks={}", v.data_blocks))
        .arg(format!("--salt={}", v.salt_hex()))
        .arg(format!("--uuid={}", v.uuid_string()))
        .args([
            "--hash=sha256",
            "--data-block-size=4096",
            "--hash-block-size=4096",
        ])
        .arg(&copy)
        .arg(&copy)
        .read()
        .or_panic();
    let root_line = out
        .lines()
        .find_map(|l| l.strip_prefix("Root hash:"))
        .unwrap_or_else(|| panic!("no root hash in veritysetup's output:\n{out}"));
    assert_eq!(root_line.trim(), v.root_hex(), "{out}");
    assert!(
        fs::read(&copy).unwrap() == data,
        "veritysetup format wrote other bytes than host_tools::verity"
    );

    // The parameter line the initramfs gets is the contract's.
    let line = v.line();
    let params = Params::parse(line.as_bytes()).expect("a parameter line");
    assert_eq!(params.data_blocks, v.data_blocks);
    assert_eq!(params.hash_start, v.data_blocks + 1);
    assert_eq!(params.root_hash, v.root_hex().as_bytes());
    let entry = initramfs::verity_archive(&v).or_panic();
    let text = String::from_utf8_lossy(&entry);
    assert!(text.contains("verity") && text.contains(&line), "{text}");
}

#[test]
fn a_flipped_byte_fails_both_verifiers() {
    let dir = common::scratch("verity-flip");
    let (image, v) = packed(&dir, "a.squashfs");
    // A byte in the middle of the data, one in the tree, one in the squashfs
    // superblock.
    for (what, offset) in [
        ("data", v.hash_offset() / 2),
        ("tree", v.hash_offset() + BLOCK + 100),
        ("superblock", 20),
    ] {
        let copy = dir.join(format!("flipped-{what}.squashfs"));
        fs::copy(&image, &copy).unwrap();
        verity::flip_bit(&copy, offset).or_panic();
        let (ok, said) = veritysetup_verify(&copy, &v, &v.root_hex());
        assert!(!ok, "{what}: veritysetup verify passed:\n{said}");
        assert!(verity::read(&copy).is_err(), "{what}: verity::read passed");
    }
}

#[test]
fn two_packs_are_identical() {
    let dir = common::scratch("verity-twice");
    let (a, va) = packed(&dir, "a.squashfs");
    let (b, vb) = packed(&dir, "b.squashfs");
    assert_eq!(va, vb);
    assert!(fs::read(&a).unwrap() == fs::read(&b).unwrap());
    // A different tree, a different salt and root.
    fs::write(dir.join("tree/etc/hostname"), "other\n").unwrap();
    let (_, vc) = packed(&dir, "c.squashfs");
    assert_ne!(vc.salt, va.salt);
    assert_ne!(vc.root_hash, va.root_hash);
}

#[test]
fn the_real_image_verifies() {
    let image = std::env::var_os("K1OS_TEST_ROOTFS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| host_tools::paths::build_dir().join("system.squashfs"));
    assert!(
        image.is_file(),
        "missing {}: run `./k1os rootfs` first (or point K1OS_TEST_ROOTFS at an image)",
        image.display()
    );
    let v = verity::read(&image).or_panic();
    let (ok, said) = veritysetup_verify(&image, &v, &v.root_hex());
    assert!(
        ok,
        "{}: veritysetup verify failed:\n{said}",
        image.display()
    );
    eprintln!(
        "{}: {} data blocks, root hash {}, hash tree {} bytes ({:.2} % of the data)",
        image.display(),
        v.data_blocks,
        v.root_hex(),
        v.tree_bytes,
        v.tree_bytes as f64 * 100.0 / v.hash_offset() as f64
    );
}
