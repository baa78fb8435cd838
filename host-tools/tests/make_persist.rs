//! `make-persist` on a block device that is in use is refused, even with
//! `--yes`, naming the mount, and the device is left as it was.
//!
//! The device is the test's own: a loop device over a scratch ext4 image,
//! mounted read-only on a scratch directory, both undone on drop. So the
//! check always has something to refuse, and nothing of the host is at stake
//! (at worst a scratch image would be erased). It needs root and loop
//! devices, as `make test` has.

use std::path::{Path, PathBuf};

use host_tools::hash::sha256_file;
use host_tools::run::Cmd;

/// A loop device over an image, mounted read-only; unmounted and detached
/// when dropped.
struct MountedLoop {
    device: String,
    mount_point: PathBuf,
    mounted: bool,
}

impl MountedLoop {
    fn new(image: &Path, mount_point: &Path) -> MountedLoop {
        let device = Cmd::new("losetup")
            .args(["--find", "--show"])
            .arg(image)
            .read()
            .unwrap_or_else(|e| {
                panic!("making a loop device (this test needs root and /dev/loop-control): {e:#}")
            });
        let mut lo = MountedLoop {
            device: device.trim().to_string(),
            mount_point: mount_point.to_path_buf(),
            mounted: false,
        };
        Cmd::new("mount")
            .args(["-o", "ro"])
            .arg(&lo.device)
            .arg(mount_point)
            .run()
            .unwrap_or_else(|e| panic!("mounting {}: {e:#}", lo.device));
        lo.mounted = true;
        lo
    }
}

impl Drop for MountedLoop {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Cmd::new("umount").arg(&self.mount_point).run();
        }
        let _ = Cmd::new("losetup").arg("-d").arg(&self.device).run();
    }
}

#[test]
fn make_persist_refuses_a_mounted_block_device() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("disk.img");
    let mount_point = dir.path().join("mnt");
    std::fs::create_dir(&mount_point).unwrap();
    std::fs::File::create(&image)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "K1OS-TEST"])
        .arg(&image)
        .run()
        .unwrap();
    let before = sha256_file(&image).unwrap();

    let lo = MountedLoop::new(&image, &mount_point);
    // --yes: nobody is asked, so only the in-use check stands between the
    // command and the device.
    let out = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(["make-persist", "--yes", &lo.device])
        .stdin_null()
        .output_unchecked()
        .unwrap();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(out.code, Some(1), "make-persist {}:\n{text}", lo.device);
    for needle in [
        format!("{} (", lo.device),
        "is in use, refusing to touch it".to_string(),
        format!("is mounted on {}", mount_point.display()),
        "unmount it".to_string(),
    ] {
        assert!(text.contains(&needle), "`{needle}` not in:\n{text}");
    }
    drop(lo);
    assert_eq!(
        sha256_file(&image).unwrap(),
        before,
        "the device was left as it was"
    );
}
