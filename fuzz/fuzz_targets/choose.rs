//! The device choice (`k1os_contract::choose`): which device is the data
//! partition, and in which order the media are tried.
//!
//! The input describes a machine: block devices with kernel names (often the
//! same few, so disks and their partitions meet), a parent disk or none, and
//! what each holds — a filesystem with a label and UUID, written as a real
//! superblock and read back through `probe` as stage 1 does, or raw bytes,
//! or nothing readable — and a device spec (a label, UUID or path, often one
//! of the devices' own, or any bytes through `DeviceSpec::parse`).
//!
//! Asserts, against a reference written here from the contract's words
//! (docs/boot-contract.md, "The data partition" and "The media"):
//! - `choose_data` never picks a device that does not match: `Found(i)` is a
//!   device whose ext2/3/4 label or UUID matches (or whose path is the spec),
//!   and it is the only match once disks whose own partition matches are set
//!   aside; two such matches are `Ambiguous`, naming the first two; none is
//!   `NotFound`;
//! - `media_order` lists exactly the devices that can hold the image (an
//!   ISO 9660, FAT or ext filesystem; with a spec, the ones matching it),
//!   each once, label `K1OS` first, then ISO 9660, FAT, ext; partitions
//!   before disks within each group, device order otherwise; and a short
//!   output buffer gets the first of them, never more than fit.
#![no_main]

use arbitrary::Arbitrary;
use k1os_contract::choose::{self, Candidate, Choice, NAME_MAX, Name};
use k1os_contract::cmdline::DeviceSpec;
use k1os_contract::contract;
use k1os_contract::probe::{self, FsKind, PROBE_LEN, Probe};
use libfuzzer_sys::fuzz_target;

/// Names that make disks, partitions and duplicates likely.
const NAMES: &[&str] = &[
    "sda",
    "sda1",
    "sda2",
    "sdb",
    "sdb1",
    "sr0",
    "vda",
    "vda1",
    "nvme0n1",
    "nvme0n1p1",
];
const LABELS: &[&str] = &["K1OS-DATA", "K1OS", "k1os-data", "DATA", "K1OS-DATA "];

#[derive(Arbitrary, Debug)]
enum NamePick {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum LabelPick {
    Known(u8),
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Content {
    Unreadable,
    /// A filesystem of kind `kind % 4`, made from a real superblock layout.
    Fs {
        kind: u8,
        label: LabelPick,
        /// Few distinct UUIDs, so that two devices share one.
        uuid: u8,
    },
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Device {
    name: NamePick,
    parent: Option<NamePick>,
    content: Content,
}

#[derive(Arbitrary, Debug)]
enum SpecPick {
    /// The label, UUID or path of device `n` (modulo their number).
    LabelOf(u8),
    UuidOf {
        device: u8,
        dashes: u8,
        upper: bool,
    },
    PathOf(u8),
    Label(LabelPick),
    Any(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Machine {
    devices: Vec<Device>,
    spec: SpecPick,
    /// How many slots the media order gets.
    slots: u8,
}

fn name_bytes(pick: &NamePick) -> Vec<u8> {
    match pick {
        NamePick::Known(i) => NAMES[usize::from(*i) % NAMES.len()].as_bytes().to_vec(),
        NamePick::Raw(raw) => raw.iter().take(NAME_MAX).copied().collect(),
    }
}

fn label_bytes(pick: &LabelPick) -> Vec<u8> {
    match pick {
        LabelPick::Known(i) => LABELS[usize::from(*i) % LABELS.len()].as_bytes().to_vec(),
        LabelPick::Raw(raw) => raw.iter().take(40).copied().collect(),
    }
}

/// A device holding `kind` with this label and UUID, as its first bytes.
fn superblock(kind: FsKind, label: &[u8], uuid: u8) -> Vec<u8> {
    let uuid = [uuid.wrapping_mul(37) | 1; 16];
    let mut b = vec![0; PROBE_LEN];
    let mut put = |at: usize, bytes: &[u8], max: usize| {
        let n = bytes.len().min(max);
        b[at..at + n].copy_from_slice(&bytes[..n]);
    };
    match kind {
        FsKind::Ext4 => {
            put(0x438, &0xef53u16.to_le_bytes(), 2);
            put(0x468, &uuid, 16);
            put(0x478, label, 16);
        }
        FsKind::Iso9660 => {
            put(0x8000, b"\x01CD001", 6);
            put(0x8028, &[b' '; 32], 32);
            put(0x8028, label, 32);
            let digits: Vec<u8> = uuid.iter().map(|d| b'0' + d % 10).collect();
            put(0x8000 + 830, &digits, 16);
        }
        FsKind::Vfat => {
            put(0x0b, &512u16.to_le_bytes(), 2);
            put(0x0d, &[1], 1);
            put(0x0e, &[1], 1);
            put(0x10, &[2], 1);
            put(0x15, &[0xf8], 1);
            put(0x16, &[8], 1);
            put(0x27, &uuid[..4], 4);
            put(0x2b, &[b' '; 11], 11);
            put(0x2b, label, 11);
            put(0x36, b"FAT16   ", 8);
            put(510, &[0x55, 0xaa], 2);
        }
        FsKind::Squashfs => {
            put(0, b"hsqs", 4);
            put(28, &[4], 1);
        }
    }
    b
}

const KINDS: [FsKind; 4] = [
    FsKind::Ext4,
    FsKind::Iso9660,
    FsKind::Vfat,
    FsKind::Squashfs,
];

fn candidate(d: &Device) -> Candidate {
    let probe = match &d.content {
        Content::Unreadable => None,
        Content::Fs { kind, label, uuid } => {
            let kind = KINDS[usize::from(*kind) % 4];
            probe::probe(&superblock(kind, &label_bytes(label), *uuid))
        }
        Content::Raw(raw) => probe::probe(raw),
    };
    Candidate {
        name: Name::new(&name_bytes(&d.name)).unwrap(),
        parent: d
            .parent
            .as_ref()
            .map(|p| Name::new(&name_bytes(p)).unwrap()),
        probe,
    }
}

/// `true` if `c` matches `spec` on a filesystem of a kind in `kinds` (a path
/// names the device whatever it holds); written from the contract, not
/// from `choose.rs`.
fn fits(c: &Candidate, spec: &DeviceSpec, kinds: &[FsKind]) -> bool {
    let probe: Option<&Probe> = c.probe.as_ref().filter(|p| kinds.contains(&p.kind));
    match *spec {
        DeviceSpec::Path(path) => {
            path.len() == 5 + c.name.as_bytes().len()
                && path.starts_with(b"/dev/")
                && &path[5..] == c.name.as_bytes()
        }
        DeviceSpec::Label(l) => probe.is_some_and(|p| p.label() == l),
        DeviceSpec::Uuid(u) => probe.is_some_and(|p| {
            let typed: Vec<u8> = u.iter().filter(|&&c| c != b'-').copied().collect();
            !p.uuid().is_empty() && p.uuid().eq_ignore_ascii_case(&typed)
        }),
    }
}

fuzz_target!(|m: Machine| {
    let cands: Vec<Candidate> = m.devices.iter().map(candidate).collect();
    // The device a `…Of(n)` spec names; none on a machine without devices.
    let nth = |n: u8| cands.get(usize::from(n) % cands.len().max(1));
    let spec_text: Vec<u8>;
    let spec = match &m.spec {
        SpecPick::LabelOf(i) => {
            let Some(c) = nth(*i) else { return };
            spec_text = c.probe.map(|p| p.label().to_vec()).unwrap_or_default();
            DeviceSpec::Label(&spec_text)
        }
        SpecPick::UuidOf {
            device,
            dashes,
            upper,
        } => {
            let Some(c) = nth(*device) else { return };
            let uuid = c.probe.map(|p| p.uuid().to_vec()).unwrap_or_default();
            let mut typed = Vec::new();
            for (i, ch) in uuid.iter().enumerate() {
                typed.push(if *upper { ch.to_ascii_uppercase() } else { *ch });
                if (dashes >> (i % 8)) & 1 == 1 {
                    typed.push(b'-');
                }
            }
            spec_text = typed;
            DeviceSpec::Uuid(&spec_text)
        }
        SpecPick::PathOf(i) => {
            let Some(c) = nth(*i) else { return };
            spec_text = [b"/dev/", c.name.as_bytes()].concat();
            DeviceSpec::Path(&spec_text)
        }
        SpecPick::Label(l) => {
            spec_text = label_bytes(l);
            DeviceSpec::Label(&spec_text)
        }
        SpecPick::Any(raw) => match DeviceSpec::parse(raw) {
            Some(s) => s,
            None => return,
        },
    };
    // Specs the command line can give (an empty label or UUID cannot).
    if DeviceSpec::parse(&spec_line(&spec)) != Some(spec) {
        return;
    }

    check_data(&cands, &spec);
    let slots = usize::from(m.slots % 24);
    check_media(&cands, Some(&spec), slots);
    check_media(&cands, None, slots);
});

/// The text of `spec` after `k1os.data=`.
fn spec_line(spec: &DeviceSpec) -> Vec<u8> {
    match *spec {
        DeviceSpec::Label(l) => [&b"LABEL=\""[..], l, b"\""].concat(),
        DeviceSpec::Uuid(u) => [&b"UUID="[..], u].concat(),
        DeviceSpec::Path(p) => p.to_vec(),
    }
}

fn check_data(cands: &[Candidate], spec: &DeviceSpec) {
    let is_match = |c: &Candidate| fits(c, spec, &[FsKind::Ext4]);
    // Disks one of whose own partitions matches too are set aside.
    let kept: Vec<usize> = (0..cands.len())
        .filter(|&i| is_match(&cands[i]))
        .filter(|&i| {
            !cands
                .iter()
                .any(|p| p.parent == Some(cands[i].name) && p.name != cands[i].name && is_match(p))
        })
        .collect();
    let want = match kept.as_slice() {
        [] => Choice::NotFound,
        [one] => Choice::Found(*one),
        [a, b, ..] => Choice::Ambiguous(*a, *b),
    };
    let got = choose::choose_data(cands, spec);
    assert_eq!(got, want, "choose_data({spec:?})");
    if let Choice::Found(i) = got {
        let c = &cands[i];
        assert!(is_match(c), "picked a device that does not match");
        if !matches!(spec, DeviceSpec::Path(_)) {
            assert_eq!(c.probe.map(|p| p.kind), Some(FsKind::Ext4));
        }
    }
}

fn check_media(cands: &[Candidate], spec: Option<&DeviceSpec>, slots: usize) {
    const HOLDS_FILES: [FsKind; 3] = [FsKind::Iso9660, FsKind::Ext4, FsKind::Vfat];
    let group = |c: &Candidate| -> Option<usize> {
        if let Some(spec) = spec {
            return fits(c, spec, &HOLDS_FILES).then_some(0);
        }
        let p = c.probe.filter(|p| HOLDS_FILES.contains(&p.kind))?;
        if p.label() == contract::MEDIA_LABEL.as_bytes() {
            return Some(0);
        }
        Some(match p.kind {
            FsKind::Iso9660 => 1,
            FsKind::Vfat => 2,
            _ => 3,
        })
    };
    // A stable sort: ties keep the devices' order.
    let mut want: Vec<usize> = (0..cands.len())
        .filter(|&i| group(&cands[i]).is_some())
        .collect();
    want.sort_by_key(|&i| (group(&cands[i]), cands[i].parent.is_none()));
    want.truncate(slots);

    let mut out = vec![usize::MAX; slots];
    let n = choose::media_order(cands, spec, &mut out);
    assert!(n <= slots);
    assert_eq!(out[..n], want[..], "media_order({spec:?})");
    assert!(
        out[n..].iter().all(|&s| s == usize::MAX),
        "wrote past its count"
    );
    for &i in &out[..n] {
        let c = &cands[i];
        if !matches!(spec, Some(DeviceSpec::Path(_))) {
            assert!(c.probe.is_some_and(|p| HOLDS_FILES.contains(&p.kind)));
        }
    }
}
