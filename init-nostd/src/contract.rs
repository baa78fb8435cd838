//! Names, paths, defaults and log markers of the boot contract
//! (`docs/boot-contract.md`).
//!
//! Every text constant is a `&str`, whatever reads it: the host uses it as is,
//! stage 1 takes `.as_bytes()` (free, also in `const` code) and the C-string
//! forms of the paths in [`cstr`].

/// ISO 9660 volume ID of the boot media, and the label stage 1 tries first.
pub const MEDIA_LABEL: &str = "K1OS";
/// Label of the persistent data partition (ext2/3/4, mounted as ext4).
pub const DATA_LABEL: &str = "K1OS-DATA";

/// Root image on the media (`k1os.image` default).
pub const DEFAULT_IMAGE: &str = "/system.squashfs";
/// Stage 2 (`init=` default).
pub const DEFAULT_INIT: &str = "/sbin/init";
/// Seconds to wait for media and data devices (`k1os.timeout` default).
pub const DEFAULT_TIMEOUT_S: u32 = 15;
/// Size of the tmpfs upper layer in RAM mode (`k1os.ramsize` default).
pub const DEFAULT_RAMSIZE: &str = "50%";

/// Overlay upper and work directories at the root of the data partition: the
/// original K1OS layout, so existing data partitions keep working.
pub const DATA_UPPER_DIR: &str = "upper";
pub const DATA_WORK_DIR: &str = "work";

/// Where stage 2 finds what stage 1 set up (the same bytes as [`cstr`], which
/// stage 1 passes to system calls).
pub const RUN_DIR: &str = text(cstr::RUN_DIR);
pub const RUN_MEDIA: &str = text(cstr::RUN_MEDIA);
pub const RUN_LOWER: &str = text(cstr::RUN_LOWER);
pub const RUN_DATA: &str = text(cstr::RUN_DATA);
pub const RUN_RAM: &str = text(cstr::RUN_RAM);
/// `toram` copy of the image (a tmpfs of its own, so the media can go).
pub const RUN_TORAM: &str = text(cstr::RUN_TORAM);
/// `key=value` lines: mode, media, data, image, init, timings ([`boot_file`]).
pub const RUN_BOOT_FILE: &str = text(cstr::RUN_BOOT_FILE);
/// Where the overlay root is assembled inside the initramfs before `switch_root`.
pub const NEW_ROOT: &str = text(cstr::NEW_ROOT);
/// In the initramfs: the dm-verity parameters of the one root image it
/// trusts (a [`verity::Params`](crate::verity::Params) line), written by
/// `host-tools` when it packs an initramfs for an image. Without it stage 1
/// mounts the image unverified, with a warning.
pub const INITRAMFS_VERITY: &str = text(cstr::INITRAMFS_VERITY);
/// In the initramfs: the kernel modules stage 1 loads before it looks for
/// devices (for a kernel whose drivers are modules, such as Debian's),
/// uncompressed, one `<name>.ko` file each, and [`INITRAMFS_MODULE_LIST`].
pub const INITRAMFS_MODULES: &str = text(cstr::INITRAMFS_MODULES);
/// In [`INITRAMFS_MODULES`]: the file names of the modules, one per line
/// (`\n`), in load order (every module after the modules it needs). Absent
/// when the initramfs has no modules.
pub const INITRAMFS_MODULE_LIST: &str = text(cstr::INITRAMFS_MODULE_LIST);
/// The list's name inside [`INITRAMFS_MODULES`].
pub const MODULE_LIST_NAME: &str = "load.list";
/// The longest list stage 1 reads (it reads the file into a buffer of this
/// size; `host-tools` refuses to pack a longer one).
pub const MODULE_LIST_MAX: usize = 2048;
/// The device-mapper name of the verity device stage 1 mounts the image
/// through (its node is `/dev/dm-<minor>`: there is no udev for
/// `/dev/mapper/` links).
pub const VERITY_DEVICE: &str = "k1os-root";

/// The paths above as C strings, for stage 1's system calls.
pub mod cstr {
    use core::ffi::CStr;

    pub const RUN_DIR: &CStr = c"/run/k1os";
    pub const RUN_MEDIA: &CStr = c"/run/k1os/media";
    pub const RUN_LOWER: &CStr = c"/run/k1os/lower";
    pub const RUN_DATA: &CStr = c"/run/k1os/data";
    pub const RUN_RAM: &CStr = c"/run/k1os/ram";
    pub const RUN_TORAM: &CStr = c"/run/k1os/toram";
    pub const RUN_BOOT_FILE: &CStr = c"/run/k1os/boot";
    pub const NEW_ROOT: &CStr = c"/newroot";
    pub const INITRAMFS_VERITY: &CStr = c"/verity";
    pub const INITRAMFS_MODULES: &CStr = c"/lib/modules";
    pub const INITRAMFS_MODULE_LIST: &CStr = c"/lib/modules/load.list";
}

/// A C-string constant as `&str` (they are ASCII; checked at compile time).
const fn text(path: &'static core::ffi::CStr) -> &'static str {
    match path.to_str() {
        Ok(s) => s,
        Err(_) => panic!("contract paths are ASCII"),
    }
}

/// Every stage-1 log line starts with this, on the console and in `/dev/kmsg`.
pub const LOG_PREFIX: &str = "k1os-init: ";
/// Logged (followed by the stage-2 path) right before `execve` of stage 2.
pub const MARKER_EXEC: &str = "k1os-init: exec ";
/// Printed by stage 2 once its services are started.
pub const MARKER_STAGE2_READY: &str = "k1os: stage 2 ready";
/// The kernel's line right before it runs `/init`.
pub const MARKER_KERNEL_RUN_INIT: &str = "Run /init as init process";
/// Prefix of stage 1's fatal-error line.
pub const MARKER_FATAL: &str = "k1os-init: FATAL: ";

/// Kernel command-line keys.
pub mod key {
    pub const MODE: &str = "k1os.mode";
    pub const DATA: &str = "k1os.data";
    pub const MEDIA: &str = "k1os.media";
    pub const IMAGE: &str = "k1os.image";
    pub const TIMEOUT: &str = "k1os.timeout";
    pub const TORAM: &str = "k1os.toram";
    pub const VERITY: &str = "k1os.verity";
    pub const RAMSIZE: &str = "k1os.ramsize";
    pub const DEBUG: &str = "k1os.debug";
    pub const ONFAIL: &str = "k1os.onfail";
    pub const INIT: &str = "init";
    pub const QUIET: &str = "quiet";
    /// The original K1OS spellings: `nopersist` = `k1os.mode=ram`,
    /// `persist=/dev/…` = `k1os.data=/dev/…`.
    pub const LEGACY_NOPERSIST: &str = "nopersist";
    pub const LEGACY_PERSIST: &str = "persist";
    /// Prefix that makes a key ours (unknown ones are reported).
    pub const NAMESPACE: &str = "k1os.";
}

/// Keys of `/run/k1os/boot`.
pub mod boot_file {
    pub const MODE: &str = "mode";
    pub const MEDIA: &str = "media";
    pub const DATA: &str = "data";
    pub const IMAGE: &str = "image";
    pub const INIT: &str = "init";
    /// The root hash the image was verified with, or `off` (`k1os.verity=off`)
    /// or `none` (the initramfs trusts no image).
    pub const VERITY: &str = "verity";
    /// Prefix of the per-phase timing keys (`time_us.<phase>`).
    pub const TIME_PREFIX: &str = "time_us.";
}

/// Stage 1's phases, in boot order. Each is logged once as
/// `k1os-init: <phase> (+<µs since start> us): <detail>`, and its time is
/// written to `/run/k1os/boot` as `time_us.<phase>=<µs>` (all but
/// `switch_root`, which comes after the file is written). The line is written
/// by [`write_head`](phase::write_head) (stage 1, the benchmark floor) and
/// read by [`parse_line`](phase::parse_line) (the benchmark's timeline), so
/// the two cannot disagree.
pub mod phase {
    use super::LOG_PREFIX;
    use ufmt::{uWrite, uwrite};

    /// `/proc`, `/sys`, `/dev`, `/run` mounted.
    pub const EARLY: &str = "early";
    /// The boot media mounted and the image found on it.
    pub const MEDIA: &str = "media";
    /// The image copied to RAM (`k1os.toram`).
    pub const TORAM: &str = "toram";
    /// The image attached to a loop device and mounted.
    pub const IMAGE: &str = "image";
    /// The data partition mounted (persistent mode).
    pub const DATA: &str = "data";
    /// The tmpfs upper layer mounted (RAM mode).
    pub const RAM: &str = "ram";
    /// The overlay root assembled and stage 2 checked.
    pub const OVERLAY: &str = "overlay";
    /// `/dev /proc /sys /run` moved into the new root. Then the initramfs is
    /// emptied, the root switched and stage 2 executed ([`MARKER_EXEC`](super::MARKER_EXEC)).
    pub const SWITCH_ROOT: &str = "switch_root";
    /// All phases in order, for parsers.
    pub const ALL: &[&str] = &[EARLY, MEDIA, TORAM, IMAGE, DATA, RAM, OVERLAY, SWITCH_ROOT];

    /// Writes what follows [`LOG_PREFIX`] in phase `name`'s line, up to its
    /// detail: `<name> (+<us> us): `. (The prefix is the log writer's, common
    /// to every line.)
    pub fn write_head<W: uWrite + ?Sized>(w: &mut W, name: &str, us: u64) -> Result<(), W::Error> {
        uwrite!(w, "{} (+{} us): ", name, us)
    }

    /// A phase line, as [`parse_line`] read it.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Line<'a> {
        /// The phase, one of [`ALL`].
        pub name: &'static str,
        /// The `(+<µs> us)`: µs since stage 1 started, by its own clock.
        /// `None` when the line has none (the busybox reference used by the
        /// benchmark writes `k1os-init: <phase>: <detail>`).
        pub us: Option<u64>,
        /// What follows `: `.
        pub detail: &'a str,
    }

    /// Reads `k1os-init: <phase> (+<µs> us): <detail>` (or, without a time,
    /// `k1os-init: <phase>: <detail>`); `None` for any other line.
    pub fn parse_line(line: &str) -> Option<Line<'_>> {
        let rest = line.strip_prefix(LOG_PREFIX)?;
        let name = ALL.iter().copied().find(|p| {
            rest.strip_prefix(p)
                .is_some_and(|after| after.starts_with(':') || after.starts_with(" (+"))
        })?;
        let after = rest.get(name.len()..)?;
        let (us, tail) = match after.strip_prefix(" (+") {
            Some(inner) => {
                let (digits, tail) = inner.split_once(" us)")?;
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (Some(digits.parse().ok()?), tail)
            }
            None => (None, after),
        };
        let detail = tail.strip_prefix(':')?;
        Some(Line {
            name,
            us,
            detail: detail.strip_prefix(' ').unwrap_or(detail),
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::fmt::tests::Out;

        #[test]
        fn written_lines_parse_back() {
            for &name in ALL {
                for us in [0, 1, 103_889, u64::MAX] {
                    let mut out = Out(LOG_PREFIX.into());
                    let _ = write_head(&mut out, name, us);
                    out.0.push_str("/dev/sr0 (iso9660 \"K1OS\")");
                    assert_eq!(
                        parse_line(&out.0),
                        Some(Line {
                            name,
                            us: Some(us),
                            detail: "/dev/sr0 (iso9660 \"K1OS\")"
                        }),
                        "{}",
                        out.0
                    );
                }
            }
        }

        #[test]
        fn the_format() {
            let mut out = Out(String::new());
            let _ = write_head(&mut out, MEDIA, 42);
            assert_eq!(out.0, "media (+42 us): ");
        }

        #[test]
        fn lines_without_a_time() {
            assert_eq!(
                parse_line("k1os-init: overlay: /newroot"),
                Some(Line {
                    name: OVERLAY,
                    us: None,
                    detail: "/newroot"
                })
            );
            assert_eq!(
                parse_line("k1os-init: ram:"),
                Some(Line {
                    name: RAM,
                    us: None,
                    detail: ""
                })
            );
        }

        #[test]
        fn other_lines_are_not_phases() {
            for other in [
                "k1os-init: mediax (+1 us): x",
                "k1os-init: media /dev/sr0 mounted",
                "k1os-init: media (+x us): y",
                "k1os-init: media (+ us): y",
                "k1os-init: media (+-1 us): y",
                "k1os-init: media (+99999999999999999999 us): y",
                "k1os-init: media (+1 us) y",
                "k1os-init: exec /sbin/init",
                "k1os-init: FATAL: find the boot media: …",
                "k1os-init: ram",
                "media (+1 us): no prefix",
                "",
            ] {
                assert_eq!(parse_line(other), None, "{other:?}");
            }
        }
    }
}
