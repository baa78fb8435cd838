//! ISO tests: `host-tools iso --profile qemu` builds the ISO (once per test
//! process, into `build/test-iso/`), and QEMU boots it the way a PC does —
//! SeaBIOS or OVMF, then GRUB's menu over the serial console, then the kernel,
//! stage 1 and stage 2 — with the ISO as a CD-ROM or as a hard disk (what a
//! USB stick is). Each boot waits for `k1os: stage 2 ready`, then for a shell
//! that answers on the console, and drives it like a user.
//!
//! The ISO's root filesystem is the real one (`host-tools rootfs`).
//!
//! Also: the ISO's layout, two builds into different directories are
//! byte-identical, a rebuild with nothing changed rebuilds nothing, and bad
//! input (no kernel source, no `xorriso`) fails fast with what to do.
//!
//! Serial logs: `build/test-logs/iso_*.log`. VMs run one at a time
//! (`host_tools::qemu::vm_lock`), with TCG unless `K1OS_ACCEL` says otherwise.
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use host_tools::iso::vm::{Attach, Firmware, IsoVm, Session};
use host_tools::iso::{self, TITLE_DEBUG, TITLE_RAM};
use host_tools::qemu::{self, Accel, Format};
use host_tools::run::{self, Cmd};
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

/// The root shell's prompt on the serial console (`rootfs/etc/profile`).
const PROMPT: &str = "root@k1os:~# ";
/// Written to the data disk by the persistence test.
const NOTE_PATH: &str = "/root/k1os-iso-note.txt";
const NOTE: &str = "K1OS-ISO-PERSISTED-5c1e";

/// Builds are serialized: they share `build/kernel/` and the cargo target dir.
static BUILD: Mutex<()> = Mutex::new(());

/// How a `host-tools` run ended: success, its output (stdout and stderr), its time.
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
    let out = cmd
        .stdin_null()
        .output_unchecked()
        .unwrap_or_else(|e| panic!("{e:#}"));
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
fn test_iso() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut slot = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(iso) = &*slot {
        return iso.clone();
    }
    let out = paths::build_dir().join("test-iso");
    let run = build_iso(&out);
    eprintln!(
        "test ISO built in {:.1} s:\n{}",
        run.elapsed.as_secs_f64(),
        run.output
    );
    let iso = iso::iso_path(&out);
    *slot = Some(iso.clone());
    iso
}

/// `build/test-images/iso-<test>/`, emptied.
fn work_dir(test: &str) -> PathBuf {
    let dir = testimg::images_dir().join(format!("iso-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The accelerator (`K1OS_ACCEL`; its `auto` probe boots the test kernel, under the VM lock).
fn accel() -> Accel {
    let kernel = paths::build_dir().join("kernel/bzImage");
    let _lock = qemu::vm_lock();
    Accel::choose(&kernel).unwrap()
}

/// Starts the VM, chooses menu entry `entry` over the serial console (or lets
/// GRUB's timeout boot the default with `None`), and waits for the stage-2
/// marker, the root shell's prompt and a shell that answers.
fn boot_to_shell(vm: &IsoVm, name: &str, entry: Option<usize>) -> Session {
    let mut s = vm
        .start(name, accel())
        .unwrap_or_else(|e| panic!("starting QEMU for {name}: {e:?}"));
    let menu = match entry {
        Some(index) => s.select_entry(index, BOOT_TIMEOUT),
        None => s.wait_for(TITLE_DEBUG, BOOT_TIMEOUT),
    }
    .unwrap_or_else(|e| panic!("{e:?}"));
    let ready = s
        .wait_for(contract::MARKER_STAGE2_READY, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let prompt = s
        .wait_for(PROMPT, SHELL_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:?}"));
    // GRUB's embedded config ran cleanly (it runs before `normal`, where a
    // mistake is easy to make and can still boot by luck).
    for grub_error in ["Unknown command", "this is the GRUB shell", "error: file"] {
        if s.text().contains(grub_error) {
            panic!("{}", s.failure(&format!("GRUB said {grub_error:?}")));
        }
    }
    s.wait_for_shell(SHELL_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:?}"));
    eprintln!(
        "{name}: GRUB menu {:.1} s, `{}` {:.1} s, prompt {:.1} s after QEMU started ({:?}); log {}",
        menu.as_secs_f64(),
        contract::MARKER_STAGE2_READY,
        ready.as_secs_f64(),
        prompt.as_secs_f64(),
        s.accel(),
        s.log_path().display()
    );
    s
}

/// Runs `command`, waiting for `expect` in its output.
fn run(s: &mut Session, command: &str, expect: &str) -> String {
    s.run(command, expect, COMMAND_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// `key=value` of `/run/k1os/boot` is shown (the `cat` also ends with a
/// marker, so the whole file is there when this returns).
fn boot_file(s: &mut Session) -> String {
    run(
        s,
        &format!("cat {}; echo K1OS-END-$((1+1))", contract::RUN_BOOT_FILE),
        "K1OS-END-2",
    )
}

fn assert_has(text: &str, s: &Session, needle: &str) {
    if !text.contains(needle) {
        panic!("{}", s.failure(&format!("expected {needle:?} in:\n{text}")));
    }
}

fn mode_line(mode: &str) -> String {
    format!("{}={mode}", contract::boot_file::MODE)
}

fn power_off(s: &mut Session) {
    s.power_off(POWER_OFF_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e:?}"));
}

fn make_persist(path: &Path) {
    let run = host_tools(
        &["make-persist", "--size", "64M", path.to_str().unwrap()],
        None,
    );
    assert!(run.ok, "host-tools make-persist failed:\n{}", run.output);
}

// ---------------------------------------------------------------------------
// Boots

#[test]
fn bios_cdrom_default_entry_boots_to_the_shell() {
    let iso = test_iso();
    let mut s = boot_to_shell(&IsoVm::new(&iso), "iso_bios_cdrom", None);
    let cmdline = run(
        &mut s,
        "cat /proc/cmdline; echo K1OS-END-$((1+1))",
        "K1OS-END-2",
    );
    assert_has(
        &cmdline,
        &s,
        "console=tty0 console=ttyS0,115200 k1os.mode=auto",
    );
    // Auto mode without a data disk: RAM mode.
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, &mode_line("ram"));
    assert_has(&boot, &s, "media=/dev/sr0");
    power_off(&mut s);
}

#[test]
fn bios_hard_disk_boots_to_the_shell() {
    let iso = test_iso();
    let vm = IsoVm::new(&iso).attach(Attach::Disk);
    let mut s = boot_to_shell(&vm, "iso_bios_disk", Some(0));
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, &mode_line("ram"));
    // The ISO 9660 partition of the hybrid layout, preferred over the whole disk.
    assert_has(&boot, &s, "media=/dev/sda1");
    power_off(&mut s);
}

#[test]
fn uefi_cdrom_boots_to_the_shell() {
    let iso = test_iso();
    let vm = IsoVm::new(&iso).firmware(Firmware::Uefi);
    let mut s = boot_to_shell(&vm, "iso_uefi_cdrom", Some(0));
    let efi = run(
        &mut s,
        "ls -d /sys/firmware/efi && echo K1OS-EFI-$((2+2))",
        "K1OS-EFI-4",
    );
    assert_has(&efi, &s, "/sys/firmware/efi");
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, "media=/dev/sr0");
    power_off(&mut s);
}

#[test]
fn uefi_usb_stick_boots_to_the_shell() {
    let iso = test_iso();
    let vm = IsoVm::new(&iso)
        .firmware(Firmware::Uefi)
        .attach(Attach::Usb);
    let mut s = boot_to_shell(&vm, "iso_uefi_usb", Some(0));
    let boot = boot_file(&mut s);
    assert_has(&boot, &s, &mode_line("ram"));
    // The stick's ISO 9660 partition, even though USB makes the whole disk
    // appear before its partitions (stage 1 waits for them); never the ESP.
    assert_has(&boot, &s, "media=/dev/sda1");
    power_off(&mut s);
}

#[test]
fn persistence_through_the_iso() {
    let iso = test_iso();
    let dir = work_dir("persist");
    let data = dir.join("persist.img");
    make_persist(&data);
    let vm = IsoVm::new(&iso).data(&data, Format::Raw);

    let mut s = boot_to_shell(&vm, "iso_persist_1_write", Some(0));
    assert_has(&boot_file(&mut s), &s, &mode_line("persist"));
    run(
        &mut s,
        &format!("echo {NOTE} > {NOTE_PATH} && sync && echo K1OS-WROTE-$((3+4))"),
        "K1OS-WROTE-7",
    );
    power_off(&mut s);
    drop(s);

    let upper = NOTE_PATH.trim_start_matches('/');
    let on_disk = testimg::read_upper_file(&data, upper).unwrap();
    assert_eq!(
        on_disk.as_deref().map(String::from_utf8_lossy).as_deref(),
        Some(format!("{NOTE}\n").as_str()),
        "/{}/{upper} in {}",
        contract::DATA_UPPER_DIR,
        data.display()
    );

    let mut s = boot_to_shell(&vm, "iso_persist_2_read", Some(0));
    assert_has(&boot_file(&mut s), &s, &mode_line("persist"));
    run(&mut s, &format!("cat {NOTE_PATH}"), NOTE);
    power_off(&mut s);
}

#[test]
fn ram_mode_entry_leaves_the_data_image_untouched() {
    let iso = test_iso();
    let dir = work_dir("ram-entry");
    let data = dir.join("persist.img");
    make_persist(&data);
    let before = host_tools::hash::sha256_file(&data).unwrap();
    let vm = IsoVm::new(&iso).data(&data, Format::Raw);

    let mut s = boot_to_shell(&vm, "iso_ram_entry", Some(1));
    let cmdline = run(
        &mut s,
        "cat /proc/cmdline; echo K1OS-END-$((1+1))",
        "K1OS-END-2",
    );
    assert_has(&cmdline, &s, "k1os.mode=ram");
    assert_has(&boot_file(&mut s), &s, &mode_line("ram"));
    run(
        &mut s,
        &format!("echo {NOTE} > {NOTE_PATH} && sync && echo K1OS-WROTE-$((3+4))"),
        "K1OS-WROTE-7",
    );
    power_off(&mut s);
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
        std::fs::File::open(&iso)
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

    let files = iso_files(&iso);
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

    let gpt = Cmd::new("sgdisk").arg("-p").arg(&iso).read().unwrap();
    let esp = gpt
        .lines()
        .find(|l| l.trim_start().starts_with("2 "))
        .unwrap_or_else(|| panic!("no partition 2:\n{gpt}"));
    assert!(esp.contains("EF00"), "partition 2 is not an ESP:\n{gpt}");

    let cfg = testimg::images_dir().join("iso-grub.cfg");
    let _ = std::fs::remove_file(&cfg);
    Cmd::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", iso::GRUB_CFG_PATH])
        .arg(&cfg)
        .run()
        .unwrap();
    let shipped = std::fs::read_to_string(&cfg).unwrap();
    assert_eq!(shipped, iso::grub_cfg().unwrap());
    assert!(shipped.contains(TITLE_RAM));
}

#[test]
fn two_builds_are_identical_and_a_rebuild_does_nothing() {
    let first = test_iso();
    let mtime = std::fs::metadata(&first).unwrap().modified().unwrap();

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
        std::fs::metadata(&first).unwrap().modified().unwrap(),
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
    let a = std::fs::read(&first).unwrap();
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
