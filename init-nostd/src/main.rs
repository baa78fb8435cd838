//! K1OS stage 1: the initramfs `/init`. Reads like the boot contract
//! (`DESIGN.md`, "Boot contract"): mount the virtual filesystems → read the
//! command line → find the media and the image → mount the image → find the
//! data partition (or a tmpfs) → overlay → switch root → exec stage 2.
//! Every step returns an [`Error`] naming the step, the device or path and the
//! errno; [`fatal`] reports it and does what `k1os.onfail` says.
#![no_std]
#![no_main]

mod devices;
mod error;
mod log;
mod loopdev;
mod mounts;
mod path;
mod rt;
mod switch_root;
mod sys;

use core::convert::Infallible;
use core::ffi::CStr;
use k1os_contract::choose::{self, Choice};
use k1os_contract::cmdline::{self, BootConfig, DeviceSpec, Mode, OnFail};
use k1os_contract::contract::{self, boot_file, phase};
use k1os_contract::probe::FsKind;
use rustix::fd::AsFd;
use rustix::fs::{Mode as FileMode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountFlags;
use ufmt::{uDisplay, uWrite, uwrite};

use devices::{Device, Devices};
use error::{Context, Error, Result};
use log::{Bytes, Text};
use path::PathBuf;

/// Longest `/proc/cmdline` (x86 truncates at 2048).
const CMDLINE_MAX: usize = 4096;
/// Seconds a default `onfail` waits before rebooting, so the message can be read.
const REBOOT_DELAY_S: u32 = 10;
/// A rescue shell in the initramfs, if someone put one there.
const RESCUE_SHELL: &CStr = c"/bin/sh";
/// Bytes of RAM left free beyond the image when copying it with `k1os.toram`.
const TORAM_MARGIN: u64 = 16 << 20;

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
    record.phase(phase::EARLY, |l| {
        let _ = l.write_str("/proc /sys /dev /run mounted");
    });

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
    debug!("command line: {}", Bytes(cmdline));

    let Err(err) = boot(&config, &mut record);
    fatal(&err, config.onfail)
}

/// The boot contract, step by step. Returns only on failure.
fn boot(config: &BootConfig<'_>, record: &mut Record) -> Result<Infallible> {
    let deadline_us = u64::from(config.timeout_s) * 1_000_000;
    let mut devices = Devices::default();

    let media = find_media(config, &mut devices, deadline_us)?;
    record.media = Some(media);
    let media_dev = &devices.list[media];
    record.phase(phase::MEDIA, |l| {
        let _ = uwrite!(
            l,
            "/dev/{} ({}), image {}",
            Bytes(&media_dev.name),
            Describe(media_dev),
            Bytes(config.image)
        );
    });

    let mut image_path = PathBuf::join(&[contract::RUN_MEDIA.as_bytes(), config.image])
        .step("find the image", config.image)?;
    if config.toram {
        image_path = copy_to_ram(&image_path)?;
        record.phase(phase::TORAM, |l| {
            let _ = l.write_str("image copied to RAM, boot media released");
        });
    }
    let image = mounts::open_read("open the image", image_path.as_cstr())?;
    let (loop_device, loop_fd) = loopdev::attach(image.as_fd())?;
    drop(image);
    let lower = c_str(contract::RUN_LOWER);
    mounts::mount_device(
        "mount the root image",
        loop_device.as_cstr(),
        lower,
        c"squashfs",
        true,
    )?;
    drop(loop_fd); // the mount holds the device now
    record.phase(phase::IMAGE, |l| {
        let _ = uwrite!(
            l,
            "{} on {}",
            Bytes(loop_device.bytes()),
            contract::RUN_LOWER
        );
    });

    let upper = match config.mode {
        Mode::Ram => None,
        Mode::Persist => Some(persistent_data(config, &mut devices, deadline_us)?),
        Mode::Auto => optional_data(config, &mut devices, deadline_us),
    };
    let upper_root = match upper {
        Some(index) => {
            record.data = Some(index);
            record.phase(phase::DATA, |l| {
                let _ = uwrite!(
                    l,
                    "/dev/{} on {}",
                    Bytes(&devices.list[index].name),
                    contract::RUN_DATA
                );
            });
            contract::RUN_DATA
        }
        None => {
            mount_ram(config)?;
            record.phase(phase::RAM, |l| {
                let _ = uwrite!(
                    l,
                    "tmpfs size={} on {}",
                    Bytes(config.ramsize),
                    contract::RUN_RAM
                );
            });
            contract::RUN_RAM
        }
    };

    let new_root = c_str(contract::NEW_ROOT);
    mount_overlay(upper_root, new_root)?;
    switch_root::check_stage2(new_root, config.init)?;
    record.phase(phase::OVERLAY, |l| {
        let _ = uwrite!(
            l,
            "{} (upper {}), stage 2 {}",
            contract::NEW_ROOT,
            upper_root,
            Bytes(config.init)
        );
    });

    record.write_boot_file(config, &devices)?;
    switch_root::move_mounts(new_root)?;
    record.phase(phase::SWITCH_ROOT, |l| {
        let _ = l.write_str("/dev /proc /sys /run moved");
    });
    switch_root::switch_root(new_root, config.init)
}

/// Waits up to the timeout for a device holding the image, trying devices in
/// the contract's order (the `K1OS` label first); leaves it mounted read-only
/// at `/run/k1os/media`. Returns its index in `devices`.
fn find_media(config: &BootConfig<'_>, devices: &mut Devices, deadline_us: u64) -> Result<usize> {
    // Each device is mounted at most once: the list only grows, so a bit per index.
    let mut tried: u64 = 0;
    let found = devices::wait_for(
        devices,
        deadline_us,
        |devs| {
            let candidates = devs.candidates();
            let mut order = [0usize; devices::MAX_DEVICES];
            let n = choose::media_order(&candidates, config.media.as_ref(), &mut order);
            for &i in &order[..n] {
                if tried & (1 << i) == 0 {
                    tried |= 1 << i;
                    if holds_image(&devs.list[i], config.image) {
                        return Some(i);
                    }
                }
            }
            None
        },
        |_| false,
    );
    found.ok_or_else(|| {
        for d in &devices.list {
            warn!("seen /dev/{}: {}", Bytes(&d.name), Describe(d));
        }
        Error::msg(
            "find the boot media",
            config.image,
            "no device holding it appeared within k1os.timeout",
        )
    })
}

/// Mounts `device` read-only at `/run/k1os/media` and keeps it there when it
/// holds `image`.
fn holds_image(device: &Device, image: &[u8]) -> bool {
    let Some(probe) = &device.probe else {
        return false;
    };
    if probe.kind == FsKind::Squashfs {
        return false;
    }
    let Ok(node) = device.node() else {
        return false;
    };
    let target = c_str(contract::RUN_MEDIA);
    if mounts::make_dir("mount the boot media", target).is_err() {
        return false;
    }
    // `noload`: a read-only look must not replay an ext4 journal (it could be
    // the data partition).
    let data = if probe.kind == FsKind::Ext4 {
        Some(c"noload")
    } else {
        None
    };
    let flags = MountFlags::RDONLY | MountFlags::NOATIME | MountFlags::NOSUID | MountFlags::NODEV;
    if let Err(e) = rustix::mount::mount(
        node.as_cstr(),
        target,
        mounts::fs_type(probe.kind),
        flags,
        data,
    ) {
        debug!(
            "/dev/{}: not mountable ({})",
            Bytes(&device.name),
            error::ErrnoName(e)
        );
        return false;
    }
    let Ok(path) = PathBuf::join(&[contract::RUN_MEDIA.as_bytes(), image]) else {
        return false;
    };
    if mounts::exists(path.as_cstr()) {
        return true;
    }
    debug!("/dev/{}: no {}", Bytes(&device.name), Bytes(image));
    let _ = rustix::mount::unmount(target, rustix::mount::UnmountFlags::empty());
    false
}

/// `k1os.mode=persist`: the data partition is required; waits the full timeout.
fn persistent_data(
    config: &BootConfig<'_>,
    devices: &mut Devices,
    deadline_us: u64,
) -> Result<usize> {
    const STEP: &str = "find the data partition";
    let choice = devices::wait_for(
        devices,
        deadline_us,
        |d| decided(d, &config.data),
        |_| false,
    );
    let index = match choice {
        Some(Choice::Found(i)) => i,
        Some(Choice::Ambiguous(a, b)) => return Err(ambiguous(devices, a, b, &config.data)),
        _ => {
            return Err(Error::msg(
                STEP,
                &spec_text(&config.data),
                "not found within k1os.timeout (k1os.mode=persist)",
            ));
        }
    };
    mount_data(&devices.list[index])?;
    Ok(index)
}

/// `k1os.mode=auto`: the data partition if there is one, found once device
/// discovery has settled (not the full timeout); otherwise RAM mode, with a
/// notice that says why.
fn optional_data(
    config: &BootConfig<'_>,
    devices: &mut Devices,
    deadline_us: u64,
) -> Option<usize> {
    let choice = devices::wait_for(
        devices,
        deadline_us,
        |d| decided(d, &config.data),
        Devices::settled,
    );
    let spec = spec_text(&config.data);
    let index = match choice {
        Some(Choice::Found(i)) => i,
        Some(Choice::Ambiguous(a, b)) => {
            let err = ambiguous(devices, a, b, &config.data);
            warn!("{}; RAM mode: changes will not be kept", err);
            return None;
        }
        _ => {
            warn!(
                "no data partition {} found; RAM mode: changes will not be kept",
                Bytes(&spec)
            );
            return None;
        }
    };
    match mount_data(&devices.list[index]) {
        Ok(()) => Some(index),
        Err(err) => {
            warn!("{}; RAM mode: changes will not be kept", err);
            None
        }
    }
}

/// `Some` once the data partition question has an answer (found or ambiguous).
fn decided(devices: &Devices, spec: &DeviceSpec<'_>) -> Option<Choice> {
    match choose::choose_data(&devices.candidates(), spec) {
        Choice::NotFound => None,
        choice => Some(choice),
    }
}

fn ambiguous(devices: &Devices, a: usize, b: usize, spec: &DeviceSpec<'_>) -> Error {
    warn!(
        "data partition {}: both /dev/{} and /dev/{} match",
        Bytes(&spec_text(spec)),
        Bytes(&devices.list[a].name),
        Bytes(&devices.list[b].name)
    );
    let mut both: Text<80> = Text::new();
    let _ = uwrite!(
        both,
        "/dev/{} and /dev/{}",
        Bytes(&devices.list[a].name),
        Bytes(&devices.list[b].name)
    );
    Error::msg(
        "find the data partition",
        &both.0,
        "two different devices carry its label or UUID: remove or relabel one",
    )
}

/// Mounts the data partition read-write at `/run/k1os/data` and makes `/upper`
/// and `/work` when missing. Never formats, repairs or deletes anything.
fn mount_data(device: &Device) -> Result<()> {
    const STEP: &str = "mount the data partition";
    let node = device.node().step(STEP, &device.name)?;
    match &device.probe {
        Some(p) if p.kind == FsKind::Ext4 => {}
        _ => {
            return Err(Error::msg(
                STEP,
                node.bytes(),
                "is not ext4 (the overlay upper layer needs ext4)",
            ));
        }
    }
    let target = c_str(contract::RUN_DATA);
    mounts::mount_device(STEP, node.as_cstr(), target, c"ext4", false)?;
    for dir in [contract::DATA_UPPER_DIR, contract::DATA_WORK_DIR] {
        let path = PathBuf::join(&[contract::RUN_DATA.as_bytes(), b"/", dir.as_bytes()])
            .step(STEP, dir.as_bytes())?;
        if let Err(err) = mounts::ensure_dir_in("prepare the data partition", path.as_cstr()) {
            let _ = rustix::mount::unmount(target, rustix::mount::UnmountFlags::empty());
            return Err(err);
        }
    }
    Ok(())
}

/// RAM mode: a tmpfs of `k1os.ramsize` at `/run/k1os/ram` with `upper` and `work`.
fn mount_ram(config: &BootConfig<'_>) -> Result<()> {
    const STEP: &str = "mount the RAM upper layer";
    let options =
        PathBuf::join(&[b"mode=0755,size=", config.ramsize]).step(STEP, config.ramsize)?;
    mounts::mount_tmpfs(STEP, c_str(contract::RUN_RAM), options.as_cstr())?;
    for dir in [contract::DATA_UPPER_DIR, contract::DATA_WORK_DIR] {
        let path = PathBuf::join(&[contract::RUN_RAM.as_bytes(), b"/", dir.as_bytes()])
            .step(STEP, dir.as_bytes())?;
        mounts::ensure_dir_in(STEP, path.as_cstr())?;
    }
    Ok(())
}

/// The root: the image below, `<upper_root>/upper` above.
fn mount_overlay(upper_root: &str, new_root: &CStr) -> Result<()> {
    const STEP: &str = "mount the overlay root";
    // index=off: with an index, a replaced system.squashfs fails overlayfs'
    // origin check on a persistent upper.
    let options = PathBuf::join(&[
        b"lowerdir=",
        contract::RUN_LOWER.as_bytes(),
        b",upperdir=",
        upper_root.as_bytes(),
        b"/",
        contract::DATA_UPPER_DIR.as_bytes(),
        b",workdir=",
        upper_root.as_bytes(),
        b"/",
        contract::DATA_WORK_DIR.as_bytes(),
        b",index=off",
    ])
    .step(STEP, upper_root.as_bytes())?;
    mounts::make_dir(STEP, new_root)?;
    rustix::mount::mount(
        c"overlay",
        new_root,
        c"overlay",
        MountFlags::empty(),
        options.as_cstr(),
    )
    .step(STEP, options.bytes())
}

/// `k1os.toram`: copies the image into a tmpfs of its size at
/// `/run/k1os/toram` and releases the media. Returns the copy's path.
fn copy_to_ram(image: &PathBuf) -> Result<PathBuf> {
    const STEP: &str = "copy the image to RAM";
    let source = mounts::open_read(STEP, image.as_cstr())?;
    let size = rustix::fs::fstat(&source)
        .step(STEP, image.bytes())?
        .st_size as u64;
    let info = rustix::system::sysinfo();
    let free = info.freeram as u64 * u64::from(info.mem_unit.max(1));
    if size + TORAM_MARGIN > free {
        return Err(Error::sys(STEP, image.bytes(), Errno::NOSPC));
    }
    let mut digits = [0u8; 10];
    let size_kib = loopdev::decimal((size / 1024 + 1024) as u32, &mut digits);
    let options = PathBuf::join(&[b"mode=0755,size=", size_kib, b"k"]).step(STEP, image.bytes())?;
    let dir = c_str(contract::RUN_TORAM);
    mounts::mount_tmpfs(STEP, dir, options.as_cstr())?;
    let copy =
        PathBuf::join(&[contract::RUN_TORAM.as_bytes(), b"/image"]).step(STEP, image.bytes())?;
    let target = rustix::fs::open(
        copy.as_cstr(),
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        FileMode::from_raw_mode(0o444),
    )
    .step(STEP, copy.bytes())?;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = rustix::io::read(&source, &mut buf).step(STEP, image.bytes())?;
        if n == 0 {
            break;
        }
        let mut done = 0;
        while done < n {
            done += rustix::io::write(&target, &buf[done..n]).step(STEP, copy.bytes())?;
        }
    }
    drop(source);
    let _ = rustix::mount::unmount(
        c_str(contract::RUN_MEDIA),
        rustix::mount::UnmountFlags::DETACH,
    );
    Ok(copy)
}

/// What stage 1 did, for `/run/k1os/boot`.
#[derive(Default)]
struct Record {
    times: heapless::Vec<(&'static str, u64), 8>,
    media: Option<usize>,
    data: Option<usize>,
}

impl Record {
    fn phase(&mut self, name: &'static str, detail: impl FnOnce(&mut log::Line)) {
        let us = log::phase(name, detail);
        let _ = self.times.push((name, us));
    }

    /// `/run/k1os/boot`: `key=value` lines for stage 2 (keys in `contract::boot_file`).
    fn write_boot_file(&self, config: &BootConfig<'_>, devices: &Devices) -> Result<()> {
        const STEP: &str = "write the boot record";
        let mut text: Text<1024> = Text::new();
        let mode = if self.data.is_some() {
            "persist"
        } else {
            "ram"
        };
        let _ = uwrite!(text, "{}={}\n", boot_file::MODE, mode);
        let _ = uwrite!(
            text,
            "{}={}\n",
            boot_file::MEDIA,
            DevName(self.media.map(|i| &devices.list[i]))
        );
        let _ = uwrite!(
            text,
            "{}={}\n",
            boot_file::DATA,
            DevName(self.data.map(|i| &devices.list[i]))
        );
        let _ = uwrite!(text, "{}={}\n", boot_file::IMAGE, Bytes(config.image));
        let _ = uwrite!(text, "{}={}\n", boot_file::INIT, Bytes(config.init));
        for (name, us) in &self.times {
            let _ = uwrite!(text, "{}{}={}\n", boot_file::TIME_PREFIX, *name, *us);
        }
        let path = c_str(contract::RUN_BOOT_FILE);
        let file = rustix::fs::open(
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::CLOEXEC,
            FileMode::from_raw_mode(0o644),
        )
        .step(STEP, path.to_bytes())?;
        rustix::io::write(&file, &text.0)
            .step(STEP, path.to_bytes())
            .map(drop)
    }
}

/// `/dev/sr0`, or `none`.
struct DevName<'a>(Option<&'a Device>);

impl uDisplay for DevName<'_> {
    fn fmt<W: uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> core::result::Result<(), W::Error> {
        match self.0 {
            Some(d) => uwrite!(f, "/dev/{}", Bytes(&d.name)),
            None => f.write_str("none"),
        }
    }
}

/// `iso9660 "K1OS"`: a device's filesystem and label, for messages.
struct Describe<'a>(&'a Device);

impl uDisplay for Describe<'_> {
    fn fmt<W: uWrite + ?Sized>(
        &self,
        f: &mut ufmt::Formatter<'_, W>,
    ) -> core::result::Result<(), W::Error> {
        f.write_str(mounts::fs_name(self.0.probe.as_ref()))?;
        match &self.0.probe {
            Some(p) if !p.label().is_empty() => uwrite!(f, " \"{}\"", Bytes(p.label())),
            _ => Ok(()),
        }
    }
}

/// `LABEL=K1OS-DATA`, `UUID=…` or the path, as the user wrote it.
fn spec_text(spec: &DeviceSpec<'_>) -> heapless::Vec<u8, 96> {
    let (prefix, value): (&[u8], &[u8]) = match spec {
        DeviceSpec::Label(v) => (b"LABEL=", v),
        DeviceSpec::Uuid(v) => (b"UUID=", v),
        DeviceSpec::Path(v) => (b"", v),
    };
    let mut out = heapless::Vec::new();
    let _ = out.extend_from_slice(prefix);
    let _ = out.extend_from_slice(&value[..value.len().min(96 - prefix.len())]);
    out
}

/// A contract path as a C string (they hold no NUL; the fallback is unreachable).
fn c_str(path: &'static str) -> &'static CStr {
    match path {
        contract::RUN_MEDIA => c"/run/k1os/media",
        contract::RUN_LOWER => c"/run/k1os/lower",
        contract::RUN_DATA => c"/run/k1os/data",
        contract::RUN_RAM => c"/run/k1os/ram",
        contract::RUN_TORAM => c"/run/k1os/toram",
        contract::RUN_BOOT_FILE => c"/run/k1os/boot",
        contract::NEW_ROOT => c"/newroot",
        _ => c"/nonexistent",
    }
}

/// Reads `/proc/cmdline` into `buf`; an unreadable one is an empty line (all defaults).
fn read_cmdline(buf: &mut [u8]) -> &[u8] {
    let n = match rustix::fs::open(
        c"/proc/cmdline",
        OFlags::RDONLY | OFlags::CLOEXEC,
        FileMode::empty(),
    ) {
        Ok(fd) => rustix::io::read(&fd, &mut *buf).unwrap_or(0),
        Err(e) => {
            warn!(
                "cannot read /proc/cmdline ({}): using defaults",
                error::ErrnoName(e)
            );
            0
        }
    };
    &buf[..n]
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

/// The one fatal path: report the error on the console and in the kernel log,
/// then do what `k1os.onfail` says. PID 1 must never exit (the kernel would
/// panic with a message that buries ours), so every branch ends in a reboot,
/// a power-off, a halt or an endless sleep.
fn fatal(err: &Error, onfail: Option<OnFail>) -> ! {
    log::emit(log::Level::Error, |l| {
        let _ = uwrite!(l, "FATAL: {}", err);
    });
    let has_shell = mounts::exists(RESCUE_SHELL);
    let action = onfail.unwrap_or(if has_shell {
        OnFail::Shell
    } else {
        OnFail::Reboot
    });
    match action {
        OnFail::Shell if has_shell => {
            warn!(
                "starting the rescue shell {}",
                Bytes(RESCUE_SHELL.to_bytes())
            );
            let argv = [RESCUE_SHELL.as_ptr().cast::<u8>(), core::ptr::null()];
            let envp = [c"TERM=linux".as_ptr().cast::<u8>(), core::ptr::null()];
            let errno = sys::execve(RESCUE_SHELL, &argv, &envp);
            warn!(
                "cannot start the rescue shell ({})",
                error::ErrnoName(errno)
            );
        }
        OnFail::Shell => warn!("no rescue shell in the initramfs"),
        _ => {}
    }
    rustix::fs::sync();
    let command = match action {
        OnFail::Poweroff => rustix::system::RebootCommand::PowerOff,
        OnFail::Halt => rustix::system::RebootCommand::Halt,
        OnFail::Shell | OnFail::Reboot => {
            warn!("rebooting in {} s", REBOOT_DELAY_S);
            sys::sleep_ms(REBOOT_DELAY_S * 1000);
            rustix::system::RebootCommand::Restart
        }
    };
    if let Err(e) = rustix::system::reboot(command) {
        warn!(
            "reboot(2) failed ({}): waiting forever",
            error::ErrnoName(e)
        );
    }
    loop {
        sys::sleep_ms(u32::MAX);
    }
}
