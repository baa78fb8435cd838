//! warp's manifest parser (`warp_format::manifest::Manifest::parse`) on any
//! bytes.
//!
//! Asserts, for every manifest it accepts:
//! - it passes `check` again, and so does every entry (its path by
//!   `paths::check`, its mode without setuid/setgid/sticky/type bits);
//! - every entry's directory is listed before it as a directory (or is one
//!   the image owns), and no path is listed twice;
//! - round trip: its canonical bytes (`to_bytes`) parse to the same
//!   manifest, and writing that again gives the same bytes;
//! - every `depends`/`conflicts` entry is a constraint that prints and
//!   parses back to itself;
//! - `installed_size` is the sum of the file sizes.
//!
//! And a refusal is an error message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use warp_format::manifest::{Kind, Manifest};
use warp_format::paths;
use warp_format::version::Constraint;

fuzz_target!(|bytes: &[u8]| {
    let m = match Manifest::parse(bytes) {
        Ok(m) => m,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    m.check().expect("a parsed manifest passes check");
    let mut seen: BTreeMap<&str, Kind> = BTreeMap::new();
    let mut total: u128 = 0;
    for f in &m.files {
        f.check().expect("each entry passes check");
        paths::check(&f.path, f.kind == Kind::Dir).expect("path rules");
        assert_eq!(f.mode & !0o777, 0);
        let parent = paths::parent(&f.path);
        assert!(
            paths::is_shared_dir(parent) || seen.get(parent) == Some(&Kind::Dir),
            "`{}` comes before its directory",
            f.path
        );
        assert!(seen.insert(&f.path, f.kind).is_none(), "`{}` twice", f.path);
        total += u128::from(f.size);
    }
    for c in m.depends.iter().chain(&m.conflicts) {
        let parsed = Constraint::parse(c).expect("a checked constraint parses");
        assert_eq!(Constraint::parse(&parsed.to_string()), Ok(parsed));
    }
    assert_eq!(u128::from(m.installed_size()), total, "installed_size");

    let canonical = m.to_bytes();
    let again = Manifest::parse(&canonical).expect("the canonical bytes parse");
    assert_eq!(again, m, "round trip");
    assert_eq!(again.to_bytes(), canonical, "to_bytes is not a fixpoint");
});
