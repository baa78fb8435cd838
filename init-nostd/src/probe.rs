//! Which filesystem a block device holds, its label and UUID, from its first
//! [`PROBE_LEN`] bytes (the superblock offsets are in the functions below,
//! one per filesystem). No udev, no blkid in stage 1; labels and UUIDs come
//! out the way `blkid` shows them (UUIDs without dashes, lowercase), so what
//! a user copies from `blkid` matches.
//!
//! Checked in this order, the first that fits wins:
//! 1. squashfs: `hsqs` at 0 and version 4 (its magic is at the very start, the
//!    rest of a squashfs is compressed data that could look like anything);
//! 2. ext2/3/4: 0xEF53 at 0x438, not an external journal device;
//! 3. ISO 9660: a primary volume descriptor at 0x8000. Before FAT: a hybrid
//!    ISO starts with an MBR (0x55AA at 510);
//! 4. FAT12/16/32: 0x55AA at 510, a sane BIOS parameter block and the `FAT`
//!    type string, so a disk with only an MBR is not taken for FAT.
//!
//! Known gaps, compared with blkid: the Joliet volume name and the FAT
//! root-directory label entry are not read (blkid prefers them when they
//! differ; `mkfs.vfat -n`, `mlabel` and `xorriso -V` write matching ones).

use ufmt::{Formatter, uDisplay, uWrite};

/// How many bytes of the device [`probe`] looks at: up to the end of the ISO
/// 9660 primary volume descriptor (0x8000 + 2048). Fewer (a small device, a
/// short read) are fine.
pub const PROBE_LEN: usize = 0x8800;

/// Filesystems stage 1 cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    Iso9660,
    /// ext2, ext3 or ext4 (the ext4 driver mounts all three).
    Ext4,
    Squashfs,
    /// FAT12, FAT16 or FAT32.
    Vfat,
}

impl FsKind {
    /// The filesystem type for `mount(2)`, also what blkid calls it
    /// (except ext2/ext3, which are mounted as `ext4`).
    pub fn as_str(&self) -> &'static str {
        match self {
            FsKind::Iso9660 => "iso9660",
            FsKind::Ext4 => "ext4",
            FsKind::Squashfs => "squashfs",
            FsKind::Vfat => "vfat",
        }
    }
}

impl uDisplay for FsKind {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut Formatter<'_, W>) -> Result<(), W::Error> {
        f.write_str(self.as_str())
    }
}

/// What [`probe`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub kind: FsKind,
    label: [u8; 32],
    label_len: u8,
    uuid: [u8; 32],
    uuid_len: u8,
    /// ext: `s_state` has `EXT2_VALID_FS` (cleanly unmounted, or mounted now).
    pub ext_state_clean: bool,
    /// ext: the journal has to be replayed (`INCOMPAT_RECOVER`): even a
    /// read-only mount writes to the device then.
    pub ext_needs_recovery: bool,
}

impl Probe {
    fn new(kind: FsKind) -> Self {
        Probe {
            kind,
            label: [0; 32],
            label_len: 0,
            uuid: [0; 32],
            uuid_len: 0,
            ext_state_clean: false,
            ext_needs_recovery: false,
        }
    }

    /// The label as blkid shows it: up to the first NUL, trailing whitespace
    /// removed; empty if there is none.
    // Out of line: measured smaller in stage 1 (its size budget).
    #[inline(never)]
    pub fn label(&self) -> &[u8] {
        self.label
            .get(..usize::from(self.label_len))
            .unwrap_or_default()
    }

    /// The UUID as blkid shows it without dashes, lowercase; empty if there
    /// is none (squashfs, an all-zero ext UUID, an unset ISO date).
    pub fn uuid(&self) -> &[u8] {
        self.uuid
            .get(..usize::from(self.uuid_len))
            .unwrap_or_default()
    }

    /// The label: `raw` up to the first NUL, trailing whitespace removed.
    fn set_label(&mut self, raw: &[u8]) {
        let mut end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        while end > 0 && matches!(raw.get(end - 1), Some(b' ' | b'\t'..=b'\r')) {
            end -= 1;
        }
        for (dst, src) in self.label.iter_mut().zip(raw.iter().take(end)) {
            *dst = *src;
            self.label_len += 1;
        }
    }

    /// Appends one character to the UUID (lowercase).
    fn push_uuid(&mut self, c: u8) {
        if let Some(dst) = self.uuid.get_mut(usize::from(self.uuid_len)) {
            *dst = c.to_ascii_lowercase();
            self.uuid_len += 1;
        }
    }

    /// Appends two lowercase hex digits to the UUID.
    fn push_uuid_hex(&mut self, b: u8) {
        for nibble in [b >> 4, b & 0xf] {
            self.push_uuid(nibble + if nibble < 10 { b'0' } else { b'a' - 10 });
        }
    }
}

/// Recognises the filesystem at the start of `buf` (the first [`PROBE_LEN`]
/// bytes of a device, or fewer). `None`: nothing we know, or too short.
pub fn probe(buf: &[u8]) -> Option<Probe> {
    let mut block = [0; PROBE_LEN];
    let len = buf.len().min(PROBE_LEN);
    for (dst, src) in block.iter_mut().zip(buf) {
        *dst = *src;
    }
    probe_block(&block, len)
}

/// [`probe`] of a block whose first `len` bytes were read from the device and
/// whose rest is zeros, as stage 1 reads it: every offset is then in bounds
/// (no checks to compile), and the length decides what can be recognised.
// Out of line: measured smaller in stage 1 (its size budget).
#[inline(never)]
pub fn probe_block(b: &Block, len: usize) -> Option<Probe> {
    let mut p = Probe::new(FsKind::Squashfs);
    // Each filesystem needs its superblock whole: squashfs up to s_major, ext
    // to the end of its 1 KiB superblock, ISO 9660 its primary volume
    // descriptor, FAT its boot sector.
    let found = (len >= 30 && squashfs(b))
        || (len >= 0x800 && ext(b, &mut p))
        || (len >= PROBE_LEN && iso9660(b, &mut p))
        || (len >= 512 && fat(b, &mut p));
    found.then_some(p)
}

/// `true` if the UUID of a probe (as [`Probe::uuid`] gives it) is the one the
/// user wrote in `UUID=…`: dashes do not count, case does not matter.
pub fn uuid_matches(probe_uuid: &[u8], spec: &[u8]) -> bool {
    if probe_uuid.is_empty() {
        return false;
    }
    let mut spec = spec.iter().filter(|&&c| c != b'-');
    let mut ours = probe_uuid.iter();
    loop {
        match (ours.next(), spec.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => {}
            _ => return false,
        }
    }
}

/// The bytes [`probe_block`] looks at.
pub type Block = [u8; PROBE_LEN];

fn le16(b: &Block, at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &Block, at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn squashfs(b: &Block) -> bool {
    // s_major at 28: 4 since Linux 2.6.29; older ones the kernel cannot mount.
    b[..4] == *b"hsqs" && le16(b, 28) == 4
}

fn ext(b: &Block, p: &mut Probe) -> bool {
    const SB: usize = 0x400;
    const STATE_VALID: u16 = 0x1;
    const INCOMPAT_RECOVER: u32 = 0x4;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    let incompat = le32(b, SB + 0x60);
    if le16(b, SB + 0x38) != 0xef53 || incompat & INCOMPAT_JOURNAL_DEV != 0 {
        return false;
    }
    p.kind = FsKind::Ext4;
    p.set_label(&b[SB + 0x78..SB + 0x88]);
    let uuid = &b[SB + 0x68..SB + 0x78];
    if uuid.iter().any(|&x| x != 0) {
        for &x in uuid {
            p.push_uuid_hex(x);
        }
    }
    p.ext_state_clean = le16(b, SB + 0x3a) & STATE_VALID != 0;
    p.ext_needs_recovery = incompat & INCOMPAT_RECOVER != 0;
    true
}

fn iso9660(b: &Block, p: &mut Probe) -> bool {
    const PVD: usize = 0x8000;
    if b[PVD..PVD + 6] != *b"\x01CD001" {
        return false;
    }
    p.kind = FsKind::Iso9660;
    p.set_label(&b[PVD + 40..PVD + 72]);
    // blkid (and GRUB) use the modification date, else the creation date:
    // YYYYMMDDHHMMSScc, then a time-zone byte; all `0` and zone 0 is "unset".
    let date = |at: usize| {
        let digits = &b[at..at + 16];
        let unset = digits.iter().all(|&c| c == b'0') && b[at + 16] == 0;
        (digits.iter().all(u8::is_ascii_digit) && !unset).then_some(digits)
    };
    if let Some(digits) = date(PVD + 830).or_else(|| date(PVD + 813)) {
        for &c in digits {
            p.push_uuid(c);
        }
    }
    true
}

fn fat(b: &Block, p: &mut Probe) -> bool {
    let sector = le16(b, 0x0b);
    let cluster = b[0x0d];
    let media = b[0x15];
    let sane = b[510..512] == [0x55, 0xaa]
        && sector.is_power_of_two()
        && (512..=4096).contains(&sector)
        && cluster.is_power_of_two()
        && le16(b, 0x0e) != 0 // reserved sectors
        && b[0x10] != 0 // number of FATs
        && (media == 0xf0 || media >= 0xf8);
    // FAT32 has no 16-bit FAT size; its extended BPB sits 0x1C bytes later.
    let ext_bpb = if le16(b, 0x16) == 0 { 0x43 } else { 0x27 };
    if !sane || b[ext_bpb + 0xf..ext_bpb + 0x12] != *b"FAT" {
        return false;
    }
    p.kind = FsKind::Vfat;
    for i in (0..4).rev() {
        p.push_uuid_hex(b[ext_bpb + i]);
    }
    let label = &b[ext_bpb + 4..ext_bpb + 15];
    if label != b"NO NAME    " {
        p.set_label(label);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn ext4_image(label: &[u8], uuid: [u8; 16], state: u16, incompat: u32) -> Vec<u8> {
        let mut b = vec![0; PROBE_LEN];
        put(&mut b, 0x438, &0xef53u16.to_le_bytes());
        put(&mut b, 0x43a, &state.to_le_bytes());
        put(&mut b, 0x460, &incompat.to_le_bytes());
        put(&mut b, 0x468, &uuid);
        put(&mut b, 0x478, label);
        b
    }

    fn iso_image(volume_id: &[u8; 32], created: &[u8; 17], modified: &[u8; 17]) -> Vec<u8> {
        let mut b = vec![0; PROBE_LEN];
        // A hybrid ISO's MBR: boot signature, no BPB.
        put(&mut b, 0, &[0x33, 0xed, 0xfa, 0x8e]);
        put(&mut b, 510, &[0x55, 0xaa]);
        put(&mut b, 0x8000, b"\x01CD001\x01");
        put(&mut b, 0x8028, volume_id);
        put(&mut b, 0x8000 + 813, created);
        put(&mut b, 0x8000 + 830, modified);
        b
    }

    /// A boot sector as mkfs.vfat writes it; `fat32` moves the extended BPB.
    fn fat_image(fat32: bool, label: &[u8; 11], serial: [u8; 4]) -> Vec<u8> {
        let mut b = vec![0; 4096];
        put(&mut b, 0, &[0xeb, 0x3c, 0x90]);
        put(&mut b, 3, b"mkfs.fat");
        put(&mut b, 0x0b, &512u16.to_le_bytes());
        b[0x0d] = 4;
        put(&mut b, 0x0e, &4u16.to_le_bytes());
        b[0x10] = 2;
        b[0x15] = 0xf8;
        let ext = if fat32 {
            put(&mut b, 0x24, &1000u32.to_le_bytes());
            0x43
        } else {
            put(&mut b, 0x16, &32u16.to_le_bytes());
            0x27
        };
        b[ext - 1] = 0x29;
        put(&mut b, ext, &serial);
        put(&mut b, ext + 4, label);
        put(
            &mut b,
            ext + 15,
            if fat32 { b"FAT32   " } else { b"FAT16   " },
        );
        put(&mut b, 510, &[0x55, 0xaa]);
        b
    }

    fn squashfs_image() -> Vec<u8> {
        let mut b = vec![0; 96];
        put(&mut b, 0, b"hsqs");
        put(&mut b, 28, &4u16.to_le_bytes());
        b
    }

    #[test]
    fn ext4_label_uuid_and_state() {
        let uuid = [
            0x0b, 0x4a, 0x5c, 0x3e, 0x1f, 0x2d, 0x4e, 0x5f, 0x8a, 0x9b, 0x0c, 0x1d, 0x2e, 0x3f,
            0x4a, 0x5b,
        ];
        let p = probe(&ext4_image(b"K1OS-DATA", uuid, 1, 0x2c2)).unwrap();
        assert_eq!(p.kind, FsKind::Ext4);
        assert_eq!(p.label(), b"K1OS-DATA");
        assert_eq!(p.uuid(), b"0b4a5c3e1f2d4e5f8a9b0c1d2e3f4a5b");
        assert!(p.ext_state_clean);
        assert!(!p.ext_needs_recovery);

        let p = probe(&ext4_image(b"", uuid, 0, 0x2c6)).unwrap();
        assert_eq!(p.label(), b"");
        assert!(!p.ext_state_clean);
        assert!(p.ext_needs_recovery);

        // A 16-byte label has no NUL; all-zero UUID means none.
        let p = probe(&ext4_image(b"0123456789abcdef", [0; 16], 1, 0)).unwrap();
        assert_eq!(p.label(), b"0123456789abcdef");
        assert_eq!(p.uuid(), b"");

        // An external journal carries the ext magic but is no filesystem.
        assert_eq!(probe(&ext4_image(b"", uuid, 1, 0x8)), None);
    }

    #[test]
    fn iso9660_hybrid_is_iso_not_fat() {
        let mut id = [b' '; 32];
        id[..4].copy_from_slice(b"K1OS");
        let created = *b"2026112617000000\x04";
        let modified = *b"2026112617300012\x04";
        let p = probe(&iso_image(&id, &created, &modified)).unwrap();
        assert_eq!(p.kind, FsKind::Iso9660);
        assert_eq!(p.label(), b"K1OS");
        assert_eq!(p.uuid(), b"2026112617300012");

        // Modification date unset: the creation date is the UUID.
        let unset = *b"0000000000000000\x00";
        let p = probe(&iso_image(&id, &created, &unset)).unwrap();
        assert_eq!(p.uuid(), b"2026112617000000");
        // Both unset, or not digits: no UUID.
        assert_eq!(probe(&iso_image(&id, &unset, &unset)).unwrap().uuid(), b"");
        assert_eq!(
            probe(&iso_image(&id, &[0; 17], &[0; 17])).unwrap().uuid(),
            b""
        );

        // A full 32-character volume ID, and an empty one.
        let p = probe(&iso_image(&[b'A'; 32], &created, &modified)).unwrap();
        assert_eq!(p.label(), &[b'A'; 32]);
        let p = probe(&iso_image(&[b' '; 32], &created, &modified)).unwrap();
        assert_eq!(p.label(), b"");
    }

    /// ext wins over a volume descriptor left behind at 0x8000 (mke2fs
    /// overwrites it in practice; a hybrid ISO has no ext magic at 0x438).
    #[test]
    fn ext4_before_iso9660() {
        let mut id = [b' '; 32];
        id[..4].copy_from_slice(b"K1OS");
        let mut b = iso_image(&id, &[0; 17], &[0; 17]);
        put(&mut b, 0x438, &0xef53u16.to_le_bytes());
        assert_eq!(probe(&b).unwrap().kind, FsKind::Ext4);
    }

    #[test]
    fn fat16_and_fat32() {
        let p = probe(&fat_image(false, b"K1OS       ", [0x34, 0x12, 0xcd, 0xab])).unwrap();
        assert_eq!(p.kind, FsKind::Vfat);
        assert_eq!(p.label(), b"K1OS");
        assert_eq!(p.uuid(), b"abcd1234");

        let p = probe(&fat_image(true, b"MY STICK   ", [0x78, 0x56, 0x34, 0x12])).unwrap();
        assert_eq!(p.kind, FsKind::Vfat);
        assert_eq!(p.label(), b"MY STICK");
        assert_eq!(p.uuid(), b"12345678");

        let p = probe(&fat_image(true, b"NO NAME    ", [1, 2, 3, 4])).unwrap();
        assert_eq!(p.label(), b"");
        assert_eq!(p.uuid(), b"04030201");
    }

    #[test]
    fn fat_needs_a_sane_boot_sector() {
        let good = fat_image(false, b"K1OS       ", [1, 2, 3, 4]);
        assert!(probe(&good).is_some());
        let broken: &[(usize, &[u8])] = &[
            (510, &[0, 0]),     // no boot signature
            (0x0b, &[0, 0]),    // 0 bytes per sector
            (0x0b, &[0, 3]),    // 768 bytes per sector
            (0x0b, &[0, 0x20]), // 8192 bytes per sector
            (0x0d, &[3]),       // 3 sectors per cluster
            (0x0d, &[0]),
            (0x0e, &[0, 0]), // no reserved sectors
            (0x10, &[0]),    // no FAT
            (0x15, &[0x12]), // media byte
            (0x36, b"JFS"),  // type string
        ];
        for (at, bytes) in broken {
            let mut b = good.clone();
            put(&mut b, *at, bytes);
            assert_eq!(probe(&b), None, "{at:#x} = {bytes:?}");
        }
    }

    #[test]
    fn mbr_only_disk_is_nothing() {
        // A partition table and boot code, no filesystem on the disk itself.
        let mut b = vec![0; PROBE_LEN];
        put(&mut b, 0, &[0xfa, 0x31, 0xc0, 0x8e, 0xd8, 0x8e, 0xd0, 0xbc]);
        put(
            &mut b,
            446,
            &[0x80, 0, 2, 0, 0x83, 0xfe, 0xff, 0xff, 0, 8, 0, 0],
        );
        put(&mut b, 510, &[0x55, 0xaa]);
        assert_eq!(probe(&b), None);
        // GRUB's boot.img leaves room for a BPB: zeros there are no FAT either.
        put(&mut b, 0x36, b"FAT16   ");
        assert_eq!(probe(&b), None);
    }

    #[test]
    fn squashfs() {
        let p = probe(&squashfs_image()).unwrap();
        assert_eq!(p.kind, FsKind::Squashfs);
        assert_eq!((p.label(), p.uuid()), (&b""[..], &b""[..]));
        let mut v3 = squashfs_image();
        put(&mut v3, 28, &3u16.to_le_bytes());
        assert_eq!(probe(&v3), None);
        // Squashfs data may contain anything, the magic at 0 decides.
        let mut b = ext4_image(b"X", [1; 16], 1, 0);
        put(&mut b, 0, &squashfs_image());
        assert_eq!(probe(&b).unwrap().kind, FsKind::Squashfs);
    }

    /// Every prefix of every image, and garbage: never a panic, and nothing
    /// recognised from a buffer too short to hold its superblock.
    #[test]
    fn short_buffers_and_garbage() {
        let mut id = [b' '; 32];
        id[..4].copy_from_slice(b"K1OS");
        let images = [
            ext4_image(b"K1OS-DATA", [7; 16], 1, 0),
            iso_image(&id, b"2026112617000000\x04", b"2026112617000000\x04"),
            fat_image(false, b"K1OS       ", [1, 2, 3, 4]),
            fat_image(true, b"K1OS       ", [1, 2, 3, 4]),
            squashfs_image(),
        ];
        let needed = [0x800, 0x8800, 512, 512, 30];
        for (image, needed) in images.iter().zip(needed) {
            assert!(probe(image).is_some());
            for len in (0..image.len()).step_by(7).chain(needed - 1..needed + 1) {
                let p = probe(&image[..len]);
                assert_eq!(p.is_some(), len >= needed, "len {len}");
            }
        }
        assert_eq!(probe(&[]), None);
        assert_eq!(probe(&[0; PROBE_LEN]), None);
        assert_eq!(probe(&[0xff; PROBE_LEN]), None);
        // Pseudo-random bytes.
        let mut x = 0x2545f4914f6cdd1du64;
        let noise: Vec<u8> = (0..PROBE_LEN)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for len in (0..noise.len()).step_by(97) {
            assert_eq!(probe(&noise[..len]), None);
        }
    }

    #[test]
    fn uuid_matching() {
        let ext = b"0b4a5c3e1f2d4e5f8a9b0c1d2e3f4a5b";
        assert!(uuid_matches(ext, b"0b4a5c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b"));
        assert!(uuid_matches(ext, b"0B4A5C3E-1F2D-4E5F-8A9B-0C1D2E3F4A5B"));
        assert!(uuid_matches(ext, b"0b4a5c3e1f2d4e5f8a9b0c1d2e3f4a5b"));
        assert!(!uuid_matches(ext, b"0b4a5c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5"));
        assert!(!uuid_matches(ext, b"0b4a5c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b0"));
        assert!(uuid_matches(b"abcd1234", b"ABCD-1234"));
        assert!(uuid_matches(b"2026112617000000", b"2026-11-26-17-00-00-00"));
        assert!(!uuid_matches(b"", b""));
        assert!(!uuid_matches(b"", b"-"));
        assert!(!uuid_matches(b"abcd1234", b""));
    }
}

/// `probe` against filesystems made by the real tools, checked against what
/// `blkid` reports for the same image. The tools are required: a missing one
/// fails the test with the Debian package to install. (Unit tests, not
/// `tests/*.rs`: an integration test makes `cargo test` build the no_std
/// binary with the dev-dependencies' `std` features, which cannot link.)
#[cfg(test)]
mod real_images {
    use super::{FsKind, PROBE_LEN, Probe, probe, uuid_matches};
    use crate::choose::{Candidate, Name, media_order};
    use std::fs::{self, File};
    use std::io::{Read, Seek, SeekFrom};
    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// Finds `name` in `PATH` or the sbin directories (not always in a user's
    /// `PATH`), or fails naming the Debian package that has it.
    fn tool(name: &str, package: &str) -> PathBuf {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
            .unwrap_or_else(|| {
                panic!(
                    "`{name}` not found: these tests need it, install the Debian package `{package}`"
                )
            })
    }

    #[test]
    #[should_panic(expected = "install the Debian package `k1os-nothing`")]
    fn missing_tool_names_the_package() {
        tool("k1os-no-such-program", "k1os-nothing");
    }

    fn run(program: &Path, args: &[&str]) {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "{} {:?} failed ({}):\n{}{}",
            program.display(),
            args,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An empty (sparse) file of `size` bytes.
    fn blank(path: &Path, size: u64) {
        File::create(path).unwrap().set_len(size).unwrap();
    }

    /// The first `PROBE_LEN` bytes from `offset`, as stage 1 reads a device.
    fn head(path: &Path, offset: usize) -> Vec<u8> {
        let mut file = File::open(path).unwrap();
        file.seek(SeekFrom::Start(offset as u64)).unwrap();
        let mut buf = Vec::new();
        file.take(PROBE_LEN as u64).read_to_end(&mut buf).unwrap();
        buf
    }

    /// One tag from `blkid -p` (low-level probe, no cache); empty if none.
    fn blkid(path: &Path, tag: &str) -> String {
        let out = Command::new(tool("blkid", "util-linux"))
            .args(["-p", "-o", "value", "-s", tag])
            .arg(path)
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim_end_matches('\n')
            .to_string()
    }

    /// Probes `path`, checks kind and label, and that type, label and UUID agree
    /// with blkid's.
    fn check(path: &Path, kind: FsKind, label: &str) -> Probe {
        let p =
            probe(&head(path, 0)).unwrap_or_else(|| panic!("{}: not recognised", path.display()));
        assert_eq!(p.kind, kind, "{}", path.display());
        assert_eq!(
            String::from_utf8_lossy(p.label()),
            label,
            "{}",
            path.display()
        );

        let blkid_type = blkid(path, "TYPE");
        let types: &[&str] = match kind {
            FsKind::Ext4 => &["ext2", "ext3", "ext4"],
            _ => &[kind.as_str()],
        };
        assert!(
            types.contains(&blkid_type.as_str()),
            "blkid says {blkid_type:?}"
        );
        assert_eq!(blkid(path, "LABEL"), label, "label vs blkid");
        let blkid_uuid = blkid(path, "UUID");
        let normalized: String = blkid_uuid.chars().filter(|&c| c != '-').collect();
        assert_eq!(
            String::from_utf8_lossy(p.uuid()),
            normalized.to_lowercase(),
            "uuid vs blkid {blkid_uuid:?}"
        );
        if !blkid_uuid.is_empty() {
            assert!(uuid_matches(p.uuid(), blkid_uuid.as_bytes()));
            assert!(uuid_matches(p.uuid(), blkid_uuid.to_uppercase().as_bytes()));
        }
        p
    }

    /// A small directory tree to put into ISO and squashfs images.
    fn tree(dir: &Path) -> PathBuf {
        let root = dir.join("tree");
        fs::create_dir_all(root.join("boot")).unwrap();
        fs::write(root.join("system.squashfs"), b"not really").unwrap();
        root
    }

    #[test]
    fn ext4_ext3_ext2() {
        let mkfs = tool("mkfs.ext4", "e2fsprogs");
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("data.img");
        let uuid = "0b4a5c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b";
        run(
            &mkfs,
            &[
                "-q",
                "-F",
                "-L",
                "K1OS-DATA",
                "-U",
                uuid,
                img.to_str().unwrap(),
                "16M",
            ],
        );
        let p = check(&img, FsKind::Ext4, "K1OS-DATA");
        assert_eq!(p.uuid(), b"0b4a5c3e1f2d4e5f8a9b0c1d2e3f4a5b");
        assert!(p.ext_state_clean);
        assert!(!p.ext_needs_recovery);

        // A label of the full 16 bytes has no NUL; ext2 and ext3 are Ext4 too.
        for (fs_type, label) in [("ext2", "0123456789ABCDEF"), ("ext3", "old data")] {
            let img = dir.path().join(format!("{fs_type}.img"));
            run(
                &mkfs,
                &[
                    "-q",
                    "-F",
                    "-t",
                    fs_type,
                    "-L",
                    label,
                    img.to_str().unwrap(),
                    "8M",
                ],
            );
            let p = check(&img, FsKind::Ext4, label);
            assert_eq!(p.uuid().len(), 32);
        }
    }

    #[test]
    fn vfat_fat12_fat16_fat32() {
        let mkfs = tool("mkfs.vfat", "dosfstools");
        let mformat = tool("mformat", "mtools");
        let dir = tempfile::tempdir().unwrap();

        let fat16 = dir.path().join("fat16.img");
        blank(&fat16, 32 << 20);
        run(
            &mkfs,
            &[
                "-F",
                "16",
                "-n",
                "K1OS",
                "-i",
                "ABCD1234",
                fat16.to_str().unwrap(),
            ],
        );
        assert_eq!(check(&fat16, FsKind::Vfat, "K1OS").uuid(), b"abcd1234");

        let fat32 = dir.path().join("fat32.img");
        blank(&fat32, 64 << 20);
        run(
            &mkfs,
            &[
                "-F",
                "32",
                "-n",
                "MY STICK",
                "-i",
                "12345678",
                fat32.to_str().unwrap(),
            ],
        );
        assert_eq!(check(&fat32, FsKind::Vfat, "MY STICK").uuid(), b"12345678");

        // No label: the boot sector says "NO NAME", blkid shows none.
        let nolabel = dir.path().join("nolabel.img");
        blank(&nolabel, 32 << 20);
        run(&mkfs, &[nolabel.to_str().unwrap()]);
        check(&nolabel, FsKind::Vfat, "");

        // FAT12 floppy made by mtools.
        let fat12 = dir.path().join("fat12.img");
        let arg = format!("-i{}", fat12.to_str().unwrap());
        run(
            &mformat,
            &[
                "-C",
                "-f",
                "1440",
                "-v",
                "K1OSFLOPPY",
                "-N",
                "0badcafe",
                &arg,
                "::",
            ],
        );
        assert_eq!(
            check(&fat12, FsKind::Vfat, "K1OSFLOPPY").uuid(),
            b"0badcafe"
        );
    }

    /// A partitioned disk: the disk itself has only an MBR (not FAT), its
    /// partition has the filesystem.
    #[test]
    fn mbr_disk_with_a_fat_partition() {
        let sfdisk = tool("sfdisk", "fdisk");
        let mkfs = tool("mkfs.vfat", "dosfstools");
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        blank(&disk, 40 << 20);
        let out = Command::new(&sfdisk)
            .args(["-q", disk.to_str().unwrap()])
            .stdin(File::open(write(dir.path(), "layout", "start=2048, type=c\n")).unwrap())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run(
            &mkfs,
            &[
                "-F",
                "16",
                "--offset",
                "2048",
                "-n",
                "PART",
                disk.to_str().unwrap(),
                "30000",
            ],
        );

        let whole = head(&disk, 0);
        assert_eq!(&whole[510..512], [0x55, 0xaa]);
        assert_eq!(probe(&whole), None);
        assert_eq!(blkid(&disk, "TYPE"), "");
        let part = probe(&head(&disk, 2048 * 512)).unwrap();
        assert_eq!(part.kind, FsKind::Vfat);
        assert_eq!(part.label(), b"PART");
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn iso9660_plain_and_hybrid() {
        let xorriso = tool("xorriso", "xorriso");
        let dir = tempfile::tempdir().unwrap();
        let root = tree(dir.path());

        // Creation and modification dates differ: the UUID is the modification
        // date, as blkid and GRUB have it.
        let iso = dir.path().join("plain.iso");
        run(
            &xorriso,
            &[
                "-outdev",
                iso.to_str().unwrap(),
                "-volid",
                "K1OS",
                "-volume_date",
                "c",
                "2020010203040506",
                "-volume_date",
                "m",
                "2021060708091011",
                "-map",
                root.to_str().unwrap(),
                "/",
                "-commit",
            ],
        );
        let p = check(&iso, FsKind::Iso9660, "K1OS");
        assert_eq!(p.uuid(), b"2021060708091000");
        assert!(uuid_matches(p.uuid(), b"2021-06-07-08-09-10-00"));

        // Hybrid: an MBR with a partition that holds a second copy of the
        // volume descriptors, as on a stick written with the ISO (sda and sda1).
        let hybrid = dir.path().join("hybrid.iso");
        run(
            &xorriso,
            &[
                "-as",
                "mkisofs",
                "-V",
                "K1OS",
                "-J",
                "-partition_offset",
                "16",
                "-o",
                hybrid.to_str().unwrap(),
                root.to_str().unwrap(),
            ],
        );
        let disk = check(&hybrid, FsKind::Iso9660, "K1OS");
        let whole = head(&hybrid, 0);
        assert_eq!(&whole[510..512], [0x55, 0xaa], "hybrid ISO has an MBR");
        let start = u32::from_le_bytes(whole[446 + 8..446 + 12].try_into().unwrap()) as usize;
        assert!(start > 0, "partition 1 starts at sector {start}");
        let part = probe(&head(&hybrid, start * 512)).expect("partition 1 holds the ISO too");
        assert_eq!(part.kind, FsKind::Iso9660);
        assert_eq!(part.label(), b"K1OS");

        let cands = [
            Candidate {
                name: Name::new(b"sda").unwrap(),
                parent: None,
                probe: Some(disk),
            },
            Candidate {
                name: Name::new(b"sda1").unwrap(),
                parent: Name::new(b"sda"),
                probe: Some(part),
            },
        ];
        let mut out = [0; 4];
        let n = media_order(&cands, None, &mut out);
        assert_eq!(&out[..n], [1, 0], "the partition is tried before its disk");

        // A device shorter than the volume descriptor is nothing, not a panic.
        assert_eq!(probe(&whole[..0x8000 + 100]), None);
    }

    #[test]
    fn squashfs() {
        let mksquashfs = tool("mksquashfs", "squashfs-tools");
        let dir = tempfile::tempdir().unwrap();
        let root = tree(dir.path());
        let img = dir.path().join("system.squashfs");
        run(
            &mksquashfs,
            &[
                root.to_str().unwrap(),
                img.to_str().unwrap(),
                "-noappend",
                "-quiet",
                "-no-progress",
            ],
        );
        let p = check(&img, FsKind::Squashfs, "");
        assert_eq!(p.uuid(), b"");
    }

    /// mkfs.ext4 over an old ISO: the stale volume descriptor is gone (mke2fs
    /// wipes it) and the device is ext4, for us and for blkid.
    #[test]
    fn ext4_over_an_old_iso() {
        let xorriso = tool("xorriso", "xorriso");
        let mkfs = tool("mkfs.ext4", "e2fsprogs");
        let dir = tempfile::tempdir().unwrap();
        let root = tree(dir.path());
        let img = dir.path().join("reused.img");
        run(
            &xorriso,
            &[
                "-as",
                "mkisofs",
                "-V",
                "K1OS",
                "-o",
                img.to_str().unwrap(),
                root.to_str().unwrap(),
            ],
        );
        File::options()
            .write(true)
            .open(&img)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        run(
            &mkfs,
            &["-q", "-F", "-L", "K1OS-DATA", img.to_str().unwrap()],
        );
        check(&img, FsKind::Ext4, "K1OS-DATA");
    }

    /// Blank and tiny devices: nothing, and no panic.
    #[test]
    fn blank_devices() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("blank.img");
        blank(&img, 1 << 20);
        assert_eq!(probe(&head(&img, 0)), None);
        assert_eq!(blkid(&img, "TYPE"), "");
        for len in [0, 1, 511, 512, 1024, 2048, 4096] {
            assert_eq!(probe(&vec![0; len]), None);
        }
    }
}
