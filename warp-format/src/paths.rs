//! Where a package may put things, and what a path in an archive may look
//! like. The image owns everything outside `usr/local/` and `opt/` (and ships
//! nothing inside them), so a package that stays inside only ever creates or
//! deletes files the overlay's upper layer alone holds: no whiteouts over
//! image files, no EXDEV, and a new image can never clash with a package.
//!
//! Paths are relative to the root (`usr/local/bin/hello`), `/`-separated.

/// The directories a package may install under (each is itself allowed as a
/// directory entry).
pub const ROOTS: [&str; 2] = ["usr/local", "opt"];

/// The directories above the roots: an archive may list `usr` as a directory
/// (it exists in the image; warp neither creates nor removes it).
pub const ABOVE_ROOTS: [&str; 1] = ["usr"];

/// The longest path warp accepts, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;

/// Checks a path's shape: relative, not empty, no `.`/`..`/empty component,
/// no NUL or newline, at most [`MAX_PATH`] bytes. The error says what is
/// wrong.
pub fn check_shape(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("an empty path".into());
    }
    if path.len() > MAX_PATH {
        return Err(format!("a path longer than {MAX_PATH} bytes"));
    }
    if path.starts_with('/') {
        return Err(format!("`{path}` is absolute"));
    }
    if path.contains(['\0', '\n', '\r']) {
        return Err(format!(
            "`{}` contains a NUL or line break",
            path.escape_debug()
        ));
    }
    for c in path.split('/') {
        match c {
            "" => {
                return Err(format!(
                    "`{path}` has an empty component (`//` or a trailing `/`)"
                ));
            }
            "." => return Err(format!("`{path}` has a `.` component")),
            ".." => return Err(format!("`{path}` has a `..` component")),
            _ => {}
        }
    }
    Ok(())
}

/// Whether `path` (of the right shape) lies where packages may install:
/// under one of [`ROOTS`], or is a root (or [`ABOVE_ROOTS`]) and a directory.
pub fn check_place(path: &str, is_dir: bool) -> Result<(), String> {
    let inside = ROOTS.iter().any(|r| {
        path.strip_prefix(r)
            .is_some_and(|rest| rest.starts_with('/'))
    });
    let is_root = ROOTS.contains(&path) || ABOVE_ROOTS.contains(&path);
    if inside || (is_root && is_dir) {
        Ok(())
    } else if is_root {
        Err(format!("`{path}` must be a directory"))
    } else {
        Err(format!(
            "`{path}` is outside /usr/local and /opt, where packages install (the image owns the rest)"
        ))
    }
}

/// [`check_shape`] then [`check_place`].
pub fn check(path: &str, is_dir: bool) -> Result<(), String> {
    check_shape(path)?;
    check_place(path, is_dir)
}

/// The parent of a relative path (`""` for a top-level name).
pub fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

/// Whether `path` is a root, above the roots, or the top (`""`): a directory
/// a package uses but never owns.
pub fn is_shared_dir(path: &str) -> bool {
    path.is_empty() || ROOTS.contains(&path) || ABOVE_ROOTS.contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let ok = [
            ("usr/local/bin/hello", false),
            ("usr/local/etc/hello.conf", false),
            ("opt/tool/lib/x.so", false),
            ("usr/local", true),
            ("opt", true),
            ("usr", true),
            ("usr/local/bin", true),
        ];
        for (p, d) in ok {
            assert_eq!(check(p, d), Ok(()), "{p}");
        }
        let bad = [
            ("", false),
            ("/usr/local/bin/x", false),
            ("usr/local/../bin/sh", false),
            ("usr/local/./x", false),
            ("usr/local//x", false),
            ("usr/local/x/", false),
            ("usr/local/x\0y", false),
            ("usr/local/x\ny", false),
            ("usr/bin/x", false),
            ("etc/passwd", false),
            ("usr/localx/y", false),
            ("optx", true),
            ("opt", false),
            ("usr", false),
            ("var/lib/warp/db", false),
            ("bin", true),
        ];
        for (p, d) in bad {
            assert!(check(p, d).is_err(), "{p:?} accepted");
        }
        assert!(check(&format!("opt/{}", "a".repeat(MAX_PATH)), false).is_err());
        assert_eq!(parent("usr/local/bin/x"), "usr/local/bin");
        assert_eq!(parent("opt"), "");
    }
}
