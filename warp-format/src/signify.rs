//! Ed25519 keys and detached signatures in the signify format (OpenBSD's
//! `signify`, OpenWrt's `usign`), so that `signify -V -p KEY.pub -x
//! index.json.sig -m index.json` checks what `host-tools repo` signs.
//!
//! Each file is two lines: `untrusted comment: …` and the base64 of
//! - public key: `"Ed"` ‖ keynum\[8\] ‖ public key\[32\]
//! - signature: `"Ed"` ‖ keynum\[8\] ‖ signature\[64\]
//! - secret key: `"Ed"` ‖ `"BK"` ‖ kdf rounds\[4\] (0: no passphrase) ‖
//!   salt\[16\] ‖ checksum\[8\] (sha512 of the secret key) ‖ keynum\[8\] ‖
//!   secret key\[64\] (seed ‖ public key).
//!
//! The keynum is a random 8-byte name of the key: a signature says which key
//! made it, and a verifier picks that key from the ones it trusts. The
//! signature is pure Ed25519 over the exact bytes of the message, checked
//! with `verify_strict` (no non-canonical or small-order signatures).
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::Digest;
use std::fmt;

const PKALG: &[u8; 2] = b"Ed";
const KDFALG: &[u8; 2] = b"BK";
const COMMENT: &str = "untrusted comment: ";
/// Longest signify file warp reads (a comment line and one base64 line).
pub const MAX_FILE: usize = 4096;

/// What is wrong with a key or signature file, or why a signature does not
/// verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not two lines `untrusted comment: …` / base64.
    Malformed(String),
    /// Not an Ed25519 (`Ed`) key or signature.
    Algorithm,
    /// The secret key is passphrase-protected (warp's build keys are not).
    Encrypted,
    /// The secret key's checksum does not match (corrupt file).
    Checksum,
    /// The signature names a key (its keynum) that is not among the trusted.
    UnknownKey(KeyNum),
    /// The signature does not match the message and the key.
    BadSignature(KeyNum),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Malformed(why) => write!(f, "not a signify file: {why}"),
            Error::Algorithm => f.write_str("not an Ed25519 (signify `Ed`) key or signature"),
            Error::Encrypted => {
                f.write_str("the secret key has a passphrase; warp's signing keys have none")
            }
            Error::Checksum => {
                f.write_str("the secret key's checksum does not match: corrupt file")
            }
            Error::UnknownKey(k) => write!(f, "signed by key {k}, which is not a trusted key"),
            Error::BadSignature(k) => write!(f, "the signature by key {k} does not match"),
        }
    }
}

impl std::error::Error for Error {}

/// A key's 8-byte name; shown as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyNum(pub [u8; 8]);

impl fmt::Display for KeyNum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex(&self.0))
    }
}

/// A public key that can check signatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    pub keynum: KeyNum,
    key: VerifyingKey,
}

/// A secret key that makes signatures (host side only).
pub struct SecretKey {
    pub keynum: KeyNum,
    key: SigningKey,
}

/// A detached signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    pub keynum: KeyNum,
    sig: [u8; 64],
}

/// The base64 payload of a signify file (its second line), checked for the
/// comment line first.
fn payload(text: &str) -> Result<Vec<u8>, Error> {
    if text.len() > MAX_FILE {
        return Err(Error::Malformed(format!("longer than {MAX_FILE} bytes")));
    }
    let mut lines = text.split('\n');
    let comment = lines.next().unwrap_or_default();
    if !comment.starts_with(COMMENT) {
        return Err(Error::Malformed(format!(
            "the first line does not start with `{COMMENT}`"
        )));
    }
    let data = lines
        .next()
        .ok_or_else(|| Error::Malformed("no second line".into()))?;
    if lines.any(|l| !l.is_empty()) {
        return Err(Error::Malformed("more than two lines".into()));
    }
    STANDARD
        .decode(data.trim_end_matches('\r'))
        .map_err(|e| Error::Malformed(format!("the second line is not base64: {e}")))
}

fn encode(comment: &str, bytes: &[u8]) -> String {
    format!("{COMMENT}{comment}\n{}\n", STANDARD.encode(bytes))
}

fn keynum_at(bytes: &[u8], at: usize) -> KeyNum {
    let mut k = [0; 8];
    k.copy_from_slice(&bytes[at..at + 8]);
    KeyNum(k)
}

impl PublicKey {
    /// Reads a `.pub` file's text.
    pub fn parse(text: &str) -> Result<PublicKey, Error> {
        let b = payload(text)?;
        if b.len() != 2 + 8 + 32 {
            return Err(Error::Malformed(format!(
                "a public key is 42 bytes, this is {}",
                b.len()
            )));
        }
        if &b[..2] != PKALG {
            return Err(Error::Algorithm);
        }
        let mut pk = [0; 32];
        pk.copy_from_slice(&b[10..]);
        let key = VerifyingKey::from_bytes(&pk)
            .map_err(|_| Error::Malformed("not a valid Ed25519 public key".into()))?;
        if key.is_weak() {
            return Err(Error::Malformed(
                "a weak (small-order) Ed25519 public key".into(),
            ));
        }
        Ok(PublicKey {
            keynum: keynum_at(&b, 2),
            key,
        })
    }

    /// The `.pub` file's text, with `comment` after `untrusted comment: `.
    pub fn to_file(&self, comment: &str) -> String {
        let mut b = Vec::with_capacity(42);
        b.extend_from_slice(PKALG);
        b.extend_from_slice(&self.keynum.0);
        b.extend_from_slice(self.key.as_bytes());
        encode(comment, &b)
    }

    /// Checks `sig` over `message` with this key.
    pub fn verify(&self, message: &[u8], sig: &Signature) -> Result<(), Error> {
        if sig.keynum != self.keynum {
            return Err(Error::UnknownKey(sig.keynum));
        }
        let s = ed25519_dalek::Signature::from_bytes(&sig.sig);
        self.key
            .verify_strict(message, &s)
            .map_err(|_| Error::BadSignature(sig.keynum))
    }
}

/// Checks `sig` over `message` with whichever of `trusted` it names.
pub fn verify_with_any(
    trusted: &[PublicKey],
    message: &[u8],
    sig: &Signature,
) -> Result<(), Error> {
    match trusted.iter().find(|k| k.keynum == sig.keynum) {
        Some(key) => key.verify(message, sig),
        None => Err(Error::UnknownKey(sig.keynum)),
    }
}

impl Signature {
    /// Reads a `.sig` file's text.
    pub fn parse(text: &str) -> Result<Signature, Error> {
        let b = payload(text)?;
        if b.len() != 2 + 8 + 64 {
            return Err(Error::Malformed(format!(
                "a signature is 74 bytes, this is {}",
                b.len()
            )));
        }
        if &b[..2] != PKALG {
            return Err(Error::Algorithm);
        }
        let mut sig = [0; 64];
        sig.copy_from_slice(&b[10..]);
        Ok(Signature {
            keynum: keynum_at(&b, 2),
            sig,
        })
    }

    /// The `.sig` file's text.
    pub fn to_file(&self, comment: &str) -> String {
        let mut b = Vec::with_capacity(74);
        b.extend_from_slice(PKALG);
        b.extend_from_slice(&self.keynum.0);
        b.extend_from_slice(&self.sig);
        encode(comment, &b)
    }
}

impl SecretKey {
    /// A new key from 32 random bytes for the seed and 8 for the keynum (the
    /// caller reads them from the system's random source).
    pub fn from_random(seed: [u8; 32], keynum: [u8; 8]) -> SecretKey {
        SecretKey {
            keynum: KeyNum(keynum),
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a `.sec` file's text (no passphrase).
    pub fn parse(text: &str) -> Result<SecretKey, Error> {
        let b = payload(text)?;
        if b.len() != 2 + 2 + 4 + 16 + 8 + 8 + 64 {
            return Err(Error::Malformed(format!(
                "a secret key is 104 bytes, this is {}",
                b.len()
            )));
        }
        if &b[..2] != PKALG || &b[2..4] != KDFALG {
            return Err(Error::Algorithm);
        }
        if b[4..8] != [0, 0, 0, 0] {
            return Err(Error::Encrypted);
        }
        let sk = &b[40..104];
        if sha2::Sha512::digest(sk)[..8] != b[24..32] {
            return Err(Error::Checksum);
        }
        let mut seed = [0; 32];
        seed.copy_from_slice(&sk[..32]);
        let key = SigningKey::from_bytes(&seed);
        if key.verifying_key().as_bytes()[..] != sk[32..] {
            return Err(Error::Checksum);
        }
        Ok(SecretKey {
            keynum: keynum_at(&b, 32),
            key,
        })
    }

    /// The `.sec` file's text: no passphrase (kdf rounds 0), a zero salt.
    pub fn to_file(&self, comment: &str) -> String {
        let mut sk = Vec::with_capacity(64);
        sk.extend_from_slice(self.key.as_bytes());
        sk.extend_from_slice(self.key.verifying_key().as_bytes());
        let mut b = Vec::with_capacity(104);
        b.extend_from_slice(PKALG);
        b.extend_from_slice(KDFALG);
        b.extend_from_slice(&[0; 4]);
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&sha2::Sha512::digest(&sk)[..8]);
        b.extend_from_slice(&self.keynum.0);
        b.extend_from_slice(&sk);
        encode(comment, &b)
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            keynum: self.keynum,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `message` (the exact bytes, no prehash).
    pub fn sign(&self, message: &[u8]) -> Signature {
        Signature {
            keynum: self.keynum,
            sig: self.key.sign(message).to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_random([n; 32], [n; 8])
    }

    #[test]
    fn round_trip_and_forgeries() {
        let sk = key(7);
        let sk2 = SecretKey::parse(&sk.to_file("signify secret key")).unwrap();
        let pk = PublicKey::parse(&sk2.public().to_file("k1os test")).unwrap();
        assert_eq!(pk, sk.public());
        let msg = b"{\"serial\":1}\n";
        let sig = Signature::parse(&sk2.sign(msg).to_file("verify with test.pub")).unwrap();
        pk.verify(msg, &sig).unwrap();
        assert_eq!(
            pk.verify(b"{\"serial\":2}\n", &sig),
            Err(Error::BadSignature(pk.keynum))
        );
        // A flipped bit anywhere in the signature.
        for i in 0..64 {
            let mut bad = sig.clone();
            bad.sig[i] ^= 0x10;
            assert!(pk.verify(msg, &bad).is_err(), "bit flip at {i}");
        }
        // Non-canonical S (S + L): must be refused by verify_strict.
        let mut bad = sig.clone();
        let l: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s, l) in bad.sig[32..].iter_mut().zip(l) {
            let v = *s as u16 + l as u16 + carry;
            *s = v as u8;
            carry = v >> 8;
        }
        assert!(pk.verify(msg, &bad).is_err(), "S + L accepted");
        // Another key: unknown keynum; same keynum but other key: bad.
        let other = key(8).public();
        assert_eq!(
            verify_with_any(std::slice::from_ref(&other), msg, &sig),
            Err(Error::UnknownKey(sig.keynum))
        );
        let impostor = SecretKey::from_random([9; 32], [7; 8]);
        assert!(impostor.public().verify(msg, &sig).is_err());
        assert!(verify_with_any(&[other, pk], msg, &sig).is_ok());
    }

    #[test]
    fn malformed_files() {
        assert!(matches!(Signature::parse(""), Err(Error::Malformed(_))));
        assert!(matches!(
            Signature::parse("untrusted comment: x\n!!!\n"),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Signature::parse("comment: x\nRWQ=\n"),
            Err(Error::Malformed(_))
        ));
        let pk = key(1).public().to_file("x");
        assert!(matches!(Signature::parse(&pk), Err(Error::Malformed(_))));
        // An all-zero public key is refused (small order).
        let zero = encode(
            "x",
            &[
                b'E', b'd', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        );
        assert!(PublicKey::parse(&zero).is_err());
        let mut sec = key(2).to_file("x").into_bytes();
        let n = sec.len();
        sec[n - 5] ^= 1;
        assert!(SecretKey::parse(std::str::from_utf8(&sec).unwrap()).is_err());
    }

    /// RFC 8032 §7.1, test 2: one byte message.
    #[test]
    fn rfc8032_vector() {
        let seed: [u8; 32] =
            hex32("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let sk = SecretKey::from_random(seed, [0; 8]);
        assert_eq!(
            crate::hex(sk.public().key.as_bytes()),
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
        );
        assert_eq!(
            crate::hex(&sk.sign(&[0x72]).sig),
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
             085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        );
    }

    fn hex32(s: &str) -> [u8; 32] {
        let mut out = [0; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }
}
