//! When device discovery has settled (`docs/boot-contract.md`, "Finding
//! devices"): the pure half of the rule, which stage 1 (`devices.rs`) applies
//! to what it reads from `/sys`.

/// No new block device for this long. Short, because the kernel finishes its
/// asynchronous probing (SCSI/ATA scans) before it runs `/init`, and a disk's
/// partitions appear at the latest when stage 1 first opens the disk; what
/// still arrives late is USB and NVMe.
pub const SETTLE_IDLE_MS: u64 = 200;
/// USB storage that never becomes a block device (a LUN no built-in driver
/// takes, a failed scan) holds the settling no longer than this after the
/// last new device.
pub const SETTLE_USB_MAX_MS: u64 = 2500;

/// Whether discovery has settled `idle_ms` after the last new block device:
/// the quiet period has passed and no USB storage is still on its way
/// (`usb_pending` is asked only then: it reads `/sys`), or the USB cap has.
pub fn settled(idle_ms: u64, usb_pending: impl FnOnce() -> bool) -> bool {
    idle_ms >= SETTLE_IDLE_MS && (idle_ms >= SETTLE_USB_MAX_MS || !usb_pending())
}

/// The sysfs path from a USB storage driver to a disk, one level per
/// directory: `/sys/bus/usb/drivers/usb-storage/1-1:1.0/host6/target6:0:0/
/// 6:0:0:0/block` (the same below `uas`). At the last level, the SCSI device
/// is complete when it has `block`.
pub const SCSI_PATH_LEVELS: usize = 4;

/// Whether the entry `name` of the directory at `level` of that path is
/// followed: the bound interfaces of the driver (`1-1:1.0`, not `bind` or
/// `module`), the interface's SCSI host (`host6`), the host's targets
/// (`target6:0:0`, not `scsi_host`) and the target's SCSI devices
/// (`6:0:0:0`, not `power`).
pub fn follows(level: usize, name: &[u8]) -> bool {
    let prefix: &[u8] = match level {
        1 => b"host",
        2 => b"target",
        _ => b"",
    };
    // Not `contains`: its word-at-a-time search costs stage 1 bytes.
    #[allow(clippy::manual_contains)]
    let colon = name.iter().any(|&b| b == b':');
    name.starts_with(prefix) && (level == 1 || colon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_path_from_the_driver_to_the_scsi_devices() {
        let cases: &[(usize, &str, bool)] = &[
            (0, "2-1:1.0", true),
            (0, "1-1.4:1.0", true),
            (0, "bind", false),
            (0, "module", false),
            (0, "new_id", false),
            (0, "uevent", false),
            (1, "host6", true),
            (1, "ep_81", false),
            (1, "driver", false),
            (1, "power", false),
            (2, "target6:0:0", true),
            (2, "scsi_host", false),
            (2, "power", false),
            (3, "6:0:0:0", true),
            (3, "6:0:0:1", true),
            (3, "power", false),
            (3, "subsystem", false),
        ];
        for &(level, name, expected) in cases {
            assert_eq!(
                follows(level, name.as_bytes()),
                expected,
                "level {level}: {name}"
            );
        }
    }

    #[test]
    fn settles_after_the_quiet_period_unless_usb_storage_is_pending() {
        assert!(!settled(SETTLE_IDLE_MS - 1, || false));
        assert!(settled(SETTLE_IDLE_MS, || false));
        assert!(!settled(SETTLE_IDLE_MS, || true));
        assert!(!settled(SETTLE_USB_MAX_MS - 1, || true));
        assert!(settled(SETTLE_USB_MAX_MS, || true));
    }

    #[test]
    fn sysfs_is_not_read_during_the_quiet_period() {
        assert!(!settled(0, || panic!(
            "usb_pending asked before 200 ms of quiet"
        )));
    }
}
