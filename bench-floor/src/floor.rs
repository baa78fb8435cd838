//! BENCHMARK FIXTURE — the floor of stage 1. Not K1OS's stage 1 (that is
//! `init-nostd`) and never shipped: `host-tools bench` boots it next to
//! `init-nostd` and the busybox reference (`ci/bench/reference-init.sh`).
//!
//! It does only the kernel's part of stage 1, in the same order and with the
//! same options as `init-nostd`: mount `/dev /proc /sys /run`, mount the media
//! (`/dev/sr0`, iso9660, read-only), attach the image to `/dev/loop0` and mount
//! it (squashfs), mount the upper layer (ext4 `/dev/vda`, or a tmpfs), mount
//! the overlay on `/newroot`, move the four mounts into it, move it onto `/`,
//! `chroot` and `execve` stage 2. Devices, paths and mode are hard-coded: no
//! command line, no discovery, no probing, no checks, no cleanup of the
//! initramfs. Its only output is the markers the bench reads (one
//! `k1os-init: <phase> (+<µs> us): floor` line per phase and
//! `k1os-init: exec /sbin/init`, to `/dev/kmsg`), or the fatal marker when a
//! call fails (then it powers off, so a broken floor fails a boot quickly).
//!
//! Under QEMU TCG most of stage 1's time is this kernel work; `init-nostd`'s
//! time over the floor's is stage 1's own overhead.
//!
//! Raw system calls only (`linux-raw-sys` for the numbers and structs); the
//! paths, markers and the phase line's format come from the contract library
//! (`k1os_contract`), so the bench reads the floor's lines with the same
//! parser as stage 1's.

use core::arch::asm;
use k1os_contract::contract::{self, phase};
use k1os_contract::ufmt::{self, uWrite};
use linux_raw_sys::general as g;
use linux_raw_sys::loop_device as lo;

/// Where the overlay's upper layer lives.
// Each binary constructs one of the two.
#[allow(dead_code)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Upper {
    /// A tmpfs on `/run/k1os/ram` (RAM mode).
    Ram,
    /// The ext4 on `/dev/vda`, mounted on `/run/k1os/data` (persistent mode).
    Persist,
}

/// The media device: the first CD-ROM (the bench attaches the ISO there).
const MEDIA_DEVICE: &[u8] = b"/dev/sr0";
/// The loop device the image goes on (the kernel makes loop0–7 at boot).
const LOOP_DEVICE: &[u8] = b"/dev/loop0";
/// The data partition: the first virtio disk.
const DATA_DEVICE: &[u8] = b"/dev/vda";
/// `size=` of the RAM upper: the contract's default.
const RAM_OPTIONS: &[u8] = b"mode=0755,size=50%";
/// Room for the longest path or option string built here.
const BUF: usize = 256;

/// The floor, top to bottom. Never returns: it execs stage 2 or powers off.
pub fn run(upper: Upper) -> ! {
    let start = now_us();
    let secure = g::MS_NOSUID | g::MS_NODEV | g::MS_NOEXEC;
    mount(
        b"devtmpfs",
        b"/dev",
        b"devtmpfs",
        g::MS_NOSUID,
        b"mode=0755",
    );
    mount(b"proc", b"/proc", b"proc", secure, b"");
    mount(b"sysfs", b"/sys", b"sysfs", secure, b"");
    mount(
        b"tmpfs",
        b"/run",
        b"tmpfs",
        g::MS_NOSUID | g::MS_NODEV,
        b"mode=0755",
    );
    let kmsg = open(b"/dev/kmsg", g::O_WRONLY);
    let log = |name: &str| log_phase(kmsg, name, now_us() - start);
    log(phase::EARLY);

    mkdir(&[contract::RUN_DIR.as_bytes()]);
    let media = mkdir(&[contract::RUN_MEDIA.as_bytes()]);
    mount(
        MEDIA_DEVICE,
        &media,
        b"iso9660",
        g::MS_RDONLY | g::MS_NOATIME,
        b"",
    );
    log(phase::MEDIA);

    let image = open(
        &join(&[
            contract::RUN_MEDIA.as_bytes(),
            contract::DEFAULT_IMAGE.as_bytes(),
        ]),
        g::O_RDONLY,
    );
    let loop_fd = open(LOOP_DEVICE, g::O_RDONLY);
    attach(loop_fd, image);
    let lower = mkdir(&[contract::RUN_LOWER.as_bytes()]);
    mount(
        LOOP_DEVICE,
        &lower,
        b"squashfs",
        g::MS_RDONLY | g::MS_NOATIME,
        b"",
    );
    close(loop_fd);
    close(image);
    log(phase::IMAGE);

    let upper_root = match upper {
        Upper::Persist => {
            let data = mkdir(&[contract::RUN_DATA.as_bytes()]);
            mount(DATA_DEVICE, &data, b"ext4", g::MS_NOATIME, b"");
            log(phase::DATA);
            contract::RUN_DATA
        }
        Upper::Ram => {
            let ram = mkdir(&[contract::RUN_RAM.as_bytes()]);
            mount(
                b"tmpfs",
                &ram,
                b"tmpfs",
                g::MS_NOSUID | g::MS_NODEV,
                RAM_OPTIONS,
            );
            for dir in [contract::DATA_UPPER_DIR, contract::DATA_WORK_DIR] {
                mkdir(&[contract::RUN_RAM.as_bytes(), b"/", dir.as_bytes()]);
            }
            log(phase::RAM);
            contract::RUN_RAM
        }
    };

    let root = upper_root.as_bytes();
    let options = join(&[
        b"lowerdir=",
        contract::RUN_LOWER.as_bytes(),
        b",upperdir=",
        root,
        b"/",
        contract::DATA_UPPER_DIR.as_bytes(),
        b",workdir=",
        root,
        b"/",
        contract::DATA_WORK_DIR.as_bytes(),
        b",index=off",
    ]);
    let new_root = contract::NEW_ROOT.as_bytes();
    mount(b"overlay", new_root, b"overlay", 0, &options);
    log(phase::OVERLAY);

    for dir in [&b"/dev"[..], b"/proc", b"/sys", b"/run"] {
        mount(dir, &join(&[new_root, dir]), b"", g::MS_MOVE, b"");
    }
    log(phase::SWITCH_ROOT);

    syscall_ok(
        b"chdir",
        syscall1(g::__NR_chdir, cstr(new_root).as_ptr() as usize),
    );
    mount(b".", b"/", b"", g::MS_MOVE, b"");
    syscall_ok(b"chroot", syscall1(g::__NR_chroot, c".".as_ptr() as usize));
    syscall_ok(b"chdir", syscall1(g::__NR_chdir, c"/".as_ptr() as usize));

    let init = cstr(contract::DEFAULT_INIT.as_bytes());
    let mut line = Line::new();
    line.push(contract::MARKER_EXEC.as_bytes());
    line.push(contract::DEFAULT_INIT.as_bytes());
    line.write(kmsg);
    let argv = [init.as_ptr(), core::ptr::null()];
    let envp = [core::ptr::null::<u8>()];
    let ret = syscall3(
        g::__NR_execve,
        init.as_ptr() as usize,
        argv.as_ptr() as usize,
        envp.as_ptr() as usize,
    );
    fail(b"execve", ret)
}

/// `mount(source, target, fstype, flags, data)`; an empty `fstype` or `data`
/// is passed as NULL.
fn mount(source: &[u8], target: &[u8], fstype: &[u8], flags: u32, data: &[u8]) {
    let (source, target, fstype, data) = (cstr(source), cstr(target), cstr(fstype), cstr(data));
    let ptr = |b: &[u8; BUF]| {
        if b[0] == 0 { 0 } else { b.as_ptr() as usize }
    };
    // SAFETY: the strings are NUL-terminated buffers that outlive the call.
    let ret = unsafe {
        syscall5(
            g::__NR_mount,
            source.as_ptr() as usize,
            target.as_ptr() as usize,
            ptr(&fstype),
            flags as usize,
            ptr(&data),
        )
    };
    syscall_ok(b"mount", ret);
}

/// `mkdir(path, 0755)` of the concatenated parts; returns the path (without NUL).
fn mkdir(parts: &[&[u8]]) -> [u8; BUF] {
    let path = join(parts);
    syscall_ok(
        b"mkdir",
        syscall2(g::__NR_mkdir, path.as_ptr() as usize, 0o755),
    );
    path
}

/// `open(path, flags | O_CLOEXEC)`.
fn open(path: &[u8], flags: u32) -> usize {
    let path = cstr(path);
    let ret = syscall3(
        g::__NR_open,
        path.as_ptr() as usize,
        (flags | g::O_CLOEXEC) as usize,
        0,
    );
    syscall_ok(b"open", ret) as usize
}

fn close(fd: usize) {
    syscall1(g::__NR_close, fd);
}

/// `ioctl(loop_fd, LOOP_CONFIGURE, {fd: image, read-only, autoclear})`.
fn attach(loop_fd: usize, image: usize) {
    // SAFETY: loop_config is plain old data; all zeroes is a valid value.
    let mut config: lo::loop_config = unsafe { core::mem::zeroed() };
    config.fd = image as u32;
    config.info.lo_flags = lo::LO_FLAGS_READ_ONLY as u32 | lo::LO_FLAGS_AUTOCLEAR as u32;
    let ret = syscall3(
        g::__NR_ioctl,
        loop_fd,
        lo::LOOP_CONFIGURE as usize,
        &raw const config as usize,
    );
    syscall_ok(b"LOOP_CONFIGURE", ret);
}

/// `k1os-init: <phase> (+<µs> us): floor` to `/dev/kmsg`.
fn log_phase(kmsg: usize, name: &str, us: u64) {
    let mut line = Line::new();
    line.push(contract::LOG_PREFIX.as_bytes());
    let _ = phase::write_head(&mut line, name, us);
    line.push(b"floor");
    line.write(kmsg);
}

/// A system call's result, or the fatal path.
fn syscall_ok(what: &[u8], ret: isize) -> isize {
    if (-4095..0).contains(&ret) {
        fail(what, ret)
    }
    ret
}

/// `k1os-init: FATAL: floor: <call> failed (errno N)` to `/dev/kmsg` (or the
/// console when `/dev/kmsg` is not there yet), then power off.
fn fail(what: &[u8], ret: isize) -> ! {
    let mut line = Line::new();
    line.push(contract::MARKER_FATAL.as_bytes());
    line.push(b"floor: ");
    line.push(what);
    let _ = ufmt::uwrite!(line, " failed (errno {})", ret.unsigned_abs() as u64);
    let kmsg = syscall2(
        g::__NR_open,
        c"/dev/kmsg".as_ptr() as usize,
        g::O_WRONLY as usize,
    );
    line.write(if kmsg >= 0 { kmsg as usize } else { 1 });
    syscall1(g::__NR_sync, 0);
    syscall4(
        g::__NR_reboot,
        g::LINUX_REBOOT_MAGIC1 as usize,
        g::LINUX_REBOOT_MAGIC2 as usize,
        g::LINUX_REBOOT_CMD_POWER_OFF as usize,
        0,
    );
    loop {
        core::hint::spin_loop();
    }
}

/// `clock_gettime(CLOCK_MONOTONIC)` in microseconds.
fn now_us() -> u64 {
    let mut ts = g::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    syscall2(
        g::__NR_clock_gettime,
        g::CLOCK_MONOTONIC as usize,
        &raw mut ts as usize,
    );
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// One kmsg record: `<6>` (info) and the text, written with one `write`.
struct Line {
    buf: [u8; BUF],
    len: usize,
}

impl Line {
    fn new() -> Line {
        let mut line = Line {
            buf: [0; BUF],
            len: 0,
        };
        line.push(b"<6>");
        line
    }

    fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.len < BUF - 1 {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn write(mut self, fd: usize) {
        self.push(b"\n");
        syscall3(g::__NR_write, fd, self.buf.as_ptr() as usize, self.len);
    }
}

impl uWrite for Line {
    type Error = core::convert::Infallible;
    fn write_str(&mut self, s: &str) -> Result<(), Self::Error> {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// The parts concatenated and NUL-terminated (cut to fit).
fn join(parts: &[&[u8]]) -> [u8; BUF] {
    let mut out = [0u8; BUF];
    let mut len = 0;
    for part in parts {
        for &b in *part {
            if len < BUF - 1 {
                out[len] = b;
                len += 1;
            }
        }
    }
    out
}

/// `bytes` (up to a NUL, if any) NUL-terminated.
fn cstr(bytes: &[u8]) -> [u8; BUF] {
    join(&[until_nul(bytes)])
}

/// The bytes of a [`join`]ed buffer before its NUL.
fn until_nul(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

fn syscall1(nr: u32, a: usize) -> isize {
    syscall4(nr, a, 0, 0, 0)
}

fn syscall2(nr: u32, a: usize, b: usize) -> isize {
    syscall4(nr, a, b, 0, 0)
}

fn syscall3(nr: u32, a: usize, b: usize, c: usize) -> isize {
    syscall4(nr, a, b, c, 0)
}

fn syscall4(nr: u32, a: usize, b: usize, c: usize, d: usize) -> isize {
    // SAFETY: every caller here passes pointers to live, NUL-terminated or
    // correctly sized buffers for the call it makes.
    unsafe { syscall5(nr, a, b, c, d, 0) }
}

/// One raw x86_64 Linux system call.
///
/// # Safety
/// The arguments must be valid for system call `nr`.
unsafe fn syscall5(nr: u32, a: usize, b: usize, c: usize, d: usize, e: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall ABI: number in rax, arguments in rdi, rsi,
    // rdx, r10, r8; the kernel clobbers rcx and r11.
    unsafe {
        asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a, in("rsi") b,
            in("rdx") c, in("r10") d, in("r8") e, lateout("rcx") _, lateout("r11") _,
            options(nostack));
    }
    ret
}

/// The ELF entry point: an aligned stack, then `main`.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",
        "and rsp, -16",
        "call {main}",
        "ud2",
        main = sym crate::main,
    )
}

/// `memcpy(3)` (the compiler calls it for buffer copies).
///
/// # Safety
/// `dest` and `src` are valid for `n` bytes and do not overlap.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; DF is clear per the ABI.
    unsafe {
        asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

/// `memset(3)` (the compiler calls it to zero buffers).
///
/// # Safety
/// `dest` is valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dest: *mut u8, byte: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller's contract; DF is clear per the ABI.
    unsafe {
        asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") byte as u8,
            options(nostack, preserves_flags));
    }
    dest
}

/// Debug builds only: their unoptimised `core` keeps unwind tables that name
/// the personality routine, so the link needs the symbol. Nothing unwinds
/// (`panic = "abort"`), so it is never called.
#[cfg(debug_assertions)]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    fail(b"panic", 0)
}
