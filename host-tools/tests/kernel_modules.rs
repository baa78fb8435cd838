//! The initramfs's kernel modules (`host_tools::initramfs::modules`) on the
//! real Debian module tree — the `debian` profile's package, downloaded and
//! unpacked into the cache by `kernel::debian::ensure_entry` (a minute the
//! first time, then cached): the load order follows `modules.dep`, each
//! module once; `.ko.xz` and `.ko.zst` are decompressed to the very bytes
//! of the `.ko`; a name the tree lacks is a warning from `host-tools
//! initramfs` naming it; nothing to load is an error.
mod common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::OrPanic;
use host_tools::initramfs::modules::{self, STAGE1_MODULES, normalize};
use host_tools::kernel::debian;
use host_tools::run::Cmd;
use k1os_contract::contract;

/// The real module tree, once per process.
fn tree() -> &'static Path {
    static TREE: OnceLock<PathBuf> = OnceLock::new();
    TREE.get_or_init(|| debian::ensure_entry().or_panic().modules)
}

/// `modules.dep` of `tree` as name → its dependencies' names.
fn deps(tree: &Path) -> HashMap<String, Vec<String>> {
    let name = |p: &str| {
        let base = p.trim().rsplit('/').next().unwrap();
        normalize(base.split(".ko").next().unwrap())
    };
    fs::read_to_string(tree.join("modules.dep"))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, d)| (name(m), d.split_whitespace().map(name).collect()))
        .collect()
}

#[test]
fn the_real_tree_gives_every_module_after_what_it_needs_once() {
    let selection = modules::select(tree(), STAGE1_MODULES).or_panic();
    assert!(
        selection.missing.is_empty() && selection.builtin.is_empty(),
        "Debian's kernel has every stage-1 driver as a module: missing {:?}, built in {:?}",
        selection.missing,
        selection.builtin
    );
    let order: Vec<&str> = selection.modules.iter().map(|m| m.name.as_str()).collect();
    let position = |n: &str| order.iter().position(|m| *m == n);
    let deps = deps(tree());
    for (i, m) in order.iter().enumerate() {
        assert_eq!(position(m), Some(i), "{m} is listed twice: {order:?}");
        for dep in &deps[*m] {
            let at = position(dep).unwrap_or_else(|| panic!("{m} needs {dep}, not packed"));
            assert!(at < i, "{m} (#{i}) before its dependency {dep} (#{at})");
        }
    }
    for wanted in STAGE1_MODULES {
        assert!(position(&normalize(wanted)).is_some(), "{wanted} missing");
    }
    // What the kernel cannot do without, by name.
    for (module, before) in [
        ("ext4", ["jbd2", "mbcache", "crc16"].as_slice()),
        ("usb_storage", &["usbcore", "scsi_mod"]),
        ("uas", &["usb_storage"]),
        ("dm_verity", &["dm_mod", "dm_bufio"]),
        ("sd_mod", &["scsi_mod"]),
    ] {
        for b in before {
            assert!(
                position(b) < position(module),
                "{b} after {module}: {order:?}"
            );
        }
    }
    println!("load order ({}): {}", order.len(), order.join(" "));

    // Packed: one .ko per module under /lib/modules and the list in that order.
    let (entries, bytes) = modules::entries(&selection.modules).or_panic();
    let list = entries
        .iter()
        .find(|e| format!("/{}", e.path) == contract::INITRAMFS_MODULE_LIST)
        .expect("the list is packed");
    let host_tools::initramfs::Kind::File(text) = &list.kind else {
        panic!("the list is not a file")
    };
    let lines: Vec<&str> = std::str::from_utf8(text).unwrap().lines().collect();
    let files: Vec<&str> = selection.modules.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(lines, files);
    assert!(files.contains(&"usb-storage.ko"), "{files:?}");
    println!("modules: {bytes} bytes uncompressed");
}

/// A scratch tree: the real `modules.dep` with `compress` modules' files
/// compressed by the kernel's own recipe (`xz --check=crc32
/// --lzma2=dict=1MiB`, `zstd`), every other path pointing at the real tree.
fn compressed_tree(dir: &Path, compress: &[(&str, &str)]) -> PathBuf {
    let scratch = dir.join("tree");
    fs::create_dir_all(&scratch).unwrap();
    let real = tree();
    let mut dep = fs::read_to_string(real.join("modules.dep")).unwrap();
    for (path, ext) in compress {
        // A copy, compressed in place (the tool adds the suffix).
        let copy = scratch.join(path);
        fs::create_dir_all(copy.parent().unwrap()).unwrap();
        fs::copy(real.join(path), &copy).unwrap();
        let cmd = match *ext {
            "xz" => Cmd::new("xz").args(["--check=crc32", "--lzma2=dict=1MiB"]),
            _ => Cmd::new("zstd").args(["-q", "-19", "--rm"]),
        };
        cmd.arg(&copy).run().or_panic();
        assert!(scratch.join(format!("{path}.{ext}")).is_file());
        dep = dep.replace(&format!("{path}:"), &format!("{path}.{ext}:"));
        dep = dep.replace(&format!("{path} "), &format!("{path}.{ext} "));
        dep = dep.replace(&format!("{path}\n"), &format!("{path}.{ext}\n"));
    }
    // The uncompressed modules: the real files, through a link per top
    // directory the compressed ones are not under.
    fs::write(scratch.join("modules.dep"), dep).unwrap();
    for entry in fs::read_dir(real.join("kernel")).unwrap() {
        let entry = entry.unwrap();
        let link = scratch.join("kernel").join(entry.file_name());
        if !link.exists() {
            fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(entry.path(), &link).unwrap();
        }
    }
    scratch
}

#[test]
fn xz_and_zstd_modules_are_decompressed_to_the_same_bytes() {
    let dir = common::scratch("kernel-modules-compressed");
    // ext4 and jbd2 under kernel/fs (a real directory in the scratch tree,
    // so kernel/fs's other modules would be missing: only these two are
    // selected); usb-storage's deps come from the links.
    let compress = [
        ("kernel/fs/ext4/ext4.ko", "xz"),
        ("kernel/fs/jbd2/jbd2.ko", "zst"),
        ("kernel/fs/mbcache.ko", "xz"),
        ("kernel/lib/crc16.ko", "zst"),
    ];
    let scratch = compressed_tree(&dir, &compress);
    let selection = modules::select(&scratch, &["ext4"]).or_panic();
    let files: Vec<&str> = selection.modules.iter().map(|m| m.file.as_str()).collect();
    assert_eq!(files.last(), Some(&"ext4.ko"), "{files:?}");
    for (path, ext) in compress {
        let m = selection
            .modules
            .iter()
            .find(|m| m.path.ends_with(format!("{path}.{ext}")))
            .unwrap_or_else(|| panic!("{path}.{ext} not selected: {files:?}"));
        assert!(m.file.ends_with(".ko"), "{}", m.file);
        let original = fs::read(tree().join(path)).unwrap();
        let decompressed = modules::read_module(&m.path).or_panic();
        assert!(
            decompressed == original,
            "{path}.{ext}: {} bytes decompressed, the .ko has {}",
            decompressed.len(),
            original.len()
        );
    }
    // Damaged data is an error naming the file.
    let bad = scratch.join("kernel/fs/ext4/ext4.ko.xz");
    let mut data = fs::read(&bad).unwrap();
    let middle = data.len() / 2;
    data[middle] ^= 0xff;
    fs::write(&bad, data).unwrap();
    let err = format!("{:#}", modules::read_module(&bad).unwrap_err());
    assert!(err.contains("ext4.ko.xz") && err.contains("xz"), "{err}");
}

#[test]
fn a_name_the_tree_lacks_is_a_warning_naming_it() {
    let real = tree();
    let selection = modules::select(real, &["ext4", "no_such_driver"]).or_panic();
    assert_eq!(selection.missing, ["no_such_driver"]);
    assert_eq!(selection.modules.last().unwrap().name, "ext4");

    // Through the command: a tree without `uas` (its line dropped from
    // modules.dep; nothing depends on it).
    let dir = common::scratch("kernel-modules-missing");
    let scratch = dir.join("tree");
    fs::create_dir_all(&scratch).unwrap();
    let dep: String = fs::read_to_string(real.join("modules.dep"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("kernel/drivers/usb/storage/uas.ko:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(scratch.join("modules.dep"), dep).unwrap();
    std::os::unix::fs::symlink(real.join("kernel"), scratch.join("kernel")).unwrap();
    let out = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(["initramfs", "--compress", "none", "--out"])
        .arg(dir.join("out"))
        .arg("--kernel-modules")
        .arg(&scratch)
        .output_unchecked()
        .or_panic();
    assert!(out.success, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("warning: kernel module uas: not in"),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("kernel modules: ") && out.stdout.contains(" 1 not found"),
        "{}",
        out.stdout
    );
}

#[test]
fn nothing_to_load_is_an_error() {
    let err = format!(
        "{:#}",
        modules::select(tree(), &["no_such_driver", "nor_this"]).unwrap_err()
    );
    assert!(
        err.contains("nothing to load") && err.contains("no_such_driver, nor_this"),
        "{err}"
    );
}
