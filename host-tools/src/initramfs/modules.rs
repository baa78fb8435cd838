//! The kernel modules an initramfs carries for a kernel whose drivers are
//! modules (the `debian` profile): [`STAGE1_MODULES`], everything they need
//! per the tree's `modules.dep`, in load order, decompressed, packed under
//! `/lib/modules` with the list stage 1 loads them by
//! (`docs/boot-contract.md`, "Kernel modules").
use anyhow::{Context, Result, bail};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use k1os_contract::contract;

use super::Entry;

/// What stage 1 may need before stage 2 exists, by module name (`-` and `_`
/// are the same, as for modprobe). The kernel K1OS builds has all of it
/// built in (`kernel/k1os.config`); Debian's has it as modules.
pub const STAGE1_MODULES: &[&str] = &[
    // The filesystems: the image, the overlay, the data partition, media.
    "squashfs",
    "overlay",
    "ext4",
    "isofs",
    "vfat",
    // Asked for by name when a filesystem is mounted, which modules.dep does
    // not record: ext4's and jbd2's checksums ("crc32c"; the generic one,
    // because crc32c-intel needs SSE4.2, which QEMU's default CPU lacks),
    // FAT's default code page (437) and character set (ascii in Debian's config).
    "crc32c_generic",
    "nls_cp437",
    "nls_ascii",
    // The image's loop device and the dm-verity device over it.
    "loop",
    "dm_verity",
    // Disks and CD drives: SCSI disks and CD-ROMs (SATA, USB and virtio-scsi
    // disks are SCSI disks), virtio (and its PCI transport, which no
    // virtio driver depends on), NVMe, SATA, IDE.
    "sr_mod",
    "sd_mod",
    "virtio_pci",
    "virtio_blk",
    "virtio_scsi",
    "nvme",
    "ahci",
    "ata_piix",
    // USB sticks: the storage drivers and the host controllers. UHCI and
    // OHCI are EHCI's companions, which low- and full-speed devices (a USB
    // keyboard) on an EHCI port end up on.
    "usb_storage",
    "uas",
    "xhci_pci",
    "ehci_pci",
    "uhci_hcd",
    "ohci_pci",
    // A USB keyboard for the rescue shell.
    "usbhid",
    "hid_generic",
];

/// One module of the tree, as the initramfs carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// Its name as the kernel knows it (`usb_storage`).
    pub name: String,
    /// Its file in the tree (maybe compressed).
    pub path: PathBuf,
    /// Its file name in the initramfs: the tree's, without the compression
    /// suffix (`usb-storage.ko`).
    pub file: String,
}

/// The modules to carry and what was asked for but is not a module.
#[derive(Debug, Default)]
pub struct Selection {
    /// In load order: every module after the ones it needs, each once.
    pub modules: Vec<Module>,
    /// Built into this kernel (`modules.builtin`): nothing to load.
    pub builtin: Vec<String>,
    /// Neither in `modules.dep` nor built in.
    pub missing: Vec<String>,
}

/// `usb-storage` and `usb_storage` are one module.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The file name without its compression suffix and the module's name, for
/// a path in `modules.dep` (`kernel/drivers/usb/storage/usb-storage.ko.xz`
/// → `usb-storage.ko`, `usb_storage`); `None` for a file that is not a
/// module.
fn names(path: &str) -> Option<(String, String)> {
    let base = path.rsplit('/').next()?;
    let base = [".xz", ".zst", ".gz"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    let stem = base.strip_suffix(".ko").filter(|s| !s.is_empty())?;
    Some((base.to_string(), normalize(stem)))
}

/// The modules of `wanted` and everything they need, from `tree` (a
/// `/lib/modules/<release>` directory with its `modules.dep`). A name that
/// is neither a module nor built in is reported in `missing`; nothing at all
/// to load is an error.
pub fn select(tree: &Path, wanted: &[&str]) -> Result<Selection> {
    let dep_file = tree.join("modules.dep");
    let text = fs::read_to_string(&dep_file).with_context(|| {
        format!(
            "reading {} (the tree must be a /lib/modules/<release> with its modules.dep)",
            dep_file.display()
        )
    })?;
    // name → (path, its dependencies' names), in the file's order.
    let mut index: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("{}:{}: `{line}`", dep_file.display(), n + 1);
        let Some((path, deps)) = line.split_once(':') else {
            bail!("{}: not `module: dependencies`", bad());
        };
        let Some((_, name)) = names(path) else {
            bail!("{}: {path} is not a .ko file", bad());
        };
        let mut dep_names = Vec::new();
        for dep in deps.split_whitespace() {
            match names(dep) {
                Some((_, d)) => dep_names.push(d),
                None => bail!("{}: {dep} is not a .ko file", bad()),
            }
        }
        // depmod lists a module once; should a name come twice (updates/
        // over kernel/), the first one is the one modprobe takes.
        index
            .entry(name)
            .or_insert((path.trim().to_string(), dep_names));
    }
    let builtin: BTreeSet<String> = match fs::read_to_string(tree.join("modules.builtin")) {
        Ok(text) => text
            .lines()
            .filter_map(|l| names(l.trim()))
            .map(|(_, n)| n)
            .collect(),
        Err(_) => BTreeSet::new(),
    };

    let mut selection = Selection::default();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for name in wanted.iter().map(|n| normalize(n)) {
        if index.contains_key(&name) {
            visit(
                &name,
                &index,
                tree,
                &mut done,
                &mut Vec::new(),
                &mut selection.modules,
            )
            .with_context(|| format!("{}", dep_file.display()))?;
        } else if builtin.contains(&name) {
            selection.builtin.push(name);
        } else {
            selection.missing.push(name);
        }
    }
    if selection.modules.is_empty() {
        bail!(
            "{}: none of the {} modules asked for is a module of this tree ({} built in, not \
             found: {}): nothing to load",
            tree.display(),
            wanted.len(),
            selection.builtin.len(),
            if selection.missing.is_empty() {
                "none".to_string()
            } else {
                selection.missing.join(", ")
            }
        );
    }
    Ok(selection)
}

/// Depth first: a module's dependencies (each with its own first), then the
/// module. `stack` holds the chain being visited, to name a cycle.
fn visit(
    name: &str,
    index: &HashMap<String, (String, Vec<String>)>,
    tree: &Path,
    done: &mut BTreeSet<String>,
    stack: &mut Vec<String>,
    out: &mut Vec<Module>,
) -> Result<()> {
    if done.contains(name) {
        return Ok(());
    }
    if stack.iter().any(|s| s == name) {
        stack.push(name.to_string());
        bail!("the dependencies form a cycle: {}", stack.join(" -> "));
    }
    let Some((path, deps)) = index.get(name) else {
        bail!(
            "{} needs {name}, which has no line of its own",
            stack.last().map(String::as_str).unwrap_or("?")
        );
    };
    stack.push(name.to_string());
    for dep in deps {
        visit(dep, index, tree, done, stack, out)?;
    }
    stack.pop();
    done.insert(name.to_string());
    let (file, _) = names(path).expect("checked when the index was read");
    out.push(Module {
        name: name.to_string(),
        path: tree.join(path),
        file,
    });
    Ok(())
}

/// A module's bytes as the kernel loads them: decompressed (`.ko.xz`,
/// `.ko.zst`, `.ko.gz`) on the host, so stage 1 needs no decompressor and
/// the initramfs is compressed once, as a whole. The signature a module
/// carries is appended to the uncompressed file, so it stays valid.
pub fn read_module(path: &Path) -> Result<Vec<u8>> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.to_string_lossy();
    let out = if name.ends_with(".ko.xz") {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut &data[..], &mut out)
            .map_err(|e| anyhow::anyhow!("{}: not valid xz: {e:?}", path.display()))?;
        out
    } else if name.ends_with(".ko.zst") {
        zstd::decode_all(&data[..])
            .with_context(|| format!("{}: not valid zstd", path.display()))?
    } else if name.ends_with(".ko.gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: not valid gzip", path.display()))?;
        out
    } else {
        data
    };
    if !out.starts_with(b"\x7fELF") {
        bail!(
            "{}: not a kernel module (no ELF header{})",
            path.display(),
            if name.ends_with(".ko") {
                ""
            } else {
                " after decompression"
            }
        );
    }
    Ok(out)
}

/// The archive entries: `/lib/modules/<file>` for each module and the list
/// file, in load order; and the modules' total uncompressed size.
pub fn entries(modules: &[Module]) -> Result<(Vec<Entry>, u64)> {
    let dir = contract::INITRAMFS_MODULES.trim_start_matches('/');
    let mut out = vec![Entry::dir("lib"), Entry::dir(dir)];
    let mut list = String::new();
    let mut files = BTreeSet::new();
    let mut bytes = 0u64;
    for m in modules {
        // Two modules with one file name (in different directories) would
        // overwrite each other in the flat directory.
        if !files.insert(m.file.clone()) || m.file == contract::MODULE_LIST_NAME {
            bail!(
                "{}: a second module file named {} in the initramfs",
                m.path.display(),
                m.file
            );
        }
        let data = read_module(&m.path)?;
        bytes += data.len() as u64;
        out.push(Entry::file(&format!("{dir}/{}", m.file), 0o444, data));
        list += &m.file;
        list.push('\n');
    }
    if list.len() >= contract::MODULE_LIST_MAX {
        bail!(
            "the list of {} modules is {} bytes: stage 1 reads at most {} \
             (MODULE_LIST_MAX in init-nostd/src/contract.rs)",
            modules.len(),
            list.len(),
            contract::MODULE_LIST_MAX - 1
        );
    }
    out.push(Entry::file(
        contract::INITRAMFS_MODULE_LIST.trim_start_matches('/'),
        0o444,
        list.into_bytes(),
    ));
    Ok((out, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_drop_the_directory_and_the_compression() {
        for (path, file, name) in [
            (
                "kernel/drivers/usb/storage/usb-storage.ko",
                "usb-storage.ko",
                "usb_storage",
            ),
            ("kernel/fs/ext4/ext4.ko.xz", "ext4.ko", "ext4"),
            ("kernel/lib/crc16.ko.zst", "crc16.ko", "crc16"),
        ] {
            assert_eq!(names(path), Some((file.to_string(), name.to_string())));
        }
        assert_eq!(names("kernel/fs/ext4/README"), None);
        assert_eq!(names(".ko"), None);
    }

    fn tree(dep: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("modules.dep"), dep).unwrap();
        dir
    }

    #[test]
    fn a_cycle_is_named() {
        let t = tree("a.ko: b.ko\nb.ko: a.ko\n");
        let err = format!("{:#}", select(t.path(), &["a"]).unwrap_err());
        assert!(err.contains("cycle: a -> b -> a"), "{err}");
    }

    #[test]
    fn a_bad_line_is_named_with_its_number() {
        let t = tree("a.ko: b.ko\nwhat is this\n");
        let err = format!("{:#}", select(t.path(), &["a"]).unwrap_err());
        assert!(err.contains("modules.dep:2: `what is this`"), "{err}");
    }

    #[test]
    fn nothing_to_load_is_an_error_naming_what_was_missing() {
        let t = tree("a.ko:\n");
        fs::write(t.path().join("modules.builtin"), "kernel/x/b.ko\n").unwrap();
        let err = format!("{:#}", select(t.path(), &["b", "nosuch"]).unwrap_err());
        assert!(err.contains("1 built in, not found: nosuch"), "{err}");
    }
}
