//! Errno names for error messages (`ENOENT`, not `os error 2`): rustix without
//! `std` only prints numbers, and a user reading a boot failure needs the name.

/// The symbolic name of an errno value stage 1 can meet, or `None`.
pub fn name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        1 => "EPERM",
        2 => "ENOENT",
        4 => "EINTR",
        5 => "EIO",
        6 => "ENXIO",
        7 => "E2BIG",
        8 => "ENOEXEC",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        15 => "ENOTBLK",
        16 => "EBUSY",
        17 => "EEXIST",
        18 => "EXDEV",
        19 => "ENODEV",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        23 => "ENFILE",
        24 => "EMFILE",
        26 => "ETXTBSY",
        27 => "EFBIG",
        28 => "ENOSPC",
        30 => "EROFS",
        31 => "EMLINK",
        36 => "ENAMETOOLONG",
        38 => "ENOSYS",
        39 => "ENOTEMPTY",
        40 => "ELOOP",
        61 => "ENODATA",
        74 => "EBADMSG",
        75 => "EOVERFLOW",
        95 => "EOPNOTSUPP",
        110 => "ETIMEDOUT",
        117 => "EUCLEAN",
        123 => "ENOMEDIUM",
        124 => "EMEDIUMTYPE",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_common_errnos() {
        assert_eq!(super::name(2), Some("ENOENT"));
        assert_eq!(super::name(123), Some("ENOMEDIUM"));
        assert_eq!(super::name(9999), None);
    }
}
