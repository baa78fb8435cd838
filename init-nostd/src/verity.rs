//! The root image's dm-verity parameters (`docs/boot-contract.md`, "The
//! verified image"): the line `host-tools` writes into the initramfs at
//! [`TRUSTED_PATH`](crate::contract::INITRAMFS_VERITY) and stage 1 reads back
//! to build the table of the verity device it mounts the image through.
//!
//! The line is the part of a dm-verity table that describes the image
//! (the kernel's `Documentation/admin-guide/device-mapper/verity.rst`):
//!
//! ```text
//! <data blocks> <hash start block> sha256 <root hash> <salt>
//! ```
//!
//! Both block sizes are [`BLOCK_SIZE`], the hash is version 1 (the salt
//! first, as `veritysetup` makes it), and the hash tree is in the image file
//! itself, after the data: stage 1 gives the kernel the same device for both.

use crate::cmdline::number;
use crate::fmt::Bytes;
use ufmt::{uDisplay, uWrite, uwrite};

/// Data and hash block size, in bytes.
pub const BLOCK_SIZE: u32 = 4096;
/// The hash of the tree (the kernel's crypto API name).
pub const ALGORITHM: &str = "sha256";
/// A SHA-256 digest in hex.
pub const DIGEST_HEX: usize = 64;
/// The longest salt, in hex digits: 32 bytes, what `host-tools` makes (and
/// `veritysetup`'s default), so a whole table fits stage 1's path buffer.
pub const SALT_MAX_HEX: usize = 64;
/// The verity table's version field: hash version 1 (salt first).
pub const HASH_VERSION: u32 = 1;

/// The parameters of one image, borrowed from the line they were read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Params<'a> {
    /// Data blocks the tree covers (the image, padded to a block).
    pub data_blocks: u64,
    /// Where the tree starts, in blocks from the start of the device.
    pub hash_start: u64,
    /// The root hash, lowercase hex.
    pub root_hash: &'a [u8],
    /// The salt, lowercase hex.
    pub salt: &'a [u8],
}

impl<'a> Params<'a> {
    /// Reads the line (a final newline is allowed); `None` unless every
    /// field is there and well formed: no other field, the algorithm
    /// [`ALGORITHM`], a 64-digit root hash and an even salt of at most
    /// [`SALT_MAX_HEX`] digits, lowercase, and a tree that starts after the
    /// data. (`host-tools` checks what it writes with this; stage 1 takes
    /// only [`split_line`]'s two fields and leaves the rest to the kernel.)
    pub fn parse(line: &'a [u8]) -> Option<Self> {
        let (data_blocks, root_hash) = split_line(line)?;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let mut fields = line.split(|&b| b == b' ').skip(1);
        let hash_start = number(fields.next()?)?;
        let algorithm = fields.next()?;
        let _root = fields.next()?;
        let salt = fields.next()?;
        let ok = fields.next().is_none()
            && data_blocks > 0
            && hash_start >= data_blocks
            && algorithm == ALGORITHM.as_bytes()
            && root_hash.len() == DIGEST_HEX
            && salt.len() % 2 == 0
            && salt.len() <= SALT_MAX_HEX
            && root_hash
                .iter()
                .chain(salt)
                .all(|&c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        ok.then_some(Params {
            data_blocks,
            hash_start,
            root_hash,
            salt,
        })
    }

    /// The table of a verity target over `device` (its path or
    /// `major:minor`), data and tree on the same device:
    /// `1 <dev> <dev> 4096 4096 <line>`. Its length in 512-byte sectors is
    /// [`Params::sectors`].
    pub fn write_table<W: uWrite + ?Sized>(
        &self,
        w: &mut W,
        device: &[u8],
    ) -> Result<(), W::Error> {
        uwrite!(
            w,
            "1 {} {} 4096 4096 {}",
            Bytes(device),
            Bytes(device),
            self
        )
    }

    /// The verity device's size in 512-byte sectors.
    pub fn sectors(&self) -> u64 {
        self.data_blocks * (BLOCK_SIZE as u64 / 512)
    }
}

/// What stage 1 takes from a parameter line: the data blocks (the verity
/// device's length) and the root hash (for its log line and the boot
/// record), the first and the fourth field. The kernel checks the rest when
/// it loads the table. `None` when the line has fewer than four fields or
/// the first is not a number.
pub fn split_line(line: &[u8]) -> Option<(u64, &[u8])> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let mut fields = line.split(|&b| b == b' ');
    let data_blocks = number(fields.next()?)?;
    let root_hash = fields.nth(2)?;
    Some((data_blocks, root_hash))
}

// `write_table` spells out the version and the block sizes.
const _: () = assert!(HASH_VERSION == 1 && BLOCK_SIZE == 4096);

/// The line itself: `<data blocks> <hash start block> sha256 <root> <salt>`.
impl uDisplay for Params<'_> {
    fn fmt<W: uWrite + ?Sized>(&self, f: &mut ufmt::Formatter<'_, W>) -> Result<(), W::Error> {
        uwrite!(
            f,
            "{} {} {} {} {}",
            self.data_blocks,
            self.hash_start,
            ALGORITHM,
            Bytes(self.root_hash),
            Bytes(self.salt)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fmt::tests::Out;

    const ROOT: &str = "4392e3a2bd4b3e7d1b2c4c6f0f6e1a9b2f4d8e0c1a3b5c7d9e1f2a3b4c5d6e7f";
    const SALT: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn line() -> String {
        format!("2560 2561 sha256 {ROOT} {SALT}\n")
    }

    #[test]
    fn a_line_parses_and_writes_back() {
        let text = line();
        let p = Params::parse(text.as_bytes()).unwrap();
        assert_eq!(p.data_blocks, 2560);
        assert_eq!(p.hash_start, 2561);
        assert_eq!(p.root_hash, ROOT.as_bytes());
        assert_eq!(p.salt, SALT.as_bytes());
        assert_eq!(p.sectors(), 2560 * 8);
        let mut out = Out(String::new());
        let _ = uwrite!(out, "{}", p);
        assert_eq!(out.0, text.trim_end());
        let mut table = Out(String::new());
        let _ = p.write_table(&mut table, b"/dev/loop0");
        assert_eq!(
            table.0,
            format!("1 /dev/loop0 /dev/loop0 4096 4096 2560 2561 sha256 {ROOT} {SALT}")
        );
        // Without the final newline, and with an empty salt.
        assert!(Params::parse(text.trim_end().as_bytes()).is_some());
        let empty_salt = format!("1 1 sha256 {ROOT} ");
        assert_eq!(Params::parse(empty_salt.as_bytes()).unwrap().salt, b"");
    }

    #[test]
    fn bad_lines_are_refused() {
        let upper = ROOT.to_uppercase();
        let long_salt = "ab".repeat(33);
        for bad in [
            String::new(),
            "\n".into(),
            format!("2560 2561 sha256 {ROOT}"),
            format!("2560 2561 sha256 {ROOT} {SALT} extra"),
            format!("2560 2561 sha1 {ROOT} {SALT}"),
            format!("2560 2561 sha256 {upper} {SALT}"),
            format!("2560 2561 sha256 {} {SALT}", &ROOT[1..]),
            format!("2560 2561 sha256 {ROOT}0 {SALT}"),
            format!("2560 2561 sha256 {ROOT} {}", &SALT[1..]),
            format!("2560 2561 sha256 {ROOT} {long_salt}"),
            format!("2560 2561 sha256 {ROOT} xyz0"),
            format!("0 1 sha256 {ROOT} {SALT}"),
            format!("2560 2559 sha256 {ROOT} {SALT}"),
            format!("-1 2561 sha256 {ROOT} {SALT}"),
            format!("2560  2561 sha256 {ROOT} {SALT}"),
            format!("2560 2561 sha256 {ROOT} {SALT}\n\n"),
            format!("99999999999999999999 2561 sha256 {ROOT} {SALT}"),
            format!("2560\t2561 sha256 {ROOT} {SALT}"),
        ] {
            assert_eq!(Params::parse(bad.as_bytes()), None, "{bad:?}");
        }
        // What stage 1 takes.
        assert_eq!(split_line(line().as_bytes()), Some((2560, ROOT.as_bytes())));
        assert_eq!(split_line(b"1 2 sha256 r"), Some((1, &b"r"[..])));
        assert_eq!(split_line(b"1 2 sha256"), None);
        assert_eq!(split_line(b"x 2 sha256 r s"), None);
        // Odd bytes never panic.
        for n in 0..=255u8 {
            let mut odd = line().into_bytes();
            let at = n as usize % odd.len();
            odd[at] = n;
            let _ = Params::parse(&odd);
        }
    }
}
