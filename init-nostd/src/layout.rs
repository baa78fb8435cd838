//! Stage 1's fixed paths, as C-string constants: the overlay's upper layer
//! (on the data partition or in RAM), the `k1os.toram` copy, and the paths
//! `boot`'s messages spell out. Literals cost less code than paths joined at
//! run time (stage 1 has a size budget); each is checked at compile time
//! against the contract's parts it is made of, so `contract.rs` stays the one
//! source of every path.

use core::ffi::CStr;
use k1os_contract::contract::{self, cstr};

use crate::text::is_concat;

/// Where the overlay's upper layer lives: on the data partition or in a tmpfs.
pub struct Upper {
    /// `/run/k1os/data` or `/run/k1os/ram`.
    pub root: &'static CStr,
    /// `<root>/upper` and `<root>/work`.
    pub dirs: [&'static CStr; 2],
    /// The overlay's options with them. `index=off`: with an index, a replaced
    /// system.squashfs fails overlayfs' origin check on a persistent upper.
    pub overlay: &'static CStr,
}

pub const DATA_UPPER: Upper = Upper {
    root: cstr::RUN_DATA,
    dirs: [c"/run/k1os/data/upper", c"/run/k1os/data/work"],
    overlay: c"lowerdir=/run/k1os/lower,upperdir=/run/k1os/data/upper,workdir=/run/k1os/data/work,index=off",
};
pub const RAM_UPPER: Upper = Upper {
    root: cstr::RUN_RAM,
    dirs: [c"/run/k1os/ram/upper", c"/run/k1os/ram/work"],
    overlay: c"lowerdir=/run/k1os/lower,upperdir=/run/k1os/ram/upper,workdir=/run/k1os/ram/work,index=off",
};

/// The image's copy with `k1os.toram`.
pub const TORAM_IMAGE: &CStr = c"/run/k1os/toram/image";

// The constants above are the contract's paths put together.
const _: () = {
    let lower = contract::RUN_LOWER.as_bytes();
    let (upper, work) = (
        contract::DATA_UPPER_DIR.as_bytes(),
        contract::DATA_WORK_DIR.as_bytes(),
    );
    let mut i = 0;
    while i < 2 {
        let u = if i == 0 { &DATA_UPPER } else { &RAM_UPPER };
        let root = u.root.to_bytes();
        assert!(is_concat(u.dirs[0].to_bytes(), &[root, b"/", upper]));
        assert!(is_concat(u.dirs[1].to_bytes(), &[root, b"/", work]));
        let options: [&[u8]; 11] = [
            b"lowerdir=",
            lower,
            b",upperdir=",
            root,
            b"/",
            upper,
            b",workdir=",
            root,
            b"/",
            work,
            b",index=off",
        ];
        assert!(is_concat(u.overlay.to_bytes(), &options));
        i += 1;
    }
    assert!(is_concat(
        TORAM_IMAGE.to_bytes(),
        &[contract::RUN_TORAM.as_bytes(), b"/image"]
    ));
};

// `boot`'s phase lines spell these out in their format strings: keep them equal.
const _: () = {
    assert!(is_concat(
        b"/run/k1os/lower",
        &[contract::RUN_LOWER.as_bytes()]
    ));
    assert!(is_concat(
        b"/run/k1os/data",
        &[contract::RUN_DATA.as_bytes()]
    ));
    assert!(is_concat(b"/run/k1os/ram", &[contract::RUN_RAM.as_bytes()]));
    assert!(is_concat(b"/newroot", &[contract::NEW_ROOT.as_bytes()]));
};
