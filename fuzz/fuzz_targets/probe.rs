//! The superblock probes (`k1os_contract::probe`: squashfs, ext2/3/4, ISO
//! 9660, FAT) on any device contents.
//!
//! The input is the device's bytes, folded so that the fuzzer spends its
//! effort where superblocks are: an input of up to 2 KiB is the whole device;
//! a longer one is its first 2 KiB, then zeros up to 0x8000, then the rest
//! (ISO 9660's volume descriptor at 0x8000). The target proves that the zeros
//! stand for anything: the same device with those bytes filled with junk, and
//! with junk appended past `PROBE_LEN`, probes the same.
//!
//! Asserts, besides that:
//! - `probe` and `probe_block` (what stage 1 calls) agree;
//! - the kind is the first of squashfs, ext, ISO 9660, FAT whose magic and
//!   fields are in the bytes given (a reference decision written here from
//!   the on-disk formats), and the device is long enough for that superblock;
//!   cut one byte short of it, the device is not that kind any more;
//! - the label is at most 32 bytes, has no NUL and no trailing whitespace, and
//!   is exactly the bytes at that filesystem's label offset: nothing is read
//!   from anywhere else; the UUID is the lowercase hex (or ISO date digits)
//!   of the bytes at its offset;
//! - `uuid_matches` accepts the UUID in upper case and with dashes anywhere,
//!   and refuses it with one digit changed; an empty UUID matches nothing.
#![no_main]

use k1os_contract::probe::{self, FsKind, PROBE_LEN, Probe};
use libfuzzer_sys::fuzz_target;

/// Where the first part of the input ends, and where the rest goes.
const HEAD: usize = 0x800;
const ISO_PVD: usize = 0x8000;

fuzz_target!(|input: &[u8]| {
    let device = unfold(input);
    let found = probe::probe(&device);

    let mut block = [0u8; PROBE_LEN];
    let len = device.len().min(PROBE_LEN);
    block[..len].copy_from_slice(&device[..len]);
    assert_eq!(
        probe::probe_block(&block, len),
        found,
        "probe_block differs"
    );

    // The folded-away bytes and everything after PROBE_LEN are never read.
    let mut junk = device.clone();
    for (i, b) in junk.iter_mut().enumerate().take(ISO_PVD).skip(HEAD) {
        *b = (i as u8) ^ 0xa5;
    }
    junk.extend((0..300).map(|i: u32| (i * 7) as u8));
    if device.len() < PROBE_LEN {
        // Filling up to PROBE_LEN changes the length, and so what fits.
        junk.truncate(device.len());
    }
    assert_eq!(
        probe::probe(&junk),
        found,
        "bytes outside the superblocks matter"
    );

    assert_eq!(reference_kind(&device), found.map(|p| p.kind), "kind");
    if let Some(p) = found {
        check_found(&device, &p);
        let short = &device[..min_len(p.kind) - 1];
        assert_ne!(
            probe::probe(short).map(|p| p.kind),
            Some(p.kind),
            "too short"
        );
        check_uuid_matching(&p, input);
    }
    // `uuid_matches` on bytes from the input, against its definition.
    let (a, b) = input.split_at(input.len() / 2);
    let spec: Vec<u8> = b.iter().copied().filter(|&c| c != b'-').collect();
    assert_eq!(
        probe::uuid_matches(a, b),
        !a.is_empty() && a.eq_ignore_ascii_case(&spec)
    );
});

/// The device bytes an input stands for (see the module comment).
fn unfold(input: &[u8]) -> Vec<u8> {
    if input.len() <= HEAD {
        return input.to_vec();
    }
    let mut d = input[..HEAD].to_vec();
    d.resize(ISO_PVD, 0);
    d.extend_from_slice(&input[HEAD..]);
    d
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(d.get(at..at + 2)?.try_into().ok()?))
}

fn le32(d: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(d.get(at..at + 4)?.try_into().ok()?))
}

/// The superblock each filesystem needs whole: squashfs to `s_major`, ext to
/// the end of its 1 KiB superblock, ISO 9660 its volume descriptor, FAT its
/// boot sector.
fn min_len(kind: FsKind) -> usize {
    match kind {
        FsKind::Squashfs => 30,
        FsKind::Ext4 => 0x800,
        FsKind::Iso9660 => PROBE_LEN,
        FsKind::Vfat => 512,
    }
}

/// Where FAT's extended BPB is: FAT32 has no 16-bit FAT size.
fn fat_ext_bpb(d: &[u8]) -> usize {
    if le16(d, 0x16) == Some(0) { 0x43 } else { 0x27 }
}

/// The filesystem, decided from the formats (squashfs 4.0, ext2 superblock at
/// 1024, ECMA-119 primary volume descriptor, FAT boot sector), in the
/// contract's order; `None` when the device is too short for it.
fn reference_kind(d: &[u8]) -> Option<FsKind> {
    let fits = |k| d.len() >= min_len(k);
    if fits(FsKind::Squashfs) && d.starts_with(b"hsqs") && le16(d, 28) == Some(4) {
        return Some(FsKind::Squashfs);
    }
    if fits(FsKind::Ext4)
        && le16(d, 0x438) == Some(0xef53)
        && le32(d, 0x460).is_some_and(|incompat| incompat & 0x8 == 0)
    {
        return Some(FsKind::Ext4);
    }
    if fits(FsKind::Iso9660) && d[ISO_PVD..].starts_with(b"\x01CD001") {
        return Some(FsKind::Iso9660);
    }
    if fits(FsKind::Vfat) {
        let sector = le16(d, 0x0b).unwrap();
        let ext = fat_ext_bpb(d);
        let sane = d[510..512] == [0x55, 0xaa]
            && [512, 1024, 2048, 4096].contains(&sector)
            && [1, 2, 4, 8, 16, 32, 64, 128].contains(&d[0x0d])
            && le16(d, 0x0e) != Some(0)
            && d[0x10] != 0
            && (d[0x15] == 0xf0 || d[0x15] >= 0xf8)
            && &d[ext + 0xf..ext + 0x12] == b"FAT";
        if sane {
            return Some(FsKind::Vfat);
        }
    }
    None
}

/// Label: the field's bytes up to the first NUL, trailing whitespace gone.
fn label_of(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&c| c == 0).unwrap_or(field.len());
    let mut l = &field[..end];
    while let Some((last, head)) = l.split_last() {
        if !matches!(last, b' ' | b'\t'..=b'\r') {
            break;
        }
        l = head;
    }
    l
}

fn hex(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .flat_map(|b| format!("{b:02x}").into_bytes())
        .collect()
}

fn check_found(d: &[u8], p: &Probe) {
    let label = p.label();
    assert!(label.len() <= 32);
    assert!(!label.contains(&0), "NUL in label");
    assert!(
        !label
            .last()
            .is_some_and(|c| matches!(c, b' ' | b'\t'..=b'\r')),
        "trailing whitespace in label"
    );
    let uuid = p.uuid();
    match p.kind {
        FsKind::Squashfs => {
            assert_eq!(label, b"");
            assert_eq!(uuid, b"");
        }
        FsKind::Ext4 => {
            assert_eq!(label, label_of(&d[0x478..0x488]));
            let raw = &d[0x468..0x478];
            let want = if raw.iter().all(|&b| b == 0) {
                vec![]
            } else {
                hex(raw)
            };
            assert_eq!(uuid, want);
            assert_eq!(p.ext_state_clean, le16(d, 0x43a).unwrap() & 1 != 0);
            assert_eq!(p.ext_needs_recovery, le32(d, 0x460).unwrap() & 4 != 0);
        }
        FsKind::Iso9660 => {
            assert_eq!(label, label_of(&d[ISO_PVD + 40..ISO_PVD + 72]));
            // The modification date, else the creation date (16 digits and a
            // zone byte; all zeros with zone 0 is "not set").
            let date = |at: usize| {
                let digits = &d[at..at + 16];
                let unset = digits.iter().all(|&c| c == b'0') && d[at + 16] == 0;
                (digits.iter().all(u8::is_ascii_digit) && !unset).then_some(digits)
            };
            let want = date(ISO_PVD + 830).or_else(|| date(ISO_PVD + 813));
            assert_eq!(uuid, want.unwrap_or_default());
        }
        FsKind::Vfat => {
            let ext = fat_ext_bpb(d);
            let field = &d[ext + 4..ext + 15];
            let want = if field == b"NO NAME    " {
                &b""[..]
            } else {
                label_of(field)
            };
            assert_eq!(label, want);
            let serial: Vec<u8> = d[ext..ext + 4].iter().rev().copied().collect();
            assert_eq!(uuid, hex(&serial));
        }
    }
    assert!(
        uuid.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    );
    if p.kind != FsKind::Ext4 {
        assert!(
            !p.ext_state_clean && !p.ext_needs_recovery,
            "ext flags on {:?}",
            p.kind
        );
    }
}

/// A UUID as a user may type it matches; with one character changed it
/// does not.
fn check_uuid_matching(p: &Probe, input: &[u8]) {
    let uuid = p.uuid();
    if uuid.is_empty() {
        assert!(!probe::uuid_matches(uuid, uuid));
        assert!(!probe::uuid_matches(uuid, b""));
        return;
    }
    assert!(probe::uuid_matches(uuid, uuid));
    // Upper case, a dash after the positions the input's bytes pick.
    let mut typed = Vec::new();
    for (i, c) in uuid.iter().enumerate() {
        typed.push(c.to_ascii_uppercase());
        if input.get(i).is_some_and(|b| b & 3 == 0) {
            typed.push(b'-');
        }
    }
    assert!(probe::uuid_matches(uuid, &typed), "{typed:?}");
    let at = input.first().map_or(0, |&b| usize::from(b)) % uuid.len();
    let mut other = uuid.to_vec();
    other[at] = if other[at] == b'0' { b'1' } else { b'0' };
    assert!(!probe::uuid_matches(uuid, &other));
    assert!(!probe::uuid_matches(uuid, &uuid[1..]));
}
