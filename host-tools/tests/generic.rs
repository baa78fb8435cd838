//! `make test-generic`: the ISO built with the `generic` kernel profile —
//! what `make iso` gives people — on QEMU's `q35` chipset, booted the way a
//! real PC boots it. Not in CI: the generic kernel takes about 25 minutes to
//! build the first time (then it comes from the cache), so every test here is
//! `#[ignore]`d and `make test-generic` runs them with `--ignored`.
//!
//! - **The matrix**: SeaBIOS and OVMF × the ISO as a CD (q35's AHCI port)
//!   and as a USB stick (xHCI) × RAM mode (GRUB's RAM entry) and persistent
//!   mode (the default entry, with a data disk: an AHCI disk beside the CD, a
//!   second stick beside the stick). A USB keyboard is plugged in; each boot
//!   reaches a shell, checks the mode and that the keyboard is an input
//!   device, and prints a `HARDWARE |` row: the table in `docs/hardware.md`.
//! - **The screen**: OVMF with no serial port at all, `-vga std` and
//!   `virtio-vga`: the boot and the shell on the framebuffer, read back from
//!   QEMU's `screendump` with the kernel's own 8×16 font
//!   (`common::screen`); commands typed on the keyboard run and show their
//!   output; no `used greatest stack depth` debug lines.
//! - **A fatal error on the screen**: the CD ejected after GRUB loaded the
//!   kernel, so stage 1 finds no media; its FATAL line is on the screen and
//!   stays there (no reboot), and Ctrl-Alt-Del restarts as it says.
//!
//! Serial logs and screenshots: `build/test-logs/generic_*`. VMs run one at a
//! time, TCG unless `K1OS_ACCEL` says otherwise.
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::screen::{self, Font, Image};
use common::{Data, OrPanic, PROMPT, assert_upper_file, power_off, start_console};
use host_tools::bench::timeline::Timeline;
use host_tools::iso::{TITLE_AUTO, TITLE_RAM};
use host_tools::kernel::Pin;
use host_tools::paths;
use host_tools::run::Cmd;
use host_tools::vm::{
    Console, Display, Drive, Firmware, KERNEL_RESTART, Machine, Outcome, ScreenOnly, Vga,
};
use k1os_contract::contract::{self, boot_file};

/// From QEMU's start through the firmware and GRUB to stage 2 ready.
const ISO_BOOT_TIMEOUT: Duration = Duration::from_secs(300);
const SHELL_TIMEOUT: Duration = Duration::from_secs(60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const POWER_OFF_TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// Fixtures

/// `build/test-iso-generic/k1os.iso`: `host-tools iso --profile generic`
/// with the test epoch, built or found up to date once per process.
fn generic_iso() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| common::build_iso("generic", &paths::build_dir().join("test-iso-generic")))
}

/// The kernel's console font, from the pinned kernel source tarball.
fn kernel_font() -> &'static Font {
    static FONT: OnceLock<Font> = OnceLock::new();
    FONT.get_or_init(|| {
        let pin = Pin::load().or_panic();
        let out = Cmd::new("tar")
            .arg("-xJOf")
            .arg(&pin.path)
            .args(["--wildcards", "*/lib/fonts/font_8x16.c"])
            .stdin_null()
            .read()
            .or_panic();
        Font::from_kernel_source(&out).or_panic()
    })
}

/// A fresh data filesystem (`host-tools make-persist`: ext4 `K1OS-DATA`).
fn data_image(name: &str) -> PathBuf {
    let data = common::scratch(name).join("persist.img");
    let made = Cmd::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(["make-persist", "--size", "64M"])
        .arg(&data)
        .stdin_null()
        .output_unchecked()
        .or_panic();
    assert!(
        made.success,
        "host-tools make-persist failed:\n{}{}",
        made.stdout, made.stderr
    );
    data
}

// ---------------------------------------------------------------------------
// The matrix

#[derive(Clone, Copy, PartialEq, Eq)]
enum Medium {
    /// The ISO on q35's AHCI CD drive.
    Cd,
    /// The ISO written to a USB stick on xHCI.
    Usb,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Persistence {
    Ram,
    Persist,
}

fn firmware_name(f: Firmware) -> &'static str {
    match f {
        Firmware::Bios => "BIOS",
        Firmware::Uefi => "UEFI",
        Firmware::SecureBoot => "UEFI with Secure Boot",
    }
}

/// Boots the generic ISO from `medium` through `firmware` in `mode`, to a
/// shell; checks what it found, the keyboard, and (persistent) that a file
/// written reaches the data disk; prints the `HARDWARE |` row.
fn boot_matrix(firmware: Firmware, medium: Medium, mode: Persistence) {
    let iso = generic_iso();
    let fw = firmware_name(firmware);
    let (bus, mode_name) = (
        match medium {
            Medium::Cd => "CD (AHCI)",
            Medium::Usb => "USB stick (xHCI)",
        },
        match mode {
            Persistence::Ram => "ram",
            Persistence::Persist => "persist",
        },
    );
    let name = format!(
        "generic_{}_{}_{mode_name}",
        fw.to_lowercase(),
        match medium {
            Medium::Cd => "cd",
            Medium::Usb => "usb",
        }
    );
    let mut vm = Machine::firmware(firmware)
        .q35()
        .usb_keyboard()
        .drive(match medium {
            Medium::Cd => Drive::cdrom(iso).boot(),
            Medium::Usb => Drive::usb(iso).snapshot().boot(),
        });
    let data = (mode == Persistence::Persist).then(|| data_image(&name));
    if let Some(data) = &data {
        vm = vm.drive(match medium {
            Medium::Cd => Drive::sata(data),
            Medium::Usb => Drive::usb(data),
        });
    }
    let entry = match mode {
        Persistence::Ram => TITLE_RAM,
        Persistence::Persist => TITLE_AUTO,
    };

    let mut s = start_console(&vm, &name);
    s.select_entry(entry, ISO_BOOT_TIMEOUT).or_panic();
    s.wait_for(contract::MARKER_STAGE2_READY, ISO_BOOT_TIMEOUT)
        .or_panic();
    let ready = s.elapsed();
    s.wait_for(PROMPT, SHELL_TIMEOUT).or_panic();
    s.wait_for_shell(SHELL_TIMEOUT).or_panic();

    let boot = s
        .run_ok(&format!("cat {}", contract::RUN_BOOT_FILE), COMMAND_TIMEOUT)
        .or_panic();
    assert_has(&boot, &s, &format!("{}={mode_name}", boot_file::MODE));
    let media_ok = match medium {
        Medium::Cd => boot.contains("media=/dev/sr0"),
        // The stick's ISO 9660 partition; with two sticks, which is sda is
        // the order their scans finished.
        Medium::Usb => boot.contains("media=/dev/sda1") || boot.contains("media=/dev/sdb1"),
    };
    assert!(
        media_ok,
        "{}",
        s.failure(&format!("the media is not the {bus}:\n{boot}"))
    );
    // The keyboard a person types on: the USB keyboard, bound to a keyboard
    // handler (`kbd`) by the kernel's HID drivers.
    let input = s
        .run_ok("cat /proc/bus/input/devices", COMMAND_TIMEOUT)
        .or_panic();
    assert_has(&input, &s, "QEMU USB Keyboard");
    let usb_keyboard = input
        .split("\n\n")
        .find(|dev| dev.contains("QEMU USB Keyboard"))
        .unwrap_or_default();
    assert_has(usb_keyboard, &s, "kbd");
    if firmware == Firmware::Uefi {
        s.run_ok("ls -d /sys/firmware/efi", COMMAND_TIMEOUT)
            .or_panic();
    }
    if data.is_some() {
        s.run_ok("echo generic > /root/generic-test && sync", COMMAND_TIMEOUT)
            .or_panic();
    }
    let transcript = s.transcript();
    let stage1 = Timeline::parse(&transcript)
        .stage1_us()
        .map_or("?".to_string(), |us| format!("{:.2} s", us as f64 / 1e6));
    power_off(&mut s, POWER_OFF_TIMEOUT);
    if let Some(data) = &data {
        assert_upper_file(Data::Image(data), "root/generic-test", "generic\n");
    }
    eprintln!(
        "HARDWARE | q35 | {fw} | {bus} | {mode_name} | stage 2 ready, shell, USB keyboard | {:.1} s | stage 1 {stage1}",
        ready.as_secs_f64()
    );
}

#[track_caller]
fn assert_has(text: &str, s: &Console, needle: &str) {
    if !text.contains(needle) {
        panic!("{}", s.failure(&format!("expected {needle:?} in:\n{text}")));
    }
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn bios_cd_ram() {
    boot_matrix(Firmware::Bios, Medium::Cd, Persistence::Ram);
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn bios_cd_persist() {
    boot_matrix(Firmware::Bios, Medium::Cd, Persistence::Persist);
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn bios_usb_ram() {
    boot_matrix(Firmware::Bios, Medium::Usb, Persistence::Ram);
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn bios_usb_persist() {
    boot_matrix(Firmware::Bios, Medium::Usb, Persistence::Persist);
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn uefi_cd_ram() {
    boot_matrix(Firmware::Uefi, Medium::Cd, Persistence::Ram);
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn uefi_cd_persist() {
    boot_matrix(Firmware::Uefi, Medium::Cd, Persistence::Persist);
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn uefi_usb_ram() {
    boot_matrix(Firmware::Uefi, Medium::Usb, Persistence::Ram);
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn uefi_usb_persist() {
    boot_matrix(Firmware::Uefi, Medium::Usb, Persistence::Persist);
}

// ---------------------------------------------------------------------------
// The screen

/// `build/test-logs/<name>.ppm`: the last screenshot, for a person to look at.
fn screenshot_path(name: &str) -> PathBuf {
    paths::build_dir()
        .join("test-logs")
        .join(format!("{name}.ppm"))
}

/// Takes a screenshot and reads its text.
fn read_screen(monitor: &mut host_tools::vm::Monitor, shot: &Path) -> (Image, String) {
    monitor.screendump(shot).or_panic();
    let image = Image::load(shot).or_panic();
    let text = image.text(kernel_font()).join("\n");
    (image, text)
}

/// Screenshots every second until the screen shows `needle`; panics with
/// the last screen's text at `timeout` or when QEMU ends.
fn wait_for_screen(vm: &mut ScreenOnly, shot: &Path, needle: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, text) = read_screen(vm.monitor(), shot);
        if text.contains(needle) {
            return text;
        }
        if let Some(outcome) = vm.poll().or_panic() {
            panic!(
                "QEMU ended ({outcome:?}) before the screen showed {needle:?}; it showed:\n{text}\nQEMU's stderr:\n{}",
                vm.stderr()
            );
        }
        if Instant::now() > deadline {
            panic!(
                "the screen did not show {needle:?} within {:.0} s ({}); it showed:\n{text}",
                timeout.as_secs_f64(),
                shot.display()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// UEFI with `vga` and no serial port: GRUB boots its default entry, the
/// kernel's messages and the shell are on the framebuffer, typed commands run.
fn screen_console(vga: Vga, name: &str, framebuffer: &str) {
    let iso = generic_iso();
    let vm = Machine::firmware(Firmware::Uefi)
        .q35()
        .usb_keyboard()
        .display(Display::Screen(vga))
        .drive(Drive::usb(iso).snapshot().boot());
    let shot = screenshot_path(name);
    let mut vm = vm.start_without_serial(name).or_panic();
    // Trailing blanks are not on the screen: a cell is blank or a glyph.
    let booted = wait_for_screen(&mut vm, &shot, PROMPT.trim_end(), ISO_BOOT_TIMEOUT);
    let ready = vm.elapsed();
    eprintln!(
        "{name}: the prompt on the screen {:.1} s after QEMU started; the screen:\n{booted}",
        ready.as_secs_f64()
    );
    // Typed on the keyboard, run by the shell on tty1, shown on the screen:
    // the arithmetic makes the answer differ from the echoed command.
    vm.monitor()
        .type_text("echo K1OS-SCREEN-$((6*7))\n")
        .or_panic();
    wait_for_screen(&mut vm, &shot, "K1OS-SCREEN-42", COMMAND_TIMEOUT);
    // The console's framebuffer driver, and no DEBUG_STACK_USAGE clutter in
    // the kernel log (its lines would be on the screen too).
    vm.monitor()
        .type_text("echo K1OS-FB-$(cut -c3- /proc/fb | tr ' ' _) K1OS-STACK-$(dmesg | grep -c 'greatest stack depth')\n")
        .or_panic();
    let text = wait_for_screen(&mut vm, &shot, "K1OS-STACK-0", COMMAND_TIMEOUT);
    assert!(
        text.contains(&format!("K1OS-FB-{framebuffer}")),
        "{name}: expected the framebuffer {framebuffer:?} in /proc/fb; the screen:\n{text}"
    );
    let (image, _) = read_screen(vm.monitor(), &shot);
    eprintln!(
        "{name}: {}×{} screen, {} lit pixels; screenshot {}",
        image.width,
        image.height,
        image.lit_pixels(),
        shot.display()
    );
    vm.monitor().type_text("poweroff\n").or_panic();
    let outcome = vm.wait_exit(POWER_OFF_TIMEOUT).or_panic();
    assert_eq!(
        outcome,
        Outcome::Exited(Some(0)),
        "{name}: `poweroff` typed on the keyboard did not power off"
    );
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn uefi_std_vga_screen_without_serial() {
    // OVMF's GOP framebuffer on Bochs VGA, driven by efifb.
    screen_console(Vga::Std, "generic_screen_std_vga", "EFI_VGA");
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn uefi_virtio_vga_screen_without_serial() {
    // efifb first, then the virtio_gpu DRM driver takes the screen over with
    // its own framebuffer device.
    screen_console(Vga::Virtio, "generic_screen_virtio_vga", "virtio_gpudrmfb");
}

#[test]
#[ignore = "make test-generic: the generic kernel"]
fn fatal_stage1_error_stays_on_the_screen() {
    let name = "generic_fatal_screen";
    let iso = generic_iso();
    // The CD is the first drive, QEMU's `drive0`.
    let vm = Machine::firmware(Firmware::Uefi)
        .q35()
        .usb_keyboard()
        .display(Display::Screen(Vga::Std))
        .drive(Drive::cdrom(iso).boot());
    let mut c = start_console(&vm, name);
    // GRUB has loaded the kernel and the initramfs: take the CD away.
    c.wait_for("Linux version", ISO_BOOT_TIMEOUT).or_panic();
    c.monitor().command("eject -f drive0").or_panic();
    c.wait_for(contract::MARKER_FATAL, ISO_BOOT_TIMEOUT)
        .or_panic();
    c.wait_for("stopped: Ctrl-Alt-Del restarts", COMMAND_TIMEOUT)
        .or_panic();
    let shot = screenshot_path(name);
    let (_, first) = read_screen(c.monitor(), &shot);
    for needle in ["FATAL", "system.squashfs", "stopped: Ctrl-Alt-Del restarts"] {
        assert!(
            first.contains(needle),
            "{needle:?} is not on the screen after the fatal error; it shows:\n{first}"
        );
    }
    // The old default rebooted 10 s after the message (into the same
    // failure): 15 s later the machine is still there, the message too.
    std::thread::sleep(Duration::from_secs(15));
    let status = c.monitor().command("info status").or_panic();
    assert!(
        status.contains("running"),
        "QEMU's status 15 s after the fatal error: {status:?}"
    );
    let (_, later) = read_screen(c.monitor(), &shot);
    assert!(
        later.contains("FATAL") && !c.transcript().contains(KERNEL_RESTART),
        "the fatal message left the screen within 15 s:\n{later}"
    );
    eprintln!("{name}: the screen 15 s after the fatal error:\n{later}");
    // What the message promises: Ctrl-Alt-Del restarts (QEMU, run with
    // -no-reboot, then exits).
    c.monitor().send_keys(&["ctrl-alt-delete"]).or_panic();
    c.wait_for(KERNEL_RESTART, POWER_OFF_TIMEOUT).or_panic();
    let outcome = c.wait_exit(POWER_OFF_TIMEOUT).or_panic();
    assert_eq!(outcome, Outcome::Exited(Some(0)), "after Ctrl-Alt-Del");
}

// ---------------------------------------------------------------------------
// The screen reader itself (fast: runs in every `cargo test`)

#[test]
fn screen_text_is_read_back_cell_by_cell() {
    // A font whose glyph for byte b has row y = b ^ y (all distinct).
    // (a blank space, as in every real font).
    let font_data: Vec<u8> = (0..256 * screen::CELL_HEIGHT)
        .map(|i| match i / screen::CELL_HEIGHT {
            0x20 => 0,
            c => (c ^ (i % screen::CELL_HEIGHT)) as u8,
        })
        .collect();
    let font = Font::from_glyphs(&font_data).unwrap();
    let image = screen::draw(&font_data, &["root@k1os:~# ", "FATAL: x"], 20);
    assert_eq!(image.text(&font), ["root@k1os:~#", "FATAL: x"]);
    let ppm = [
        format!("P6\n{} {}\n255\n", image.width, image.height).into_bytes(),
        image.rgb.clone(),
    ]
    .concat();
    assert_eq!(
        Image::from_ppm(&ppm).unwrap().text(&font),
        ["root@k1os:~#", "FATAL: x"]
    );
    assert!(Image::from_ppm(b"P6\n2 2\n255\n\0\0\0").is_err());
}
