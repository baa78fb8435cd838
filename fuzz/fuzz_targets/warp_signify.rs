//! warp's signify parsers and signature check (`warp_format::signify`).
//!
//! The input is up to four parts separated by 0xFF bytes (which UTF-8 text
//! never holds): a public key file, a signature file, a secret key file, and
//! a message. Each file part is parsed as is; the message is signed with a
//! key made from the input and checked with the parsed keys.
//!
//! Asserts:
//! - a file that parses writes back (`to_file`, with any one-line comment)
//!   to a file that parses to the same key or signature; a parsed secret key
//!   and its public key sign and verify;
//! - a fresh key's signature over the message verifies; with one bit of the
//!   message or of the signature flipped, or another key's number, it does
//!   not (and the error says which: bad signature or unknown key);
//! - a parsed signature checked against a parsed public key (any message)
//!   never panics, and `verify_with_any` agrees with `verify`;
//! - a refusal is an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warp_format::signify::{self, Error, PublicKey, SecretKey, Signature};

fuzz_target!(|input: &[u8]| {
    let mut parts = input.splitn(4, |&b| b == 0xff);
    let pub_text = parts.next().unwrap_or_default();
    let sig_text = parts.next().unwrap_or_default();
    let sec_text = parts.next().unwrap_or_default();
    let message = parts.next().unwrap_or_default();
    // A comment for the files written here: one line, as every caller's.
    let comment: String =
        String::from_utf8_lossy(&message[..message.len().min(40)]).replace(['\n', '\r'], " ");

    let public = std::str::from_utf8(pub_text)
        .ok()
        .and_then(|t| PublicKey::parse(t).ok());
    if let Some(pk) = &public {
        let again = PublicKey::parse(&pk.to_file(&comment)).expect("a written .pub parses");
        assert_eq!(&again, pk);
    }
    let sig = std::str::from_utf8(sig_text)
        .ok()
        .and_then(|t| Signature::parse(t).ok());
    if let Some(s) = &sig {
        let again = Signature::parse(&s.to_file(&comment)).expect("a written .sig parses");
        assert_eq!(&again, s);
    }
    if let (Some(pk), Some(s)) = (&public, &sig) {
        let one = pk.verify(message, s);
        let any = signify::verify_with_any(std::slice::from_ref(pk), message, s);
        assert_eq!(one, any);
        if s.keynum != pk.keynum {
            assert_eq!(one, Err(Error::UnknownKey(s.keynum)));
        }
    }
    if let Ok(text) = std::str::from_utf8(sec_text)
        && let Ok(sk) = SecretKey::parse(text)
    {
        let again = SecretKey::parse(&sk.to_file(&comment)).expect("a written .sec parses");
        assert_eq!(again.public(), sk.public());
        assert_eq!(again.keynum, sk.keynum);
        check_signing(&sk, message);
    }

    // A key made from the input.
    let mut seed = [0u8; 32];
    let mut keynum = [0u8; 8];
    for (i, b) in input.iter().enumerate() {
        if i < 32 {
            seed[i] ^= b;
        } else {
            keynum[i % 8] ^= b;
        }
    }
    let sk = SecretKey::from_random(seed, keynum);
    let round = SecretKey::parse(&sk.to_file(&comment)).expect("a written .sec parses");
    assert_eq!(round.public(), sk.public());
    check_signing(&sk, message);
});

/// `sk` signs `message`; the signature verifies with its public key (read
/// back from its file) and fails for any change.
fn check_signing(sk: &SecretKey, message: &[u8]) {
    let pk = PublicKey::parse(&sk.public().to_file("k")).expect("a written .pub parses");
    let sig = Signature::parse(&sk.sign(message).to_file("s")).expect("a written .sig parses");
    assert_eq!(pk.verify(message, &sig), Ok(()));
    assert_eq!(
        signify::verify_with_any(std::slice::from_ref(&pk), message, &sig),
        Ok(())
    );

    // One bit of the message.
    let mut other = message.to_vec();
    match other.first_mut() {
        Some(b) => *b ^= 1,
        None => other.push(0),
    }
    assert_eq!(
        pk.verify(&other, &sig),
        Err(Error::BadSignature(sig.keynum))
    );

    // One bit of the signature (in its file, as an attacker would change it).
    let text = sig.to_file("s");
    let line = text.lines().nth(1).unwrap();
    let mut raw = decode(line);
    let at = 10 + message.len() % 64;
    raw[at] ^= 1 << (message.len() % 8);
    let forged = Signature::parse(&format!("untrusted comment: s\n{}\n", encode(&raw)))
        .expect("a signature with a flipped bit still parses");
    assert_eq!(
        pk.verify(message, &forged),
        Err(Error::BadSignature(sig.keynum))
    );

    // Another key number: not this key's signature.
    raw = decode(line);
    raw[2] ^= 0x80;
    let renamed = Signature::parse(&format!("untrusted comment: s\n{}\n", encode(&raw))).unwrap();
    assert_eq!(
        pk.verify(message, &renamed),
        Err(Error::UnknownKey(renamed.keynum))
    );
    assert_eq!(
        signify::verify_with_any(&[pk], message, &renamed),
        Err(Error::UnknownKey(renamed.keynum))
    );
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, written here so the test does not trust the
/// crate under test's encoder.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes().take_while(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c).unwrap() as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}
