//! warp's index parser (`warp_format::index::Index::parse`) on any bytes, and
//! the version order it relies on.
//!
//! Asserts, for every index it accepts:
//! - it passes `check` again; every entry's name, version, constraints,
//!   archive file name (a plain `*.warp` name, no `/`, not hidden) and sha256
//!   are valid, and no (name, version) is listed twice;
//! - round trip: the canonical bytes (`to_bytes`, packages sorted by name
//!   then version) parse to the same packages in that order, and writing
//!   them again gives the same bytes (sorted: never a (name, version)
//!   twice, though two spellings of one version, `1.0` and `1.00`, may be);
//! - `best(name>=v)`, `best(name<v)`, `best(name=v)`, `best(name)` return
//!   an entry of that name the constraint allows, and no allowed entry has a
//!   higher version;
//! - version comparison is a total order on the index's versions
//!   (antisymmetric, transitive, consistent with equality of the parts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::cmp::Ordering;
use warp_format::index::Index;
use warp_format::version::{self, Constraint, Op};

fuzz_target!(|bytes: &[u8]| {
    let index = match Index::parse(bytes) {
        Ok(i) => i,
        Err(e) => {
            assert!(!e.is_empty());
            return;
        }
    };
    index.check().expect("a parsed index passes check");
    for e in &index.packages {
        e.check().expect("each entry passes check");
        assert!(warp_format::valid_name(&e.name));
        assert!(version::valid(&e.version));
        assert!(warp_format::is_sha256_hex(&e.sha256));
        assert!(e.file.ends_with(".warp") && !e.file.starts_with('.'));
        assert!(!e.file.contains('/') && !e.file.contains('\0'));
        for c in e.depends.iter().chain(&e.conflicts) {
            let parsed = Constraint::parse(c).expect("a checked constraint parses");
            assert_eq!(Constraint::parse(&parsed.to_string()), Ok(parsed));
        }
    }

    let canonical = index.to_bytes();
    let again = Index::parse(&canonical).expect("the canonical bytes parse");
    assert_eq!(again.to_bytes(), canonical, "to_bytes is not a fixpoint");
    assert_eq!(again.packages.len(), index.packages.len());
    for w in again.packages.windows(2) {
        let order = w[0]
            .name
            .cmp(&w[1].name)
            .then_with(|| version::compare(&w[0].version, &w[1].version));
        assert_ne!(order, Ordering::Greater, "not sorted");
        // Equal only for two spellings of one version (`1.0`, `1.00`), which
        // `check` lets through: it refuses the same string twice.
        if order == Ordering::Equal {
            assert_ne!(w[0].version, w[1].version, "{} listed twice", w[0].id());
        }
    }
    for e in &index.packages {
        assert!(
            again.packages.contains(e),
            "{} lost in the round trip",
            e.id()
        );
    }

    // The version order, on every pair and triple (bounded).
    let versions: Vec<&str> = index
        .packages
        .iter()
        .take(12)
        .map(|e| e.version.as_str())
        .collect();
    for a in &versions {
        assert_eq!(version::compare(a, a), Ordering::Equal);
        for b in &versions {
            let ab = version::compare(a, b);
            assert_eq!(ab, version::compare(b, a).reverse(), "{a} vs {b}");
            for c in &versions {
                let (bc, ac) = (version::compare(b, c), version::compare(a, c));
                if ab != Ordering::Greater && bc != Ordering::Greater {
                    let strict = ab == Ordering::Less || bc == Ordering::Less;
                    let want = if strict {
                        Ordering::Less
                    } else {
                        Ordering::Equal
                    };
                    assert_eq!(ac, want, "{a} <= {b} <= {c}: not transitive");
                }
            }
        }
    }

    for e in index.packages.iter().take(8) {
        for (op, text) in [
            (Op::Any, e.name.clone()),
            (Op::Ge, format!("{}>={}", e.name, e.version)),
            (Op::Lt, format!("{}<{}", e.name, e.version)),
            (Op::Eq, format!("{}={}", e.name, e.version)),
        ] {
            let c = Constraint::parse(&text).expect("a constraint from an entry parses");
            assert_eq!(c.op, op);
            let allowed: Vec<_> = index
                .versions(&e.name)
                .filter(|x| c.allows(&x.version))
                .collect();
            match index.best(&c) {
                None => assert!(allowed.is_empty(), "best({text}) found nothing"),
                Some(b) => {
                    assert_eq!(b.name, e.name);
                    assert!(c.allows(&b.version));
                    for x in &allowed {
                        assert_ne!(
                            version::compare(&x.version, &b.version),
                            Ordering::Greater,
                            "best({text}) is {} but {} is allowed",
                            b.version,
                            x.version
                        );
                    }
                }
            }
            // An entry always satisfies name, name>=its version, name=its version.
            if op != Op::Lt {
                assert!(c.allows(&e.version), "{text} refuses {}", e.version);
            } else {
                assert!(!c.allows(&e.version));
            }
        }
    }
});
