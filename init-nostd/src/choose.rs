//! Which block device is the data partition, and in which order to look for
//! the root image: pure decisions over what device discovery and [`probe`]
//! found (`docs/boot-contract.md`, "The media" and "The data partition").
//!
//! A hybrid ISO written to a stick shows the same filesystem on the whole disk
//! (`sda`) and on its partition (`sda1`): when a disk and its own partition
//! both match, the partition is taken. Matches on unrelated devices are
//! ambiguous for the data partition (stage 1 must not guess which one to
//! write to); for the media they are simply tried in turn.
//!
//! [`probe`]: crate::probe::probe

use crate::cmdline::DeviceSpec;
use crate::contract;
use crate::probe::{FsKind, Probe, uuid_matches};

/// Longest kernel block device name kept (the kernel's limit is 32 with the NUL).
pub const NAME_MAX: usize = 32;

/// A kernel block device name, as in `/sys/class/block/<name>` and
/// `/dev/<name>`: `sda1`. Kept inline, so a list of devices needs no allocator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name {
    /// The name, then zeros (so that `==` compares names).
    bytes: [u8; NAME_MAX],
    len: u8,
}

impl Name {
    /// `None` if `name` is longer than [`NAME_MAX`].
    pub fn new(name: &[u8]) -> Option<Name> {
        let mut bytes = [0; NAME_MAX];
        bytes.get_mut(..name.len())?.copy_from_slice(name);
        Some(Name {
            bytes,
            len: name.len() as u8,
        })
    }

    // Not inlined: called in many places of stage 1, each would repeat the check.
    #[inline(never)]
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or_default()
    }
}

/// The name as text (see [`Bytes`](crate::fmt::Bytes)).
impl ufmt::uDisplay for Name {
    fn fmt<W: ufmt::uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> Result<(), W::Error> {
        crate::fmt::Bytes(self.as_bytes()).fmt(f)
    }
}

/// One block device as stage 1 found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Kernel name: `sda1`.
    pub name: Name,
    /// For a partition, the name of its disk: `sda`.
    pub parent: Option<Name>,
    /// `None`: not probed (unreadable) or nothing recognised.
    pub probe: Option<Probe>,
}

/// Result of [`choose_data`]; the numbers are indices into the candidates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    NotFound,
    Found(usize),
    /// Two unrelated devices match (the first two, in candidate order).
    Ambiguous(usize, usize),
}

/// Filesystems the root image can be read from.
fn holds_files(kind: FsKind) -> bool {
    matches!(kind, FsKind::Iso9660 | FsKind::Ext4 | FsKind::Vfat)
}

/// Does `c` match `spec`? A path is taken as given; a label or UUID only
/// counts on a filesystem for which `usable` says yes.
fn matches(c: &Candidate, spec: &DeviceSpec, usable: fn(FsKind) -> bool) -> bool {
    let probe = c.probe.as_ref().filter(|p| usable(p.kind));
    match *spec {
        DeviceSpec::Path(path) => path.strip_prefix(b"/dev/") == Some(c.name.as_bytes()),
        DeviceSpec::Label(label) => probe.is_some_and(|p| p.label() == label),
        DeviceSpec::Uuid(uuid) => probe.is_some_and(|p| uuid_matches(p.uuid(), uuid)),
    }
}

/// `true` if candidate `i` is a disk one of whose partitions also fits `fits`.
// Out of line: measured smaller in stage 1 (its size budget).
#[inline(never)]
fn has_fitting_partition(cands: &[Candidate], i: usize, fits: &dyn Fn(&Candidate) -> bool) -> bool {
    let Some(disk) = cands.get(i) else {
        return false;
    };
    cands
        .iter()
        .any(|c| c.parent == Some(disk.name) && c.name != disk.name && fits(c))
}

/// The data partition: the one candidate matching `spec`. With `LABEL=` or
/// `UUID=` only ext2/3/4 qualifies (the overlay upper must be ext4; a vfat
/// stick with that label is not it); a `/dev/…` path is taken as given.
/// A disk whose own partition also matches yields to the partition; two
/// unrelated matches are [`Choice::Ambiguous`], naming both.
pub fn choose_data(cands: &[Candidate], spec: &DeviceSpec) -> Choice {
    let fits = |c: &Candidate| matches(c, spec, |k| k == FsKind::Ext4);
    let mut found = None;
    for (i, c) in cands.iter().enumerate() {
        if !fits(c) || has_fitting_partition(cands, i, &fits) {
            continue;
        }
        match found {
            None => found = Some(i),
            Some(first) => return Choice::Ambiguous(first, i),
        }
    }
    found.map_or(Choice::NotFound, Choice::Found)
}

/// A device carrying the data partition's label or UUID on a filesystem
/// other than ext2/3/4, which [`choose_data`] therefore passed over: named in
/// the warning when no data partition is found, so that someone who made
/// `K1OS-DATA` as FAT learns why it is not used. `None` for a `/dev/…` spec,
/// which is taken as given (mounting it says what is wrong).
pub fn data_on_other_fs(cands: &[Candidate], spec: &DeviceSpec) -> Option<usize> {
    if matches!(spec, DeviceSpec::Path(_)) {
        return None;
    }
    cands
        .iter()
        .position(|c| matches(c, spec, |k| k != FsKind::Ext4))
}

/// The order in which to look for the root image: indices of candidates,
/// written to `out` (as many as fit), returning how many were written.
///
/// With a spec, only the devices matching it (a label or UUID on iso9660,
/// ext4 or vfat; a path as given). Without one: label
/// [`contract::MEDIA_LABEL`] first, then the other iso9660, vfat and ext4
/// filesystems in that order (ext4 last: it is most likely the data
/// partition). Within each group, partitions come before disks, so a
/// partition is tried before its own disk; otherwise candidate order is kept.
pub fn media_order(cands: &[Candidate], spec: Option<&DeviceSpec>, out: &mut [usize]) -> usize {
    // Without a spec: group 0 is the media label, 1..=3 the other kinds.
    let group = |c: &Candidate| -> Option<usize> {
        if let Some(spec) = spec {
            return matches(c, spec, holds_files).then_some(0);
        }
        let p = c.probe.as_ref().filter(|p| holds_files(p.kind))?;
        if p.label() == contract::MEDIA_LABEL.as_bytes() {
            return Some(0);
        }
        Some(match p.kind {
            FsKind::Iso9660 => 1,
            FsKind::Vfat => 2,
            _ => 3,
        })
    };
    let mut n = 0;
    for g in 0..4 {
        for partitions in [true, false] {
            for (i, c) in cands.iter().enumerate() {
                if c.parent.is_some() != partitions || group(c) != Some(g) {
                    continue;
                }
                if let Some(slot) = out.get_mut(n) {
                    *slot = i;
                    n += 1;
                }
            }
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::probe;
    use DeviceSpec::{Label, Path, Uuid};

    /// A probe with this kind, label and UUID, made from a synthetic
    /// superblock so the test goes through the real parser.
    fn fs(kind: FsKind, label: &[u8], uuid: [u8; 16]) -> Probe {
        let mut b = vec![0; crate::probe::PROBE_LEN];
        match kind {
            FsKind::Ext4 => {
                b[0x438..0x43a].copy_from_slice(&0xef53u16.to_le_bytes());
                b[0x468..0x478].copy_from_slice(&uuid);
                b[0x478..0x478 + label.len()].copy_from_slice(label);
            }
            FsKind::Iso9660 => {
                b[0x8000..0x8006].copy_from_slice(b"\x01CD001");
                b[0x8028..0x8048].fill(b' ');
                b[0x8028..0x8028 + label.len()].copy_from_slice(label);
                b[0x8000 + 830..0x8000 + 846].copy_from_slice(b"2026112617000000");
            }
            FsKind::Vfat => {
                b[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
                b[0x0d] = 1;
                b[0x0e] = 1;
                b[0x10] = 2;
                b[0x15] = 0xf8;
                b[0x16] = 8;
                b[0x27..0x2b].copy_from_slice(&uuid[..4]);
                b[0x2b..0x36].fill(b' ');
                b[0x2b..0x2b + label.len()].copy_from_slice(label);
                b[0x36..0x3e].copy_from_slice(b"FAT16   ");
                b[510..512].copy_from_slice(&[0x55, 0xaa]);
            }
            FsKind::Squashfs => {
                b[..4].copy_from_slice(b"hsqs");
                b[28] = 4;
            }
        }
        let p = probe(&b).unwrap();
        assert_eq!(p.kind, kind);
        p
    }

    fn cand(name: &str, parent: Option<&str>, probe: Option<&Probe>) -> Candidate {
        let to_name = |n: &str| Name::new(n.as_bytes()).unwrap();
        Candidate {
            name: to_name(name),
            parent: parent.map(to_name),
            probe: probe.copied(),
        }
    }

    fn order(cands: &[Candidate], spec: Option<&DeviceSpec>) -> Vec<usize> {
        let mut out = [usize::MAX; 16];
        let n = media_order(cands, spec, &mut out);
        out[..n].to_vec()
    }

    const DATA: DeviceSpec = Label(contract::DATA_LABEL.as_bytes());

    #[test]
    fn data_by_label() {
        let data = fs(FsKind::Ext4, b"K1OS-DATA", [1; 16]);
        let other = fs(FsKind::Ext4, b"home", [2; 16]);
        let cands = [
            cand("sr0", None, None),
            cand("sda", None, None),
            cand("sda1", Some("sda"), Some(&other)),
            cand("sda2", Some("sda"), Some(&data)),
        ];
        assert_eq!(choose_data(&cands, &DATA), Choice::Found(3));
        // Labels are exact bytes.
        assert_eq!(choose_data(&cands, &Label(b"k1os-data")), Choice::NotFound);
        assert_eq!(choose_data(&cands, &Label(b"K1OS-DAT")), Choice::NotFound);
    }

    #[test]
    fn names() {
        let long = [b'x'; NAME_MAX];
        assert_eq!(Name::new(&long).unwrap().as_bytes(), &long);
        assert_eq!(Name::new(&[b'x'; NAME_MAX + 1]), None);
        assert_eq!(Name::new(b"").unwrap().as_bytes(), b"");
        assert_eq!(Name::new(b"sda"), Name::new(b"sda"));
        assert_ne!(Name::new(b"sda"), Name::new(b"sda1"));
    }

    #[test]
    fn data_nothing_found() {
        assert_eq!(choose_data(&[], &DATA), Choice::NotFound);
        let cands = [cand("sda", None, None), cand("vda", None, None)];
        assert_eq!(choose_data(&cands, &DATA), Choice::NotFound);
        assert_eq!(choose_data(&cands, &Uuid(b"0101")), Choice::NotFound);
    }

    #[test]
    fn data_only_on_ext4() {
        let vfat = fs(FsKind::Vfat, b"K1OS-DATA", [1; 16]);
        let iso = fs(FsKind::Iso9660, b"K1OS-DATA", [0; 16]);
        let cands = [
            cand("sda1", Some("sda"), Some(&vfat)),
            cand("sr0", None, Some(&iso)),
        ];
        assert_eq!(choose_data(&cands, &DATA), Choice::NotFound);
        assert_eq!(choose_data(&cands, &Uuid(b"0101-0101")), Choice::NotFound);
        // A path is taken as given, even to something we did not recognise.
        assert_eq!(choose_data(&cands, &Path(b"/dev/sda1")), Choice::Found(0));
        let unknown = [cand("sdb", None, None)];
        assert_eq!(choose_data(&unknown, &Path(b"/dev/sdb")), Choice::Found(0));
    }

    #[test]
    fn data_label_on_another_filesystem_is_named() {
        let vfat = fs(FsKind::Vfat, b"K1OS-DATA", [1; 16]);
        let data = fs(FsKind::Ext4, b"K1OS-DATA", [2; 16]);
        let home = fs(FsKind::Ext4, b"home", [3; 16]);
        let cands = [
            cand("sda", None, None),
            cand("sda1", Some("sda"), Some(&home)),
            cand("sdb1", Some("sdb"), Some(&vfat)),
        ];
        assert_eq!(choose_data(&cands, &DATA), Choice::NotFound);
        assert_eq!(data_on_other_fs(&cands, &DATA), Some(2));
        assert_eq!(data_on_other_fs(&cands, &Uuid(b"0101-0101")), Some(2));
        // Not for another label, an ext4 of its own, or a path.
        assert_eq!(data_on_other_fs(&cands, &Label(b"home")), None);
        assert_eq!(data_on_other_fs(&cands, &Path(b"/dev/sdb1")), None);
        assert_eq!(data_on_other_fs(&cands[..2], &DATA), None);
        assert_eq!(data_on_other_fs(&[], &DATA), None);
        let both = [
            cand("sdb1", Some("sdb"), Some(&vfat)),
            cand("vda", None, Some(&data)),
        ];
        assert_eq!(choose_data(&both, &DATA), Choice::Found(1));
    }

    #[test]
    fn data_by_uuid_and_path() {
        let a = fs(FsKind::Ext4, b"", [0xab; 16]);
        let b = fs(FsKind::Ext4, b"", [0xcd; 16]);
        let cands = [
            cand("nvme0n1", None, None),
            cand("nvme0n1p1", Some("nvme0n1"), Some(&a)),
            cand("nvme0n1p2", Some("nvme0n1"), Some(&b)),
        ];
        let spec = Uuid(b"CDCDCDCD-CDCD-CDCD-CDCD-CDCDCDCDCDCD");
        assert_eq!(choose_data(&cands, &spec), Choice::Found(2));
        assert_eq!(choose_data(&cands, &Uuid(b"abab")), Choice::NotFound);
        assert_eq!(
            choose_data(&cands, &Path(b"/dev/nvme0n1p1")),
            Choice::Found(1)
        );
        assert_eq!(
            choose_data(&cands, &Path(b"/dev/nvme0n1")),
            Choice::Found(0)
        );
        assert_eq!(
            choose_data(&cands, &Path(b"/dev/nvme0n1p3")),
            Choice::NotFound
        );
        assert_eq!(
            choose_data(&cands, &Path(b"/dev/disk/by-label/x")),
            Choice::NotFound
        );
    }

    #[test]
    fn data_partition_beats_its_disk() {
        let data = fs(FsKind::Ext4, b"K1OS-DATA", [1; 16]);
        // Disk listed before and after its partition.
        let cands = [
            cand("sdb", None, Some(&data)),
            cand("sdb1", Some("sdb"), Some(&data)),
        ];
        assert_eq!(choose_data(&cands, &DATA), Choice::Found(1));
        let cands = [
            cand("sdb1", Some("sdb"), Some(&data)),
            cand("sdb", None, Some(&data)),
        ];
        assert_eq!(choose_data(&cands, &DATA), Choice::Found(0));
        // A whole-disk filesystem alone is fine.
        let cands = [cand("vdb", None, Some(&data))];
        assert_eq!(choose_data(&cands, &DATA), Choice::Found(0));
    }

    #[test]
    fn data_duplicates_are_ambiguous() {
        let data = fs(FsKind::Ext4, b"K1OS-DATA", [1; 16]);
        let cands = [
            cand("sda", None, None),
            cand("sda1", Some("sda"), Some(&data)),
            cand("sdb", None, Some(&data)),
            cand("sdb1", Some("sdb"), Some(&data)),
        ];
        assert_eq!(choose_data(&cands, &DATA), Choice::Ambiguous(1, 3));
        // Two partitions of one disk are two filesystems: ambiguous too.
        let cands = [
            cand("sda1", Some("sda"), Some(&data)),
            cand("sda2", Some("sda"), Some(&data)),
        ];
        assert_eq!(choose_data(&cands, &DATA), Choice::Ambiguous(0, 1));
        // Same UUID on two disks (a cloned stick).
        let spec = Uuid(b"01010101-0101-0101-0101-010101010101");
        let cands = [
            cand("sdc", None, Some(&data)),
            cand("sdd", None, Some(&data)),
        ];
        assert_eq!(choose_data(&cands, &spec), Choice::Ambiguous(0, 1));
    }

    #[test]
    fn media_label_first() {
        let media = fs(FsKind::Iso9660, b"K1OS", [0; 16]);
        let other_iso = fs(FsKind::Iso9660, b"DEBIAN", [0; 16]);
        let stick = fs(FsKind::Vfat, b"STICK", [1; 16]);
        let data = fs(FsKind::Ext4, b"K1OS-DATA", [1; 16]);
        let sq = fs(FsKind::Squashfs, b"", [0; 16]);
        let cands = [
            cand("sda", None, None),
            cand("sda1", Some("sda"), Some(&data)),
            cand("sdb1", Some("sdb"), Some(&stick)),
            cand("sr0", None, Some(&other_iso)),
            cand("sr1", None, Some(&media)),
            cand("loop0", None, Some(&sq)),
        ];
        assert_eq!(order(&cands, None), vec![4, 3, 2, 1]);
    }

    /// A hybrid ISO written to a stick: `sda` and `sda1` both carry K1OS.
    #[test]
    fn media_hybrid_iso_partition_before_disk() {
        let media = fs(FsKind::Iso9660, b"K1OS", [0; 16]);
        let esp = fs(FsKind::Vfat, b"", [2; 16]);
        let cands = [
            cand("sda", None, Some(&media)),
            cand("sda1", Some("sda"), Some(&media)),
            cand("sda2", Some("sda"), Some(&esp)),
        ];
        assert_eq!(order(&cands, None), vec![1, 0, 2]);
        assert_eq!(order(&cands, Some(&Label(b"K1OS"))), vec![1, 0]);
    }

    #[test]
    fn media_with_spec() {
        let media = fs(FsKind::Vfat, b"K1OS", [0x12; 16]);
        let other = fs(FsKind::Vfat, b"K1OS", [0x34; 16]);
        let sq = fs(FsKind::Squashfs, b"", [0; 16]);
        let cands = [
            cand("sdb1", Some("sdb"), Some(&other)),
            cand("sdc1", Some("sdc"), Some(&media)),
            cand("sr0", None, Some(&sq)),
            cand("sdd", None, None),
        ];
        assert_eq!(order(&cands, Some(&Uuid(b"1212-1212"))), vec![1]);
        assert_eq!(order(&cands, Some(&Label(b"K1OS"))), vec![0, 1]);
        assert_eq!(order(&cands, Some(&Label(b"NOPE"))), vec![]);
        assert_eq!(order(&cands, Some(&Path(b"/dev/sdd"))), vec![3]);
        assert_eq!(order(&cands, Some(&Path(b"/dev/sdc1"))), vec![1]);
    }

    #[test]
    fn media_out_too_small() {
        let media = fs(FsKind::Iso9660, b"K1OS", [0; 16]);
        let cands = [
            cand("sr0", None, Some(&media)),
            cand("sr1", None, Some(&media)),
            cand("sr2", None, Some(&media)),
        ];
        let mut out = [0; 2];
        assert_eq!(media_order(&cands, None, &mut out), 2);
        assert_eq!(out, [0, 1]);
        assert_eq!(media_order(&cands, None, &mut []), 0);
        assert_eq!(order(&[], None), vec![]);
    }
}
