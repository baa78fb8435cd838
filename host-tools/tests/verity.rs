//! dm-verity in QEMU (`docs/boot-contract.md`, "The verified image"): the
//! kernel (`build/kernel/bzImage`, qemu profile) and stage 1
//! (`build/initramfs.img`, built without `--image`) told to trust an image:
//! a copy of the initramfs with an archive holding only `/verity` appended
//! (`initramfs::verity_archive`; the kernel unpacks concatenated archives).
//!
//! - with the test media (`host_tools::testimg`, whose squashfs has its
//!   tree appended like the real image): a trusted image boots verified (the
//!   boot record says so), in RAM mode and with `k1os.toram`; another image
//!   (larger, smaller) and a damaged superblock are refused by stage 1 with
//!   the one message, then `k1os.onfail`; `k1os.verity=off` boots the
//!   modified image with the warning; an initramfs that trusts no image
//!   warns;
//! - with the real root filesystem (`build/system.squashfs`) and one test
//!   file added: a byte flipped in that file's data → stage 2 is reached,
//!   reading the file fails with EIO and the console says the media is
//!   damaged, naming the block; and the time stage 2 takes to read the
//!   whole image with and without verity.
//!
//! Serial logs are kept in `build/test-logs/verity_*.log`.
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{OrPanic, UnderTest, boot_value, exec_marker, power_off, start_console};
use host_tools::verity::{self, Verity};
use host_tools::vm::{BootLog, Console, Drive, KERNEL_PANIC, Machine};
use host_tools::{initramfs, rootfs, testimg};
use k1os_contract::contract::{self, boot_file};

/// Per boot. TCG boots take 3–8 s; a loaded machine can be much slower.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// One shell command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Stage 1's words for an image the initramfs does not trust (`dm.rs`).
const STEP: &str = "verify the root image";
const MISMATCH: &str = "not the image the initramfs trusts, or damaged";
/// The warning of an unverified boot.
const UNVERIFIED: &str = "k1os-init: the root image is not verified: ";
/// What the verity service says (`rootfs/sbin/k1os-verity-watch`).
const DAMAGED: &str = "k1os: verity: the boot media is damaged: block ";

/// The initramfs under test, trusting `v`, in `build/test-images/<name>/`.
fn trusting(v: &Verity, name: &str) -> PathBuf {
    let t = UnderTest::boot_files();
    let base = fs::read(&t.initrd).unwrap_or_else(|e| panic!("{}: {e}", t.initrd.display()));
    let archive = initramfs::verity_archive(v).or_panic();
    let out = common::scratch(name).join("initramfs.img");
    fs::write(&out, initramfs::concatenate(&base, &archive)).unwrap();
    out
}

/// The test media's image, trusted.
fn trusted_initrd() -> &'static Path {
    static INITRD: OnceLock<PathBuf> = OnceLock::new();
    INITRD.get_or_init(|| trusting(&common::test_media().verity, "verity-initrd"))
}

fn vm(initrd: &Path, iso: &Path, cmdline: &str) -> Machine {
    Machine::kernel(UnderTest::boot_files().kernel)
        .initrd(initrd)
        .append(cmdline)
        .drive(Drive::cdrom(iso))
}

fn boot(vm: &Machine, name: &str) -> BootLog {
    common::boot(vm, name, BOOT_TIMEOUT)
}

/// The test stage 2 ran to its end and powered off.
fn assert_reached_stage2(log: &BootLog) {
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(contract::MARKER_FATAL);
    log.assert_order(&exec_marker(), testimg::STAGE2_UP);
    log.assert_line(testimg::STAGE2_DONE);
    assert!(log.powered_off(), "{}", log.failure("no power-off"));
}

/// Stage 1 verified the image with `v`'s root hash: its image line names
/// the verity device and the hash, and so does the boot record.
#[track_caller]
fn assert_verified(log: &BootLog, v: &Verity) {
    let root = v.root_hex();
    log.assert_line_with_all(&["k1os-init: image (+", "/dev/dm-0 on /run/k1os/lower", &root]);
    let recorded = boot_value(log, boot_file::VERITY);
    assert_eq!(
        recorded,
        root,
        "{}",
        log.failure("the boot record's verity=")
    );
    log.assert_absent(UNVERIFIED);
}

/// Stage 1 refused the image with the one message and powered off
/// (`k1os.onfail=poweroff`), before stage 2.
#[track_caller]
fn assert_refused(log: &BootLog) {
    log.assert_exited();
    let fatal = log.assert_line_with_all(&[
        contract::MARKER_FATAL,
        STEP,
        contract::DEFAULT_IMAGE,
        MISMATCH,
    ]);
    assert_eq!(
        log.lines_with(contract::MARKER_FATAL).count(),
        1,
        "{}",
        log.failure(&format!("more than one fatal line after {fatal:?}"))
    );
    log.assert_absent(&exec_marker());
    log.assert_absent(testimg::STAGE2_UP);
    log.assert_absent(KERNEL_PANIC);
    assert!(log.powered_off(), "{}", log.failure("no power-off"));
}

/// An ISO 9660 `K1OS` holding `image` as `/system.squashfs`, in `dir`.
fn iso_of(image: &Path, dir: &Path) -> PathBuf {
    let iso = dir.join("k1os.iso");
    testimg::iso(image, &iso).or_panic();
    iso
}

/// The test media's image with bit 0 of byte `offset` flipped: a modified
/// copy, on its own ISO.
fn modified_media(name: &str, offset: u64) -> PathBuf {
    let dir = common::scratch(name);
    let image = dir.join("system.squashfs");
    fs::copy(&common::test_media().squashfs, &image).unwrap();
    verity::flip_bit(&image, offset).or_panic();
    iso_of(&image, &dir)
}

#[test]
fn a_trusted_image_boots_verified() {
    let m = common::test_media();
    let log = boot(&vm(trusted_initrd(), &m.iso, "k1os.mode=ram"), "verity_ram");
    assert_reached_stage2(&log);
    assert_verified(&log, &m.verity);
    log.assert_line_with_all(&[testimg::STAGE2_ROOT_LINE, "overlay"]);
}

#[test]
fn toram_verifies_the_ram_copy() {
    let m = common::test_media();
    let log = boot(
        &vm(trusted_initrd(), &m.iso, "k1os.mode=ram k1os.toram"),
        "verity_toram",
    );
    assert_reached_stage2(&log);
    log.assert_order("k1os-init: toram (+", "k1os-init: image (+");
    assert_verified(&log, &m.verity);
}

#[test]
fn another_image_is_refused() {
    // Larger (the tree the initramfs trusts lies inside its data) and smaller
    // (too small for the trusted table) than the trusted one, each a valid
    // squashfs with its own tree.
    for (name, extra) in [
        ("verity_larger_image", 300_000),
        ("verity_smaller_image", 0),
    ] {
        let dir = common::scratch(name);
        let tree = dir.join("tree");
        testimg::test_rootfs(&tree).or_panic();
        if extra > 0 {
            let data: Vec<u8> = (0..extra).map(|i: u32| (i * 13 % 241) as u8).collect();
            fs::write(tree.join("etc/extra"), data).unwrap();
        } else {
            fs::remove_file(tree.join("bin/busybox")).unwrap();
        }
        let image = dir.join("system.squashfs");
        let other = testimg::squashfs(&tree, &image).or_panic();
        let trusted = &common::test_media().verity;
        assert_ne!(other.root_hash, trusted.root_hash);
        assert_eq!(
            other.data_blocks > trusted.data_blocks,
            extra > 0,
            "{name}: sizes"
        );
        let log = boot(
            &vm(
                trusted_initrd(),
                &iso_of(&image, &dir),
                "k1os.mode=ram k1os.onfail=poweroff",
            ),
            name,
        );
        assert_refused(&log);
    }
}

#[test]
fn a_damaged_superblock_is_refused_and_boots_with_verity_off() {
    // Byte 8 is the squashfs superblock's mkfs_time: squashfs itself does
    // not notice, dm-verity does (block 0 fails its check).
    let iso = modified_media("verity_superblock", 8);
    let log = boot(
        &vm(trusted_initrd(), &iso, "k1os.mode=ram k1os.onfail=poweroff"),
        "verity_damaged_superblock",
    );
    assert_refused(&log);
    log.assert_line_with_all(&["device-mapper: verity:", "data block 0 is corrupted"]);

    let log = boot(
        &vm(trusted_initrd(), &iso, "k1os.mode=ram k1os.verity=off"),
        "verity_off_modified_image",
    );
    assert_reached_stage2(&log);
    log.assert_line(&format!("{UNVERIFIED}k1os.verity=off"));
    assert_eq!(boot_value(&log, boot_file::VERITY), "off");
    log.assert_line_with_all(&["k1os-init: image (+", "/dev/loop", "verity off"]);
    log.assert_absent("device-mapper: verity:");
}

#[test]
fn an_initramfs_that_trusts_no_image_warns() {
    let m = common::test_media();
    let t = UnderTest::boot_files();
    let log = boot(&vm(&t.initrd, &m.iso, "k1os.mode=ram"), "verity_untrusted");
    assert_reached_stage2(&log);
    log.assert_line(&format!("{UNVERIFIED}the initramfs trusts no image"));
    assert_eq!(boot_value(&log, boot_file::VERITY), "none");
}

// ---------------------------------------------------------------------------
// The real image

/// A test file added to the real image: incompressible (a sha256 chain), so
/// mksquashfs stores its four 128 KiB blocks as they are and the test can
/// find them in the image.
const PROBE_FILE: &str = "usr/share/k1os-verity-probe";
const PROBE_SIZE: usize = 512 * 1024;

fn probe_data() -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut out = Vec::with_capacity(PROBE_SIZE);
    let mut h: [u8; 32] = Sha256::digest(b"K1OS verity probe").into();
    while out.len() < PROBE_SIZE {
        out.extend_from_slice(&h);
        h = Sha256::digest(h).into();
    }
    out.truncate(PROBE_SIZE);
    out
}

/// The real image under test with [`PROBE_FILE`] added, packed by the real
/// packer (its tree appended), on an ISO; and where the probe's bytes are.
struct RealMedia {
    image: PathBuf,
    iso: PathBuf,
    verity: Verity,
    /// The offset of [`PROBE_FILE`]'s first byte in the image.
    probe_at: u64,
}

fn real_media() -> &'static RealMedia {
    static MEDIA: OnceLock<RealMedia> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let rootfs = UnderTest::with_rootfs().rootfs.expect("asked for");
        let dir = common::scratch("verity-real");
        let tree = dir.join("tree");
        host_tools::run::Cmd::new("unsquashfs")
            .args(["-no-progress", "-quiet", "-d"])
            .arg(&tree)
            .arg(&rootfs)
            .run()
            .or_panic();
        let probe = probe_data();
        fs::write(tree.join(PROBE_FILE), &probe).unwrap();
        let image = dir.join("system.squashfs");
        let v =
            rootfs::squashfs(&tree, &image, rootfs::Compression::Zstd, 1_767_225_600).or_panic();
        let bytes = fs::read(&image).unwrap();
        let probe_at = bytes
            .windows(64)
            .position(|w| w == &probe[..64])
            .expect("the probe's first block is stored uncompressed") as u64;
        assert_eq!(
            &bytes[probe_at as usize..probe_at as usize + PROBE_SIZE],
            &probe[..],
            "the probe is stored as one run of bytes"
        );
        let iso = iso_of(&image, &dir);
        RealMedia {
            image,
            iso,
            verity: v,
            probe_at,
        }
    })
}

/// The real kernel, stage 1 trusting `v`, and `iso`, to a shell.
fn real_boot(initrd: &Path, iso: &Path, cmdline: &str, name: &str) -> Console {
    let t = UnderTest::with_rootfs();
    let vm = Machine::kernel(t.kernel)
        .initrd(initrd)
        .append(cmdline)
        .drive(Drive::cdrom(iso));
    let mut c = start_console(&vm, name);
    common::wait_for_shell(&mut c, BOOT_TIMEOUT);
    c
}

#[test]
fn a_damaged_block_fails_its_reads_and_stage2_says_so() {
    let m = real_media();
    let dir = common::scratch("verity-damaged-block");
    let image = dir.join("system.squashfs");
    fs::copy(&m.image, &image).unwrap();
    // In the probe's third 128 KiB block, not on a 4 KiB boundary.
    let offset = m.probe_at + 300_000;
    verity::flip_bit(&image, offset).or_panic();
    let block = offset / verity::BLOCK;
    let iso = iso_of(&image, &dir);
    let initrd = trusting(&m.verity, "verity-damaged-block-initrd");

    let mut c = real_boot(&initrd, &iso, "k1os.mode=ram", "verity_damaged_block");
    let record = c.run_ok("cat /run/k1os/boot", COMMAND_TIMEOUT).or_panic();
    assert!(
        record
            .lines()
            .any(|l| l == format!("verity={}", m.verity.root_hex())),
        "{}",
        c.failure(&format!("the boot record:\n{record}"))
    );
    let status = c
        .run("k1os-service status verity", COMMAND_TIMEOUT)
        .or_panic();
    assert_eq!(status.status, 0, "{}", c.failure("the verity service"));

    // The kernel's lines reach the console while `cat` runs: its error goes
    // to a file and is shown once they are out, on a line of its own.
    let read = c
        .run_ok(
            &format!(
                "cat /{PROBE_FILE} > /dev/null 2> /tmp/cat.err; s=$?; sleep 2; \
                 echo \"cat: exit $s: $(cat /tmp/cat.err)\""
            ),
            COMMAND_TIMEOUT,
        )
        .or_panic();
    assert!(
        read.lines()
            .any(|l| l.starts_with("cat: exit 1: ") && l.ends_with("Input/output error")),
        "{}",
        c.failure(&format!(
            "reading the damaged file did not fail with EIO: {read:?}"
        ))
    );
    // Said while `cat` ran, or soon after (the service follows the log).
    let said = format!("{DAMAGED}{block} of {}", contract::DEFAULT_IMAGE);
    if !c.transcript().contains(&said) {
        c.wait_for(&said, COMMAND_TIMEOUT).or_panic();
    }
    // The rest of the image reads: only that block is lost.
    c.run_ok(
        "cat /bin/busybox /etc/os-release > /dev/null",
        COMMAND_TIMEOUT,
    )
    .or_panic();
    power_off(&mut c, BOOT_TIMEOUT);
}

/// Reads per measurement: `/proc/uptime` counts hundredths of a second.
const READS: u32 = 10;

/// Seconds (from `/proc/uptime`) the guest takes to read `blocks` 4 KiB
/// blocks of `device` with the page cache dropped first, the mean of
/// [`READS`] reads.
fn read_seconds(c: &mut Console, device: &str, blocks: u64) -> f64 {
    let out = c
        .run_ok(
            &format!(
                "t=0; i=0; while [ $i -lt {READS} ]; do \
                 sync; echo 3 > /proc/sys/vm/drop_caches; read a _ < /proc/uptime; \
                 dd if={device} of=/dev/null bs=4096 count={blocks} 2>/dev/null; \
                 read b _ < /proc/uptime; \
                 t=$((t + ${{b%.*}}${{b#*.}} - ${{a%.*}}${{a#*.}})); i=$((i + 1)); done; \
                 echo \"took 0 $((t / 100)).$((t % 100))\""
            ),
            Duration::from_secs(600),
        )
        .or_panic();
    let line = out
        .lines()
        .find_map(|l| l.strip_prefix("took "))
        .unwrap_or_else(|| panic!("{}", c.failure(&format!("no time in {out:?}"))));
    let (a, b) = line.split_once(' ').expect("two times");
    (b.trim().parse::<f64>().unwrap() - a.trim().parse::<f64>().unwrap()) / f64::from(READS)
}

/// Not an assertion but a measurement (`docs/boot-contract.md` reports it):
/// the whole image read in stage 2 through the verity device and, in the
/// same boot, through its loop device alone, twice in alternating order.
#[test]
fn stage2_reads_the_whole_image_with_and_without_verity() {
    let m = real_media();
    let initrd = trusting(&m.verity, "verity-read-initrd");
    let mut c = real_boot(&initrd, &m.iso, "k1os.mode=ram", "verity_read_image");
    let loop_device = c
        .run_ok(
            "for b in /sys/block/dm-0/slaves/*; do echo /dev/${b##*/}; done",
            COMMAND_TIMEOUT,
        )
        .or_panic()
        .trim()
        .to_string();
    assert!(
        loop_device.starts_with("/dev/loop"),
        "{}",
        c.failure(&format!("dm-0 is over {loop_device:?}"))
    );
    let blocks = m.verity.data_blocks;
    let mut verified = Vec::new();
    let mut plain = Vec::new();
    for round in 0..2 {
        if round % 2 == 0 {
            verified.push(read_seconds(&mut c, "/dev/dm-0", blocks));
            plain.push(read_seconds(&mut c, &loop_device, blocks));
        } else {
            plain.push(read_seconds(&mut c, &loop_device, blocks));
            verified.push(read_seconds(&mut c, "/dev/dm-0", blocks));
        }
    }
    let mib = (blocks * verity::BLOCK) as f64 / (1 << 20) as f64;
    let speed = |s: &[f64]| mib / (s.iter().sum::<f64>() / s.len() as f64);
    eprintln!(
        "verity_read_image: {mib:.1} MiB image ({}), each read the mean of {READS}: \
         through dm-verity {verified:.3?} s ({:.0} MiB/s), the loop device alone {plain:.3?} s \
         ({:.0} MiB/s) ({}); hash tree {} bytes",
        m.image.display(),
        speed(&verified),
        speed(&plain),
        c.accel().name(),
        m.verity.tree_bytes
    );
    assert!(verified.iter().chain(&plain).all(|&s| s >= 0.0));
    power_off(&mut c, BOOT_TIMEOUT);
}
