//! warp's archive path rules (`warp_format::paths`) on any path.
//!
//! The input's first byte picks a prefix (none, `usr/local/`, `opt/`,
//! `usr/`, …) so that the fuzzer reaches the allowed places quickly; the rest
//! is the path, as UTF-8 (lossily).
//!
//! Asserts:
//! - `check_shape` accepts exactly the relative paths of 1..=4096 bytes
//!   without NUL, CR or LF whose components are neither empty, `.` nor `..`
//!   (a reference written here), and of those `check_place` exactly the ones under
//!   `usr/local/` or `opt/` (or those roots, and `usr`, as directories);
//! - a path that passes `check` stays inside the root it is joined to:
//!   every component is a normal name by the standard library's own reading,
//!   and the joined path starts with the root;
//! - `parent` is the path up to its last `/`, and a checked path's parent is
//!   a checked directory or a directory the image owns;
//! - errors are messages, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};
use warp_format::paths;

const PREFIXES: &[&str] = &[
    "",
    "usr/local/",
    "opt/",
    "usr/",
    "usr/local",
    "opt",
    "usr",
    "usr/local/bin/",
    "/",
];

fuzz_target!(|input: &[u8]| {
    let Some((&first, rest)) = input.split_first() else {
        return;
    };
    let prefix = PREFIXES[usize::from(first >> 1) % PREFIXES.len()];
    let is_dir = first & 1 == 1;
    let path = format!("{prefix}{}", String::from_utf8_lossy(rest));

    let shape = paths::check_shape(&path);
    assert_eq!(
        shape.is_ok(),
        shape_ok(&path),
        "check_shape({path:?}) = {shape:?}"
    );
    let place = paths::check_place(&path, is_dir);
    // `check_place` is defined on paths of the right shape.
    if shape.is_ok() {
        assert_eq!(
            place.is_ok(),
            place_ok(&path, is_dir),
            "check_place({path:?}) = {place:?}"
        );
    }
    let both = paths::check(&path, is_dir);
    assert_eq!(both.is_ok(), shape.is_ok() && place.is_ok());
    for e in [&shape, &place, &both] {
        if let Err(msg) = e {
            assert!(!msg.is_empty());
        }
    }

    let parent = paths::parent(&path);
    match path.rfind('/') {
        Some(i) => assert_eq!(parent, &path[..i]),
        None => assert_eq!(parent, ""),
    }
    assert_eq!(
        paths::is_shared_dir(&path),
        path.is_empty() || ["usr/local", "opt", "usr"].contains(&path.as_str())
    );

    if both.is_ok() {
        assert!(
            Path::new(&path)
                .components()
                .all(|c| matches!(c, Component::Normal(_))),
            "{path:?} has a component that is not a plain name"
        );
        let root = Path::new("/var/lib/warp/root");
        let joined = root.join(&path);
        assert!(joined.starts_with(root) && joined != root);
        assert!(
            paths::is_shared_dir(parent) || paths::check(parent, true).is_ok(),
            "{path:?}: its directory {parent:?} is neither the image's nor allowed"
        );
    }
});

fn shape_ok(path: &str) -> bool {
    !path.is_empty()
        && path.len() <= 4096
        && !path.starts_with('/')
        && !path.bytes().any(|b| matches!(b, 0 | b'\n' | b'\r'))
        && path.split('/').all(|c| !matches!(c, "" | "." | ".."))
}

fn place_ok(path: &str, is_dir: bool) -> bool {
    let under = |root: &str| path.starts_with(&format!("{root}/"));
    under("usr/local") || under("opt") || (is_dir && ["usr/local", "opt", "usr"].contains(&path))
}
