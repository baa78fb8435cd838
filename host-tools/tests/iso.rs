//! ISO tests: `host-tools iso --profile qemu` builds the ISO (once per test
//! process, into `build/test-iso/`), and QEMU boots it the way a PC does —
//! SeaBIOS or OVMF, then GRUB's menu over the serial console, then the kernel,
//! stage 1 and stage 2 — with the ISO as a CD-ROM, a hard disk or a USB
//! stick. Each boot waits for `k1os: stage 2 ready`, then for a shell that
//! answers on the console, and drives it like a user.
//!
//! The ISO's root filesystem is the real one (`host-tools rootfs`).
//!
//! Also: the ISO's layout, two builds into different directories are
//! byte-identical, a rebuild with nothing changed rebuilds nothing, and bad
//! input (no kernel source, no `xorriso`) fails fast with what to do.
//!
//! Serial logs: `build/test-logs/iso_*.log`. VMs run one at a time, with TCG
//! unless `K1OS_ACCEL` says otherwise (`host_tools::vm::accel`).
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Data, OrPanic, PROMPT, assert_upper_file, power_off};
use host_tools::iso::{self, TITLE_AUTO, TITLE_DEBUG, TITLE_RAM};
use host_tools::run::{self, Cmd};
use host_tools::vm::{Console, Drive, Firmware, Machine};
use host_tools::{paths, testimg};
use k1os_contract::contract;

/// From QEMU's start to the stage-2 marker. GRUB boots under TCG take 10–17 s;
/// a loaded machine can be much slower.
const BOOT_TIMEOUT: Duration = Duration::from_secs(240);
/// For the shell to answer once stage 2 is ready, and for each command.
const SHELL_TIMEOUT: Duration = Duration::from_secs(60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(60);
/// Bad input must fail before anything is built.
const FAIL_FAST: Duration = Duration::from_secs(20);

/// Written to the data disk by the persistence test.
const NOTE_PATH: &str = "/root/k1os-iso-note.txt";
const NOTE: &str = "K1OS-ISO-PERSISTED-5c1e";

/// Builds are serialized: they share `build/kernel/` and the cargo target dir.
static BUILD: Mutex<()> = Mutex::new(());

/// How a `host-tools` run ended: success, its output (stdout, then stderr), its time.
struct Run {
    ok: bool,
    output: String,
    elapsed: Duration,
}

fn host_tools(args: &[&str], path_env: Option<&str>) -> Run {
    // A fixed epoch: the default, the last commit's time, would change the
    // ISO whenever someone commits while the tests run.
    let mut cmd = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(args)
        .env("SOURCE_DATE_EPOCH", testimg::SOURCE_DATE_EPOCH);
    if let Some(path) = path_env {
        cmd = cmd.env("PATH", path);
    }
    let start = Instant::now();
    let out = cmd.stdin_null().output_unchecked().or_panic();
    Run {
        ok: out.success,
        output: out.stdout + &out.stderr,
        elapsed: start.elapsed(),
    }
}

fn build_iso(out: &Path) -> Run {
    let _guard = BUILD.lock().unwrap_or_else(|p| p.into_inner());
    let out = out.to_str().unwrap();
    let run = host_tools(&["iso", "--profile", "qemu", "--out", out], None);
    if !run.ok {
        panic!(
            "`host-tools iso --profile qemu --out {out}` failed:\n{}",
            run.output
        );
    }
    run
}

/// `build/test-iso/k1os.iso`, built once per process.
fn test_iso() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let out = paths::build_dir().join("test-iso");
        let run = build_iso(&out);
        eprintln!(
            "test ISO built in {:.1} s:\n{}",
            run.elapsed.as_secs_f64(),
            run.output
        );
        iso::iso_path(&out)
    })
}

/// Starts the VM, chooses the menu entry titled `entry` over the serial
/// console (or lets GRUB's timeout boot the default with `None`), and waits
/// for the stage-2 marker, the root shell's prompt and a shell that answers.
fn boot_to_shell(vm: &Machine, name: &str, entry: Option<&str>) -> Console {
    let mut s = vm
        .start(name)
        .unwrap_or_else(|e| panic!("starting QEMU for {name}: {e:?}"));
    match entry {
        Some(title) => s.select_entry(title, BOOT_TIMEOUT),
        None => s.wait_for(TITLE_DEBUG, BOOT_TIMEOUT).map(drop),
    }
    .or_panic();
    let menu = s.elapsed();
    s.wait_for(contract::MARKER_STAGE2_READY, BOOT_TIMEOUT)
        .or_panic();
    let ready = s.elapsed();
    s.wait_for(PROMPT, SHELL_TIMEOUT).or_panic();
    let prompt = s.elapsed();
    // GRUB's embedded config ran cleanly (it runs before `normal`, where a
    // mistake is easy to make and can still boot by luck).
    for grub_error in ["Unknown command", "this is the GRUB shell", "error: file"] {
        if s.transcript().contains(grub_error) {
            panic!("{}", s.failure(&format!("GRUB said {grub_error:?}")));
        }
    }
    s.wait_for_shell(SHELL_TIMEOUT).or_panic();
    eprintln!(
        "{name}: GRUB menu {:.1} s, `{}` {:.1} s, prompt {:.1} s after QEMU started ({}); log {}",
        menu.as_secs_f64(),
        contract::MARKER_STAGE2_READY,
        ready.as_secs_f64(),
        prompt.as_secs_f64(),
        s.accel().name(),
        s.log_path().display()
    );
    s
}

/// Runs `command`, which must succeed; its output.
fn run_ok(s: &mut Console, command: &str) -> String {
    s.run_ok(command, COMMAND_TIMEOUT).or_panic()
}

/// `/run/k1os/boot`.
fn boot_file(s: &mut Console) -> String {
    run_ok(s, &format!("cat {}", contract::RUN_BOOT_FILE))
}

#[track_caller]
fn assert_has(text: &str, s: &Console, needle: &str) {
    if !text.contains(needle) {
        panic!("{}", s.failure(&format!("expected {needle:?} in:\n{text}")));
    }
}

fn mode_line(mode: &str) -> String {
    format!("{}={mode}", contract::boot_file::MODE)
}

fn make_persist(path: &Path) {
    let run = host_tools(
        &["make-persist", "--size", "64M", path.to_str().unwrap()],
        None,
    );
    assert!(run.ok, "host-tools make-persist failed:\n{}", run.output);
}

/// A PC booting the test ISO from `drive` (the ISO, marked as the boot drive).
fn pc(firmware: Firmware, drive: fn(&Path) -> Drive) -> Machine {
    Machine::firmware(firmware).drive(drive(test_iso()).boot())
}

fn cdrom(iso: &Path) -> Drive {
    Drive::cdrom(iso)
}

/// The ISO written to a hard disk: writes go to a throwaway overlay.
fn hard_disk(iso: &Path) -> Drive {
    Drive::ide(iso).snapshot()
}

/// The ISO written to a USB stick: writes go to a throwaway overlay.
fn usb_stick(iso: &Path) -> Drive {
    Drive::usb(iso).snapshot()
}

// ---------------------------------------------------------------------------
// Boots

#[test]
fn bios_cdrom_default_entry_boots_to_the_shell() {
    let mut s = boot_to_shell(&pc(Firmware::Bios, cdrom), "iso_bios_cdrom", None);
    let cmdline = run_ok(&mut s, "cat /proc/cmdline");
    assert_has(
        &cmdline,
        &s,
        "console=tty0 console=ttyS0,115200 k1os.mode=auto",
    );
    // Auto mode without a data disk: RAM mode.
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, &mode_line("ram"));
    assert_has(&boot, &s, "media=/dev/sr0");
    // The ISO's initramfs trusts its image: mounted through dm-verity.
    assert_has(
        &boot,
        &s,
        &format!("verity={}", shipped_verity().root_hex()),
    );
    let lower = run_ok(&mut s, "grep ' /run/k1os/lower ' /proc/mounts");
    assert_has(&lower, &s, "/dev/dm-0 /run/k1os/lower squashfs ro");
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

#[test]
fn bios_hard_disk_boots_to_the_shell() {
    let vm = pc(Firmware::Bios, hard_disk);
    let mut s = boot_to_shell(&vm, "iso_bios_disk", Some(TITLE_AUTO));
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, &mode_line("ram"));
    // The ISO 9660 partition of the hybrid layout, preferred over the whole disk.
    assert_has(&boot, &s, "media=/dev/sda1");
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

#[test]
fn uefi_cdrom_boots_to_the_shell() {
    let vm = pc(Firmware::Uefi, cdrom);
    let mut s = boot_to_shell(&vm, "iso_uefi_cdrom", Some(TITLE_AUTO));
    let efi = run_ok(&mut s, "ls -d /sys/firmware/efi");
    assert_has(&efi, &s, "/sys/firmware/efi");
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, "media=/dev/sr0");
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

#[test]
fn uefi_usb_stick_boots_to_the_shell() {
    let vm = pc(Firmware::Uefi, usb_stick);
    let mut s = boot_to_shell(&vm, "iso_uefi_usb", Some(TITLE_AUTO));
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, &mode_line("ram"));
    // The stick's ISO 9660 partition, even though USB makes the whole disk
    // appear before its partitions (stage 1 waits for them); never the ESP.
    assert_has(&boot, &s, "media=/dev/sda1");
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

#[test]
fn persistence_through_the_iso() {
    let data = common::scratch("iso-persist").join("persist.img");
    make_persist(&data);
    let vm = pc(Firmware::Bios, cdrom).drive(Drive::virtio(&data));

    let mut s = boot_to_shell(&vm, "iso_persist_1_write", Some(TITLE_AUTO));
    assert_has(&boot_file(&mut s), &s, &mode_line("persist"));
    run_ok(&mut s, &format!("echo {NOTE} > {NOTE_PATH} && sync"));
    power_off(&mut s, POWER_OFF_TIMEOUT);
    drop(s);

    assert_upper_file(Data::Image(&data), NOTE_PATH, &format!("{NOTE}\n"));

    let mut s = boot_to_shell(&vm, "iso_persist_2_read", Some(TITLE_AUTO));
    assert_has(&boot_file(&mut s), &s, &mode_line("persist"));
    let note = run_ok(&mut s, &format!("cat {NOTE_PATH}"));
    assert_has(&note, &s, NOTE);
    power_off(&mut s, POWER_OFF_TIMEOUT);
}

#[test]
fn ram_mode_entry_leaves_the_data_image_untouched() {
    let data = common::scratch("iso-ram-entry").join("persist.img");
    make_persist(&data);
    let before = host_tools::hash::sha256_file(&data).unwrap();
    let vm = pc(Firmware::Bios, cdrom).drive(Drive::virtio(&data));

    let mut s = boot_to_shell(&vm, "iso_ram_entry", Some(TITLE_RAM));
    let cmdline = run_ok(&mut s, "cat /proc/cmdline");
    assert_has(&cmdline, &s, "k1os.mode=ram");
    assert_has(&boot_file(&mut s), &s, &mode_line("ram"));
    run_ok(&mut s, &format!("echo {NOTE} > {NOTE_PATH} && sync"));
    power_off(&mut s, POWER_OFF_TIMEOUT);
    drop(s);

    assert_eq!(
        host_tools::hash::sha256_file(&data).unwrap(),
        before,
        "{} changed in RAM mode",
        data.display()
    );
}

// ---------------------------------------------------------------------------
// The image itself

/// The verity parameters of the root image the test ISO ships (the file it
/// was made from, next to it, checked by `verity::read`).
fn shipped_verity() -> host_tools::verity::Verity {
    let image = test_iso().with_file_name(contract::DEFAULT_IMAGE.trim_start_matches('/'));
    host_tools::verity::read(&image).or_panic()
}

/// A file of the ISO, extracted into `build/test-images/<name>`.
fn extract(iso: &Path, path: &str, name: &str) -> PathBuf {
    let out = testimg::images_dir().join(name);
    let _ = std::fs::remove_file(&out);
    Cmd::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", path])
        .arg(&out)
        .run()
        .unwrap();
    out
}

/// `xorriso -indev ISO -find / -type f`, as paths.
fn iso_files(iso: &Path) -> Vec<String> {
    let out = Cmd::new("xorriso")
        .arg("-indev")
        .arg(iso)
        .args(["-find", "/", "-type", "f"])
        .read()
        .unwrap();
    out.lines()
        .map(|l| l.trim().trim_matches('\'').to_string())
        .collect()
}

#[test]
fn iso_layout_follows_the_contract() {
    let iso = test_iso();
    let head = {
        use std::io::Read;
        let mut buf = vec![0u8; 64 * 1024];
        std::fs::File::open(iso)
            .unwrap()
            .read_exact(&mut buf)
            .unwrap();
        buf
    };
    let probe = k1os_contract::probe::probe(&head).expect("an ISO 9660 superblock");
    assert_eq!(probe.label(), contract::MEDIA_LABEL.as_bytes());
    assert_eq!(
        &head[510..512],
        &[0x55, 0xAA],
        "MBR boot signature (hybrid MBR)"
    );

    let files = iso_files(iso);
    let image = contract::DEFAULT_IMAGE;
    for path in [
        iso::KERNEL_PATH,
        iso::INITRD_PATH,
        iso::GRUB_CFG_PATH,
        iso::BIOS_IMAGE_PATH,
        iso::NOTICES_PATH,
        image,
    ] {
        assert!(
            files.iter().any(|f| f == path),
            "{path} not in the ISO: {files:?}"
        );
    }

    let gpt = Cmd::new("sgdisk").arg("-p").arg(iso).read().unwrap();
    let esp = gpt
        .lines()
        .find(|l| l.trim_start().starts_with("2 "))
        .unwrap_or_else(|| panic!("no partition 2:\n{gpt}"));
    assert!(esp.contains("EF00"), "partition 2 is not an ESP:\n{gpt}");

    let cfg = testimg::images_dir().join("iso-grub.cfg");
    let _ = std::fs::remove_file(&cfg);
    Cmd::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", iso::GRUB_CFG_PATH])
        .arg(&cfg)
        .run()
        .unwrap();
    let shipped = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(shipped, iso::grub_cfg().unwrap());
    assert!(shipped.contains(TITLE_RAM));

    // One initramfs, one image: the initramfs's /verity is the parameter
    // line of the /system.squashfs next to it, whose tree checks out.
    let image = extract(iso, image, "iso-system.squashfs");
    let v = host_tools::verity::read(&image).or_panic();
    let initrd = extract(iso, iso::INITRD_PATH, "iso-initramfs.img");
    let raw = host_tools::bench::sizes::decompress(&std::fs::read(&initrd).unwrap()).unwrap();
    let mut rest = &raw[..];
    let mut trusted = None;
    loop {
        let reader = cpio::newc::Reader::new(rest).unwrap();
        if reader.entry().is_trailer() {
            break;
        }
        let name = reader.entry().name().to_string();
        let mut data = Vec::new();
        let mut reader = reader;
        std::io::Read::read_to_end(&mut reader, &mut data).unwrap();
        if format!("/{name}") == contract::INITRAMFS_VERITY {
            trusted = Some(String::from_utf8(data).unwrap());
        }
        rest = reader.finish().unwrap();
    }
    assert_eq!(trusted.as_deref(), Some(v.line().as_str()));
}

#[test]
fn two_builds_are_identical_and_a_rebuild_does_nothing() {
    let first = test_iso();
    let mtime = std::fs::metadata(first).unwrap().modified().unwrap();

    let again = build_iso(first.parent().unwrap());
    // Each step prints `==> name`, then its outcome on the next line.
    let lines: Vec<&str> = again.output.lines().collect();
    for step in ["==> GRUB images (BIOS El Torito", "==> ISO "] {
        let outcome = lines
            .iter()
            .position(|l| l.starts_with(step))
            .and_then(|i| lines.get(i + 1));
        assert!(
            outcome.is_some_and(|l| l.trim_start().starts_with("up to date")),
            "`{step}…` is not `up to date` in a rebuild with nothing changed:\n{}",
            again.output
        );
    }
    assert_eq!(
        std::fs::metadata(first).unwrap().modified().unwrap(),
        mtime,
        "the ISO was rewritten"
    );
    eprintln!("no-change rebuild: {:.1} s", again.elapsed.as_secs_f64());

    let other = tempfile::tempdir().unwrap();
    let second = build_iso(other.path());
    eprintln!(
        "second build into {}: {:.1} s",
        other.path().display(),
        second.elapsed.as_secs_f64()
    );
    let a = std::fs::read(first).unwrap();
    let b = std::fs::read(iso::iso_path(other.path())).unwrap();
    assert_eq!(a.len(), b.len(), "sizes differ");
    if let Some(at) = a.iter().zip(&b).position(|(x, y)| x != y) {
        panic!(
            "{} and {} differ first at byte {at:#x}",
            first.display(),
            iso::iso_path(other.path()).display()
        );
    }
}

// ---------------------------------------------------------------------------
// Bad input

#[test]
fn missing_kernel_source_fails_fast_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("linux-missing.tar.xz");
    let out = dir.path().join("out");
    let run = host_tools(
        &[
            "iso",
            "--profile",
            "qemu",
            "--kernel-source",
            source.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(!run.ok, "succeeded:\n{}", run.output);
    assert!(
        run.elapsed < FAIL_FAST,
        "took {:?}:\n{}",
        run.elapsed,
        run.output
    );
    for needle in [
        source.to_str().unwrap(),
        "does not exist",
        "--kernel-source",
        "pinned",
    ] {
        assert!(
            run.output.contains(needle),
            "`{needle}` not in:\n{}",
            run.output
        );
    }
    assert!(!out.exists(), "something was built in {}", out.display());
}

#[test]
fn missing_host_program_fails_fast_and_names_the_package() {
    // A PATH with everything of /usr/bin but xorriso, and cargo.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for entry in std::fs::read_dir("/usr/bin").unwrap().flatten() {
        let name = entry.file_name();
        if name != "xorriso" {
            std::os::unix::fs::symlink(entry.path(), bin.join(&name)).unwrap();
        }
    }
    let cargo_dir = run::which("cargo")
        .expect("cargo on PATH")
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!("{}:{}", bin.display(), cargo_dir.display());
    let out = dir.path().join("out");
    let run = host_tools(
        &["iso", "--profile", "qemu", "--out", out.to_str().unwrap()],
        Some(&path),
    );
    assert!(!run.ok, "succeeded without xorriso:\n{}", run.output);
    assert!(
        run.elapsed < FAIL_FAST,
        "took {:?}:\n{}",
        run.elapsed,
        run.output
    );
    for needle in [
        "`xorriso` is not installed",
        "Debian package `xorriso`",
        "doctor --install",
    ] {
        assert!(
            run.output.contains(needle),
            "`{needle}` not in:\n{}",
            run.output
        );
    }
    assert!(!out.exists(), "something was built in {}", out.display());
}
