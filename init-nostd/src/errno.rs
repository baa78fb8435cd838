//! Errno names for error messages (`ENOENT`, not `os error 2`): rustix without
//! `std` only prints numbers, and a user reading a boot failure needs the name.

/// The errno values stage 1 can meet, in the order of [`NAMES`].
const NUMBERS: [u8; 38] = [
    1, 2, 4, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 26, 27, 28, 30, 31,
    36, 38, 39, 40, 61, 74, 75, 95, 110, 117, 123, 124,
];
/// Their names, each followed by a space. (Two packed tables rather than a
/// `match` or a table of `&str`: a few hundred bytes less in stage 1.)
const NAMES: &str = "EPERM ENOENT EINTR EIO ENXIO E2BIG ENOEXEC EBADF EAGAIN ENOMEM EACCES ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ETXTBSY EFBIG ENOSPC EROFS EMLINK ENAMETOOLONG ENOSYS ENOTEMPTY ELOOP ENODATA EBADMSG EOVERFLOW EOPNOTSUPP ETIMEDOUT EUCLEAN ENOMEDIUM EMEDIUMTYPE ";

const _: () = {
    // One name per number.
    let mut spaces = 0;
    let mut i = 0;
    while i < NAMES.len() {
        if NAMES.as_bytes()[i] == b' ' {
            spaces += 1;
        }
        i += 1;
    }
    assert!(spaces == NUMBERS.len());
};

/// The symbolic name of an errno value stage 1 can meet, or `None`.
pub fn name(errno: i32) -> Option<&'static str> {
    let wanted = NUMBERS.iter().position(|&n| i32::from(n) == errno)?;
    let mut start = 0;
    let mut index = 0;
    for (end, &b) in NAMES.as_bytes().iter().enumerate() {
        if b == b' ' {
            if index == wanted {
                return NAMES.get(start..end);
            }
            index += 1;
            start = end + 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_common_errnos() {
        assert_eq!(super::name(2), Some("ENOENT"));
        assert_eq!(super::name(123), Some("ENOMEDIUM"));
        assert_eq!(super::name(1), Some("EPERM"));
        assert_eq!(super::name(124), Some("EMEDIUMTYPE"));
        assert_eq!(super::name(36), Some("ENAMETOOLONG"));
        assert_eq!(super::name(9999), None);
        assert_eq!(super::name(0), None);
        assert_eq!(super::name(-2), None);
        assert_eq!(super::name(256 + 2), None);
    }

    /// Every entry against the kernel's numbering (`asm-generic/errno-base.h`, `errno.h`).
    #[test]
    fn every_name() {
        let expected = [
            (1, "EPERM"),
            (2, "ENOENT"),
            (4, "EINTR"),
            (5, "EIO"),
            (6, "ENXIO"),
            (7, "E2BIG"),
            (8, "ENOEXEC"),
            (9, "EBADF"),
            (11, "EAGAIN"),
            (12, "ENOMEM"),
            (13, "EACCES"),
            (15, "ENOTBLK"),
            (16, "EBUSY"),
            (17, "EEXIST"),
            (18, "EXDEV"),
            (19, "ENODEV"),
            (20, "ENOTDIR"),
            (21, "EISDIR"),
            (22, "EINVAL"),
            (23, "ENFILE"),
            (24, "EMFILE"),
            (26, "ETXTBSY"),
            (27, "EFBIG"),
            (28, "ENOSPC"),
            (30, "EROFS"),
            (31, "EMLINK"),
            (36, "ENAMETOOLONG"),
            (38, "ENOSYS"),
            (39, "ENOTEMPTY"),
            (40, "ELOOP"),
            (61, "ENODATA"),
            (74, "EBADMSG"),
            (75, "EOVERFLOW"),
            (95, "EOPNOTSUPP"),
            (110, "ETIMEDOUT"),
            (117, "EUCLEAN"),
            (123, "ENOMEDIUM"),
            (124, "EMEDIUMTYPE"),
        ];
        for (n, name) in expected {
            assert_eq!(super::name(n), Some(name), "{n}");
        }
        assert_eq!(expected.len(), super::NUMBERS.len());
    }
}
