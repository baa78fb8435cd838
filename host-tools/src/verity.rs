//! dm-verity for the root image (`docs/boot-contract.md`, "The verified
//! image"): the hash tree of `system.squashfs`, computed here and appended
//! to the image file, and the parameter line an initramfs trusts it by.
//!
//! **Layout** (`veritysetup format --hash-offset=<data size>`'s, with its
//! superblock), in 4 KiB blocks:
//!
//! ```text
//! | squashfs, zero-padded to a block | verity superblock (512 B, padded) | tree: top level … level 0 |
//! 0                                  hash offset = data blocks × 4096     hash start = data blocks + 1
//! ```
//!
//! The tree is SHA-256, hash version 1 (each block hashed as `salt ‖ block`),
//! 128 digests per hash block, the top level first, as the kernel's
//! `dm-verity-target.c` and cryptsetup's `verity_hash.c` lay it out. The salt
//! is derived from the image (`sha256("K1OS dm-verity salt v1\n" ‖ data)`),
//! the superblock's UUID from the salt: the same image always gets the same
//! bytes. Appending keeps the image one file (`k1os.image`, `k1os.toram`
//! copy it whole); squashfs ignores what follows its data, and the data's
//! size is in the squashfs superblock (`bytes_used`), so [`read`] finds
//! the tree without being told where it is.
//!
//! The root hash is what makes it verified: [`Verity::line`] goes into the
//! initramfs built with the image (`host-tools initramfs --image`, `iso`), so
//! an initramfs trusts exactly one image. `host-tools/src/verity.rs`'s tests
//! check the tree against `veritysetup` byte for byte.
use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use k1os_contract::ufmt;
use k1os_contract::verity::{self as contract, Params};

/// Data and hash block size.
pub const BLOCK: u64 = contract::BLOCK_SIZE as u64;
/// Digests in a hash block (4096 / 32).
const PER_BLOCK: usize = 128;
/// The verity superblock's size (it takes a whole hash block).
pub const SUPERBLOCK_SIZE: usize = 512;
/// What the salt's hash starts with, so it is not the image's plain sha256.
const SALT_DOMAIN: &[u8] = b"K1OS dm-verity salt v1\n";
/// squashfs: the magic (`hsqs`) and where the superblock keeps `bytes_used`.
const SQUASHFS_MAGIC: &[u8; 4] = b"hsqs";
const SQUASHFS_BYTES_USED: usize = 40;

/// An image's verity parameters and where its tree is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verity {
    /// Data blocks (the squashfs padded to a block).
    pub data_blocks: u64,
    pub root_hash: [u8; 32],
    pub salt: [u8; 32],
    /// The superblock's UUID (derived from the salt).
    pub uuid: [u8; 16],
    /// Bytes after the data: the superblock's block and the tree.
    pub tree_bytes: u64,
}

impl Verity {
    /// Where the superblock is, in bytes: `veritysetup --hash-offset`.
    pub fn hash_offset(&self) -> u64 {
        self.data_blocks * BLOCK
    }

    /// Where the tree starts, in blocks: the table's `<hash start block>`.
    pub fn hash_start(&self) -> u64 {
        self.data_blocks + 1
    }

    pub fn root_hex(&self) -> String {
        crate::hash::hex(&self.root_hash)
    }

    pub fn salt_hex(&self) -> String {
        crate::hash::hex(&self.salt)
    }

    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as `veritysetup --uuid` takes it.
    pub fn uuid_string(&self) -> String {
        let h = crate::hash::hex(&self.uuid);
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    /// The parameter line an initramfs trusts the image by
    /// ([`k1os_contract::verity::Params`], written by the contract's own
    /// formatter), newline-terminated.
    pub fn line(&self) -> String {
        let (root, salt) = (self.root_hex(), self.salt_hex());
        let params = Params {
            data_blocks: self.data_blocks,
            hash_start: self.hash_start(),
            root_hash: root.as_bytes(),
            salt: salt.as_bytes(),
        };
        let mut out = Out(String::new());
        let _ = ufmt::uwrite!(out, "{}", params);
        out.0.push('\n');
        debug_assert_eq!(Params::parse(out.0.as_bytes()), Some(params));
        out.0
    }
}

/// A `ufmt` writer into a `String`.
struct Out(String);

impl ufmt::uWrite for Out {
    type Error = std::convert::Infallible;
    fn write_str(&mut self, s: &str) -> Result<(), Self::Error> {
        self.0.push_str(s);
        Ok(())
    }
}

/// The bytes the tree covers and how many blocks they are: a squashfs's
/// `bytes_used`, rounded up to a block.
fn data_blocks_of(head: &[u8], path: &Path) -> Result<u64> {
    ensure!(
        head.len() >= 96 && &head[..4] == SQUASHFS_MAGIC,
        "{} is not a squashfs image",
        path.display()
    );
    let used = u64::from_le_bytes(
        head[SQUASHFS_BYTES_USED..SQUASHFS_BYTES_USED + 8]
            .try_into()
            .expect("8 bytes"),
    );
    ensure!(used > 0, "{}: squashfs says it is empty", path.display());
    Ok(used.div_ceil(BLOCK))
}

/// The file's length, and how many blocks its squashfs data fills (from
/// the superblock at its start; the file is read from its start).
fn lengths(file: &mut File, image: &Path) -> Result<(u64, u64)> {
    let len = file
        .metadata()
        .with_context(|| format!("reading {}", image.display()))?
        .len();
    let mut head = [0u8; 96];
    file.read_exact(&mut head)
        .with_context(|| format!("reading {}", image.display()))?;
    Ok((len, data_blocks_of(&head, image)?))
}

/// Appends the tree to the squashfs `image` (padding it to a block first)
/// and returns its parameters. The image must end with its squashfs data
/// (what `mksquashfs` writes): one that already has a tree is refused.
pub fn append(image: &Path) -> Result<Verity> {
    let mut file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(image)
        .with_context(|| format!("opening {}", image.display()))?;
    let (len, data_blocks) = lengths(&mut file, image)?;
    ensure!(
        len <= data_blocks * BLOCK,
        "{} has {} bytes after its squashfs data (a hash tree already?)",
        image.display(),
        len - data_blocks * BLOCK
    );
    file.set_len(data_blocks * BLOCK)
        .with_context(|| format!("padding {}", image.display()))?;
    file.seek(SeekFrom::Start(0))?;
    let (verity, tree) =
        compute(&mut file, data_blocks).with_context(|| format!("hashing {}", image.display()))?;
    file.seek(SeekFrom::End(0))?;
    file.write_all(&tree)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("appending the hash tree to {}", image.display()))?;
    Ok(verity)
}

/// Reads the tree appended to `image` and checks it: the superblock says
/// what [`append`] writes, and every hash of the tree is recomputed from the
/// data. Returns the parameters (the root hash is recomputed too).
pub fn read(image: &Path) -> Result<Verity> {
    let mut file = File::open(image).with_context(|| format!("opening {}", image.display()))?;
    let (len, data_blocks) = lengths(&mut file, image)?;
    let offset = data_blocks * BLOCK;
    let no_tree = || {
        format!(
            "{} has no dm-verity hash tree after its squashfs data (`./k1os rootfs` appends one)",
            image.display()
        )
    };
    ensure!(len >= offset + BLOCK, "{}", no_tree());
    let mut stored = vec![0u8; (len - offset) as usize];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut stored)
        .with_context(|| format!("reading {}", image.display()))?;
    let sb = Superblock::parse(&stored[..SUPERBLOCK_SIZE]).with_context(no_tree)?;
    ensure!(
        sb.data_blocks == data_blocks,
        "{}: the verity superblock covers {} blocks, the squashfs {}",
        image.display(),
        sb.data_blocks,
        data_blocks
    );
    file.seek(SeekFrom::Start(0))?;
    let (verity, tree) = compute_with_salt(&mut file, data_blocks, sb.salt)
        .with_context(|| format!("hashing {}", image.display()))?;
    ensure!(
        tree == stored,
        "{}: its dm-verity tree does not match its data (a damaged image?)",
        image.display()
    );
    Ok(verity)
}

/// The superblock's fields K1OS reads back.
struct Superblock {
    data_blocks: u64,
    salt: [u8; 32],
}

impl Superblock {
    /// `struct verity_sb` (cryptsetup's `lib/verity/verity.c`), little-endian.
    fn write(v: &Verity) -> [u8; SUPERBLOCK_SIZE] {
        let mut sb = [0u8; SUPERBLOCK_SIZE];
        sb[..8].copy_from_slice(b"verity\0\0");
        sb[8..12].copy_from_slice(&1u32.to_le_bytes()); // superblock version
        sb[12..16].copy_from_slice(&contract::HASH_VERSION.to_le_bytes()); // hash type
        sb[16..32].copy_from_slice(&v.uuid);
        sb[32..32 + contract::ALGORITHM.len()].copy_from_slice(contract::ALGORITHM.as_bytes());
        sb[64..68].copy_from_slice(&contract::BLOCK_SIZE.to_le_bytes());
        sb[68..72].copy_from_slice(&contract::BLOCK_SIZE.to_le_bytes());
        sb[72..80].copy_from_slice(&v.data_blocks.to_le_bytes());
        sb[80..82].copy_from_slice(&(v.salt.len() as u16).to_le_bytes());
        sb[88..88 + v.salt.len()].copy_from_slice(&v.salt);
        sb
    }

    /// Only what [`Superblock::write`] makes is accepted.
    fn parse(sb: &[u8]) -> Result<Superblock> {
        let u32_at = |at: usize| u32::from_le_bytes(sb[at..at + 4].try_into().expect("4 bytes"));
        ensure!(&sb[..8] == b"verity\0\0", "no verity superblock");
        let mut algorithm = [0u8; 32];
        algorithm[..contract::ALGORITHM.len()].copy_from_slice(contract::ALGORITHM.as_bytes());
        let salt_size = u16::from_le_bytes([sb[80], sb[81]]);
        ensure!(
            u32_at(8) == 1
                && u32_at(12) == contract::HASH_VERSION
                && sb[32..64] == algorithm
                && u32_at(64) == contract::BLOCK_SIZE
                && u32_at(68) == contract::BLOCK_SIZE
                && salt_size == 32,
            "a verity superblock K1OS does not make (version, hash type, algorithm, block \
             sizes or salt size)"
        );
        Ok(Superblock {
            data_blocks: u64::from_le_bytes(sb[72..80].try_into().expect("8 bytes")),
            salt: sb[88..120].try_into().expect("32 bytes"),
        })
    }
}

/// The salt of the `data_blocks` blocks `data` reads (it is read once for
/// the salt, then again, from the start, for the tree), the tree, and the
/// bytes to append: the superblock's block, then the tree.
pub fn compute<R: Read + Seek>(data: &mut R, data_blocks: u64) -> Result<(Verity, Vec<u8>)> {
    let start = data.stream_position()?;
    let mut salt = Sha256::new();
    salt.update(SALT_DOMAIN);
    for_each_block(data, data_blocks, |block| salt.update(block))?;
    data.seek(SeekFrom::Start(start))?;
    compute_with_salt(data, data_blocks, salt.finalize().into())
}

/// [`compute`] with a given salt.
fn compute_with_salt<R: Read>(
    data: &mut R,
    data_blocks: u64,
    salt: [u8; 32],
) -> Result<(Verity, Vec<u8>)> {
    ensure!(data_blocks > 0, "no data to hash");
    let hash = |block: &[u8]| -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(salt);
        h.update(block);
        h.finalize().into()
    };
    let mut digests = Vec::with_capacity(data_blocks as usize);
    for_each_block(data, data_blocks, |block| digests.push(hash(block)))?;
    // Level 0 packs the data blocks' digests, each level above packs the
    // digests of the one below, until one block is left: its digest is the
    // root. (One data block: no level; the root is that block's digest.)
    let mut levels: Vec<Vec<u8>> = Vec::new();
    while digests.len() > 1 {
        let mut level = Vec::with_capacity(digests.len().div_ceil(PER_BLOCK) * BLOCK as usize);
        let mut next = Vec::new();
        for chunk in digests.chunks(PER_BLOCK) {
            let mut block = vec![0u8; BLOCK as usize];
            for (slot, digest) in block.chunks_mut(32).zip(chunk) {
                slot.copy_from_slice(digest);
            }
            next.push(hash(&block));
            level.extend_from_slice(&block);
        }
        levels.push(level);
        digests = next;
    }
    let root_hash = digests[0];
    let mut uuid: [u8; 16] = salt[16..].try_into().expect("16 bytes");
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // variant 1
    let tree_len: usize = levels.iter().map(Vec::len).sum();
    let verity = Verity {
        data_blocks,
        root_hash,
        salt,
        uuid,
        tree_bytes: BLOCK + tree_len as u64,
    };
    let mut out = Vec::with_capacity(BLOCK as usize + tree_len);
    out.extend_from_slice(&Superblock::write(&verity));
    out.resize(BLOCK as usize, 0);
    for level in levels.iter().rev() {
        out.extend_from_slice(level);
    }
    Ok((verity, out))
}

/// Calls `f` with each of the `blocks` blocks `data` reads (4 KiB each).
fn for_each_block<R: Read>(data: &mut R, blocks: u64, mut f: impl FnMut(&[u8])) -> Result<()> {
    let mut reader = std::io::BufReader::with_capacity(1 << 20, data);
    let mut block = vec![0u8; BLOCK as usize];
    for _ in 0..blocks {
        reader
            .read_exact(&mut block)
            .context("the data ends early")?;
        f(&block);
    }
    Ok(())
}

/// Flips one bit of byte `offset` of `file`: how the tests damage an image.
pub fn flip_bit(file: &Path, offset: u64) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(file)
        .with_context(|| format!("opening {}", file.display()))?;
    let mut byte = [0u8];
    f.seek(SeekFrom::Start(offset))?;
    f.read_exact(&mut byte)
        .with_context(|| format!("reading byte {offset} of {}", file.display()))?;
    byte[0] ^= 0x01;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(&byte)?;
    f.sync_all()
        .with_context(|| format!("writing {}", file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake squashfs of `blocks` blocks (magic and `bytes_used` only,
    /// the rest a pattern): what [`append`] needs.
    fn fake_image(path: &Path, bytes: u64) {
        let mut data: Vec<u8> = (0..bytes).map(|i| (i * 7 % 251) as u8).collect();
        data[..4].copy_from_slice(SQUASHFS_MAGIC);
        data[SQUASHFS_BYTES_USED..SQUASHFS_BYTES_USED + 8].copy_from_slice(&bytes.to_le_bytes());
        fs::write(path, data).unwrap();
    }

    #[test]
    fn tree_sizes_follow_the_kernels_levels() {
        // 1 block: no level; 128: one; 129: two (2 blocks + 1); 16,385:
        // three (129 + 2 + 1).
        for (blocks, tree_blocks) in [(1u64, 0usize), (2, 1), (128, 1), (129, 3), (16_385, 132)] {
            let data = vec![0x5au8; (blocks * BLOCK) as usize];
            let (v, tree) = compute(&mut std::io::Cursor::new(&data), blocks).unwrap();
            assert_eq!(tree.len(), (1 + tree_blocks) * BLOCK as usize, "{blocks}");
            assert_eq!(v.tree_bytes, tree.len() as u64);
            if blocks == 1 {
                let mut h = Sha256::new();
                h.update(v.salt);
                h.update(&data);
                assert_eq!(v.root_hash, <[u8; 32]>::from(h.finalize()));
            }
        }
    }

    #[test]
    fn append_then_read_back_and_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        fake_image(&a, 300_000);
        fake_image(&b, 300_000);
        let va = append(&a).unwrap();
        let vb = append(&b).unwrap();
        assert_eq!(va, vb);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert_eq!(va.data_blocks, 74);
        assert_eq!(fs::metadata(&a).unwrap().len(), 74 * BLOCK + va.tree_bytes);
        assert_eq!(read(&a).unwrap(), va);
        let line = va.line();
        let params = Params::parse(line.as_bytes()).unwrap();
        assert_eq!(params.data_blocks, 74);
        assert_eq!(params.hash_start, 75);
        assert_eq!(params.root_hash, va.root_hex().as_bytes());
        // A second tree is refused; another image gets another salt.
        let err = append(&a).unwrap_err().to_string();
        assert!(err.contains("a hash tree already"), "{err}");
        let c = dir.path().join("c");
        fake_image(&c, 300_001);
        assert_ne!(append(&c).unwrap().salt, va.salt);
    }

    #[test]
    fn damage_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        fake_image(&a, 200_000);
        let v = append(&a).unwrap();
        // In the data, in the tree, in the superblock.
        for offset in [100_000, v.hash_offset() + BLOCK + 10, v.hash_offset() + 90] {
            let copy = dir.path().join("copy");
            fs::copy(&a, &copy).unwrap();
            flip_bit(&copy, offset).unwrap();
            assert!(read(&copy).is_err(), "offset {offset}");
        }
        let plain = dir.path().join("plain");
        fake_image(&plain, 200_000);
        let err = read(&plain).unwrap_err().to_string();
        assert!(err.contains("no dm-verity hash tree"), "{err}");
    }
}
