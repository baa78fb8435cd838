//! K1OS stage 1: the initramfs `/init`. Reads like the boot contract
//! (`docs/boot-contract.md`): mount the virtual filesystems → read the
//! command line → load the initramfs's kernel modules, if any → find the media and the image → mount the image → find the
//! data partition (or a tmpfs) → overlay → switch root → exec stage 2.
//! `main` and `boot` are the script; the functions below them are its steps,
//! in the order the boot runs them. Every step returns an [`Error`] naming
//! the step, the device or path and the errno; [`fatal`] reports it and does
//! what `k1os.onfail` says.
//!
//! Stage 1 has a size budget: fixed paths are C-string constants
//! (`layout.rs`), text is built in one writer type ([`text::Text`]), and log
//! lines are macros around two non-generic functions.
#![no_std]
#![no_main]

mod devices;
mod dir;
mod dm;
mod error;
mod layout;
mod log;
mod loopdev;
mod modules;
mod mounts;
mod record;
mod rt;
mod switch_root;
mod sys;
mod text;
mod toram;

use core::convert::Infallible;
use core::ffi::CStr;
use k1os_contract::choose::{self, Candidate, Choice};
use k1os_contract::cmdline::{self, BootConfig, Mode, OnFail};
use k1os_contract::contract::{self, cstr, phase};
use k1os_contract::fmt::Bytes;
use k1os_contract::probe::FsKind;
use rustix::fd::AsFd;
use rustix::fs::{Mode as FileMode, OFlags};
use rustix::mount::{MountFlags, UnmountFlags};
use ufmt::uwrite;

use devices::Devices;
use error::{Context, ErrnoName, Error, Result};
use layout::{DATA_UPPER, RAM_UPPER, Upper};
use record::{Describe, Record, spec_text};
use text::Text;

/// Longest `/proc/cmdline` (x86 truncates at 2048).
const CMDLINE_MAX: usize = 4096;

/// `phase!(record, name, "detail", args)`: logs a phase and records its time.
macro_rules! phase {
    ($record:expr, $name:expr, $($arg:tt)*) => {{
        let mut buf = text::buf::<{ log::LINE_BUF }>();
        let mut line = $record.phase(&mut buf, $name);
        let _ = uwrite!(line.text, $($arg)*);
        line.end();
    }};
}

/// The entry point, called by `_start` (see `rt.rs`).
pub extern "C" fn main() -> ! {
    log::start_clock();
    if !rustix::process::getpid().is_init() {
        sys::write_raw(
            2,
            b"k1os-init: refusing to run: this is the initramfs /init and must be PID 1\n",
        );
        sys::exit(1);
    }
    if let Err(err) = mounts::mount_early() {
        fatal(&err, None); // no /proc: no command line to read onfail from
    }
    setup_console();
    log::open_kmsg();
    let mut record = Record::default();
    phase!(record, phase::EARLY, "/proc /sys /dev /run mounted");

    let mut cmdline_buf = [0u8; CMDLINE_MAX];
    let cmdline = read_cmdline(&mut cmdline_buf);
    let config = cmdline::parse(cmdline, &mut |w| {
        warn!(
            "{}: {}={} (using the default)",
            w.problem.as_str(),
            Bytes(w.key),
            Bytes(w.value)
        )
    });
    log::set_debug(config.debug);
    debug!("command line: {}", Bytes(cmdline.trim_ascii_end()));
    // Drivers first: with Debian's kernel, the disks, filesystems and
    // device-mapper are modules, and nothing below works without them.
    modules::load_all(cmdline);

    let Err(err) = boot(&config, &mut record);
    fatal(&err, config.onfail)
}

/// The kernel opened `/dev/console` as fds 0–2 when the initramfs has the node.
/// If it could not (headless machine, `console=null`), use `/dev/null` so
/// writes go somewhere instead of to whatever file gets fd 1 next.
fn setup_console() {
    // SAFETY: fd 1 is only borrowed for the duration of the check.
    let stdout = unsafe { rustix::fd::BorrowedFd::borrow_raw(1) };
    if rustix::io::fcntl_getfd(stdout).is_ok() {
        return;
    }
    let flags = OFlags::RDWR | OFlags::NOCTTY;
    let fd = rustix::fs::open(c"/dev/console", flags, FileMode::empty())
        .or_else(|_| rustix::fs::open(c"/dev/null", flags, FileMode::empty()));
    if let Ok(fd) = fd {
        let _ = rustix::stdio::dup2_stdin(&fd);
        let _ = rustix::stdio::dup2_stdout(&fd);
        let _ = rustix::stdio::dup2_stderr(&fd);
    }
}

/// Reads `/proc/cmdline` into `buf`; an unreadable one is an empty line (all defaults).
fn read_cmdline(buf: &mut [u8]) -> &[u8] {
    mounts::read_file(c"/proc/cmdline", buf).unwrap_or_else(|e| {
        warn!(
            "cannot read /proc/cmdline ({}): using defaults",
            ErrnoName(e)
        );
        &[]
    })
}

/// The boot contract, step by step. Returns only on failure.
fn boot(config: &BootConfig<'_>, record: &mut Record) -> Result<Infallible> {
    let deadline_us = u64::from(config.timeout_s) * 1_000_000;
    let mut devices = Devices::default();

    let media = find_media(config, &mut devices, deadline_us)?;
    record.media = Some(media.name);
    phase!(
        record,
        phase::MEDIA,
        "/dev/{} ({}), image {}",
        media.name,
        Describe(media),
        Bytes(config.image)
    );

    let mut image_buf = text::buf();
    let mut image_path = text::join(
        &mut image_buf,
        &[contract::RUN_MEDIA.as_bytes(), config.image],
    )
    .step("find the image", config.image)?;
    if config.toram {
        image_path = toram::copy_to_ram(image_path)?;
        phase!(
            record,
            phase::TORAM,
            "image copied to RAM, boot media released"
        );
    }
    let image = mounts::open("open the image", image_path, OFlags::RDONLY, 0)?;
    let mut loop_buf = text::buf();
    let (loop_device, loop_fd) = loopdev::attach(image.as_fd(), &mut loop_buf)?;
    drop(image);

    // The image through dm-verity when the initramfs trusts one (see
    // `dm.rs`): every block is checked against the tree as it is read.
    let mut line_buf = [0u8; dm::LINE_MAX];
    let (device, verity) = dm::device(config, loop_device, &mut line_buf)?;
    mounts::mount_device(
        "mount the root image",
        device,
        cstr::RUN_LOWER,
        c"squashfs",
        true,
    )
    .map_err(|e| match core::ptr::eq(device, loop_device) {
        true => e,
        // Through verity: blocks that failed their check (EIO).
        false => e.explain(dm::STEP, config.image, dm::MISMATCH),
    })?;
    drop(loop_fd); // the mount holds the device now
    phase!(
        record,
        phase::IMAGE,
        "{} on /run/k1os/lower, verity {}",
        Bytes(device.to_bytes()),
        Bytes(verity)
    );

    let upper = match data_partition(config, &mut devices, deadline_us)? {
        Some(device) => {
            record.data = Some(device.name);
            phase!(
                record,
                phase::DATA,
                "/dev/{} on /run/k1os/data",
                device.name
            );
            &DATA_UPPER
        }
        None => {
            mount_ram(config)?;
            phase!(
                record,
                phase::RAM,
                "tmpfs size={} on /run/k1os/ram",
                Bytes(config.ramsize)
            );
            &RAM_UPPER
        }
    };

    mount_overlay(upper)?;
    let mut init_buf = text::buf();
    let init = switch_root::check_stage2(config.init, &mut init_buf)?;
    phase!(
        record,
        phase::OVERLAY,
        "/newroot (upper {}), stage 2 {}",
        Bytes(upper.root.to_bytes()),
        Bytes(config.init)
    );

    record.write_boot_file(config, verity)?;
    switch_root::move_mounts()?;
    phase!(record, phase::SWITCH_ROOT, "/dev /proc /sys /run moved");
    switch_root::switch_root(init)
}

/// Waits up to the timeout for a device holding the image, trying devices in
/// the contract's order (the `K1OS` label first); leaves it mounted read-only
/// at `/run/k1os/media`.
fn find_media<'d>(
    config: &BootConfig<'_>,
    devices: &'d mut Devices,
    deadline_us: u64,
) -> Result<&'d Candidate> {
    // Each device is mounted at most once: the list only grows, so a bit per index.
    let mut tried: u64 = 0;
    let mut found = None;
    devices.wait_for(deadline_us, false, &mut |devs| {
        let mut order = [0usize; devices::MAX_DEVICES];
        let n = choose::media_order(&devs.list, config.media.as_ref(), &mut order);
        for &i in order.iter().take(n) {
            let Some(device) = devs.list.get(i) else {
                continue;
            };
            // A disk's partitions appear just after the disk itself. Try a
            // whole disk only once discovery has settled, so that a partition
            // holding the image (a hybrid ISO on a USB stick) wins over its
            // disk. Optical drives have no partitions.
            let whole_disk = device.parent.is_none() && !device.name.as_bytes().starts_with(b"sr");
            if whole_disk && !devs.settled() {
                continue;
            }
            if tried & (1 << i) == 0 {
                tried |= 1 << i;
                if mount_if_holds_image(device, config.image) {
                    found = Some(i);
                    return true;
                }
            }
        }
        false
    });
    if let Some(device) = found.and_then(|i| devices.list.get(i)) {
        return Ok(device);
    }
    for d in &devices.list {
        warn!("seen /dev/{}: {}", d.name, Describe(d));
    }
    Err(Error::msg(
        "find the boot media",
        config.image,
        "no device holding it appeared within k1os.timeout",
    ))
}

/// Mounts `device` read-only at `/run/k1os/media` and, when it holds `image`,
/// leaves it mounted there and returns `true`; otherwise unmounts it again.
// Out of line: measured smaller.
#[inline(never)]
fn mount_if_holds_image(device: &Candidate, image: &[u8]) -> bool {
    let Some(probe) = &device.probe else {
        return false;
    };
    if probe.kind == FsKind::Squashfs {
        return false;
    }
    let name = device.name.as_bytes();
    let mut node_buf = text::buf();
    let Ok(node) = devices::node(&mut node_buf, &device.name) else {
        return false;
    };
    let target = cstr::RUN_MEDIA;
    if mounts::make_dir("mount the boot media", target).is_err() {
        return false;
    }
    // `noload`: a read-only look must not replay an ext4 journal (it could be
    // the data partition).
    let options = if probe.kind == FsKind::Ext4 {
        Some(c"noload")
    } else {
        None
    };
    let flags = MountFlags::RDONLY | MountFlags::NOATIME | MountFlags::NOSUID | MountFlags::NODEV;
    if let Err(e) = mounts::mount(node, target, mounts::fs_type(probe.kind), flags, options) {
        debug!("/dev/{}: not mountable ({})", Bytes(name), ErrnoName(e));
        return false;
    }
    let mut path_buf = text::buf();
    let Ok(path) = text::join(&mut path_buf, &[contract::RUN_MEDIA.as_bytes(), image]) else {
        return false;
    };
    if mounts::exists(path) {
        return true;
    }
    debug!("/dev/{}: no {}", Bytes(name), Bytes(image));
    let _ = rustix::mount::unmount(target, UnmountFlags::empty());
    false
}

/// The data partition, mounted at `/run/k1os/data`, or `None` for RAM mode:
///
/// | `k1os.mode` | waits for it            | found                 | two match | none  |
/// |-------------|-------------------------|-----------------------|-----------|-------|
/// | `ram`       | never looks: RAM        | –                     | –         | –     |
/// | `auto`      | until discovery settles | mounted; fails: RAM   | RAM       | RAM   |
/// | `persist`   | the full `k1os.timeout` | mounted; fails: fatal | fatal     | fatal |
///
/// Every "RAM" comes with a warning that says why. "Found" is the one device
/// matching `k1os.data` (a disk and its own partition count as one, see
/// `choose::choose_data`); "two match" is two unrelated devices. When no
/// ext2/3/4 matches, a device with the label or UUID on another filesystem
/// counts as found and failing to mount (`choose::data_on_other_fs`).
fn data_partition<'d>(
    config: &BootConfig<'_>,
    devices: &'d mut Devices,
    deadline_us: u64,
) -> Result<Option<&'d Candidate>> {
    let required = match config.mode {
        Mode::Ram => return Ok(None),
        Mode::Persist => true,
        Mode::Auto => false,
    };
    let mut choice = Choice::NotFound;
    devices.wait_for(deadline_us, !required, &mut |d| {
        choice = choose::choose_data(&d.list, &config.data);
        choice != Choice::NotFound
    });
    let mut spec_buf = text::buf::<96>();
    let spec = spec_text(&mut spec_buf, &config.data);
    let device = match choice {
        Choice::Found(i) => devices.list.get(i),
        // No ext2/3/4 has the label or UUID. A device that has it on another
        // filesystem (a FAT stick labelled K1OS-DATA) goes to `mount_data`,
        // which refuses it before mounting anything: the message says why it
        // is not used, where "not found" would mislead.
        Choice::NotFound => {
            choose::data_on_other_fs(&devices.list, &config.data).and_then(|i| devices.list.get(i))
        }
        Choice::Ambiguous(..) => None,
    };
    let mounted = match (choice, device) {
        (_, Some(device)) => mount_data(device).map(|()| device),
        (Choice::Ambiguous(a, b), _) => Err(ambiguous(devices, a, b, spec)),
        _ if required => Err(Error::msg(
            "find the data partition",
            spec,
            "not found within k1os.timeout (k1os.mode=persist)",
        )),
        _ => {
            warn!(
                "no data partition {} found; RAM mode: changes will not be kept",
                Bytes(spec)
            );
            return Ok(None);
        }
    };
    match mounted {
        Ok(device) => Ok(Some(device)),
        Err(err) if required => Err(err),
        Err(err) => {
            warn!("{}; RAM mode: changes will not be kept", err);
            Ok(None)
        }
    }
}

/// Two devices match the data partition's spec: warns naming both and
/// returns the error (fatal with `persist`, RAM mode with `auto`).
fn ambiguous(devices: &Devices, a: usize, b: usize, spec: &[u8]) -> Error {
    let name = |i: usize| devices.list.get(i).map_or(&[][..], |d| d.name.as_bytes());
    warn!(
        "data partition {}: both /dev/{} and /dev/{} match",
        Bytes(spec),
        Bytes(name(a)),
        Bytes(name(b))
    );
    let mut buf = text::buf::<80>();
    let mut both = Text::new(&mut buf);
    let _ = uwrite!(both, "/dev/{} and /dev/{}", Bytes(name(a)), Bytes(name(b)));
    Error::msg(
        "find the data partition",
        both.bytes(),
        "two different devices carry its label or UUID: remove or relabel one",
    )
}

/// Mounts the data partition read-write at `/run/k1os/data` and makes `/upper`
/// and `/work` when missing. Never formats, repairs or deletes anything.
fn mount_data(device: &Candidate) -> Result<()> {
    const STEP: &str = "mount the data partition";
    let mut node_buf = text::buf();
    let node = devices::node(&mut node_buf, &device.name).step(STEP, device.name.as_bytes())?;
    match &device.probe {
        Some(p) if p.kind == FsKind::Ext4 => {}
        _ => {
            return Err(Error::msg(
                STEP,
                node.to_bytes(),
                "is not ext4 (the overlay upper layer needs ext4)",
            ));
        }
    }
    mounts::mount_device(STEP, node, DATA_UPPER.root, c"ext4", false)?;
    if let Err(err) = make_upper_dirs("prepare the data partition", &DATA_UPPER) {
        let _ = rustix::mount::unmount(DATA_UPPER.root, UnmountFlags::empty());
        return Err(err);
    }
    Ok(())
}

/// RAM mode: a tmpfs of `k1os.ramsize` at `/run/k1os/ram` with `upper` and `work`.
fn mount_ram(config: &BootConfig<'_>) -> Result<()> {
    const STEP: &str = "mount the RAM upper layer";
    let mut buf = text::buf();
    let options =
        text::join(&mut buf, &[b"mode=0755,size=", config.ramsize]).step(STEP, config.ramsize)?;
    mounts::mount_tmpfs(STEP, RAM_UPPER.root, options)?;
    make_upper_dirs(STEP, &RAM_UPPER)
}

/// `<root>/upper` and `<root>/work`, made when missing.
fn make_upper_dirs(step: &'static str, upper: &Upper) -> Result<()> {
    for &dir in &upper.dirs {
        mounts::ensure_dir_in(step, dir)?;
    }
    Ok(())
}

/// The root: the image below, `upper` above.
fn mount_overlay(upper: &Upper) -> Result<()> {
    const STEP: &str = "mount the overlay root";
    mounts::mount_at(
        STEP,
        c"overlay",
        cstr::NEW_ROOT,
        c"overlay",
        MountFlags::empty(),
        Some(upper.overlay),
        mounts::Named::Options,
    )
}

/// Seconds `k1os.onfail=reboot` waits before rebooting, so the message can be read.
const REBOOT_DELAY_S: u32 = 10;
/// A rescue shell in the initramfs, if someone put one there.
const RESCUE_SHELL: &CStr = c"/bin/sh";

// `fatal`'s messages spell these out in their literals: keep them equal.
const _: () = {
    assert!(REBOOT_DELAY_S == 10); // "rebooting in 10 s"
    assert!(text::is_concat(RESCUE_SHELL.to_bytes(), &[b"/bin/sh"]));
};

/// The one fatal path: report the error on the console and in the kernel log,
/// then do what `k1os.onfail` says. PID 1 must never exit (the kernel would
/// panic with a message that buries ours), so every branch ends in a reboot,
/// a power-off, a halt or an endless sleep.
///
/// Without `k1os.onfail` and without a rescue shell, stage 1 waits: a machine
/// that rebooted by itself would boot, fail and reboot again, and the screen
/// would show the firmware instead of the reason.
fn fatal(err: &Error, onfail: Option<OnFail>) -> ! {
    log_line!(Error, "FATAL: {}", err);
    let has_shell = mounts::exists(RESCUE_SHELL);
    let action = onfail.unwrap_or(if has_shell {
        OnFail::Shell
    } else {
        OnFail::Wait
    });
    match action {
        OnFail::Shell if has_shell => {
            warn!("starting the rescue shell /bin/sh");
            let argv = [RESCUE_SHELL.as_ptr().cast::<u8>(), core::ptr::null()];
            let envp = [c"TERM=linux".as_ptr().cast::<u8>(), core::ptr::null()];
            let errno = sys::execve(RESCUE_SHELL, &argv, &envp);
            warn!("cannot start the rescue shell ({})", ErrnoName(errno));
        }
        OnFail::Shell => warn!("no rescue shell in the initramfs"),
        _ => {}
    }
    rustix::fs::sync();
    let command = match action {
        OnFail::Poweroff => rustix::system::RebootCommand::PowerOff,
        OnFail::Halt => rustix::system::RebootCommand::Halt,
        OnFail::Reboot => {
            warn!("rebooting in 10 s");
            sys::sleep_ms(REBOOT_DELAY_S * 1000);
            rustix::system::RebootCommand::Restart
        }
        OnFail::Shell | OnFail::Wait => {
            log_line!(
                Error,
                "stopped: Ctrl-Alt-Del restarts (k1os.onfail=reboot restarts by itself)"
            );
            loop {
                sys::sleep_ms(u32::MAX);
            }
        }
    };
    if let Err(e) = rustix::system::reboot(command) {
        warn!("reboot(2) failed ({}): waiting forever", ErrnoName(e));
    }
    loop {
        sys::sleep_ms(u32::MAX);
    }
}
