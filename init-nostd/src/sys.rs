//! The few system calls stage 1 makes without rustix: rustix 1.x does not
//! export `execve`/`exit_group`, and its `clock_gettime`/`nanosleep` come with
//! the vDSO loader, which costs more bytes than stage 1 saves by using it.
//! Everything else goes through rustix.

use core::arch::asm;
use core::ffi::CStr;
use linux_raw_sys::general as g;
use rustix::io::Errno;

/// One raw x86_64 Linux system call with up to four arguments.
///
/// # Safety
/// The arguments must be valid for system call `nr` (pointers live and sized).
unsafe fn syscall4(nr: u32, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the x86_64 syscall ABI: number in rax, arguments in rdi, rsi, rdx,
    // r10; the kernel clobbers rcx and r11. Validity of the arguments is the
    // caller's contract.
    unsafe {
        asm!("syscall", inlateout("rax") nr as isize => ret, in("rdi") a, in("rsi") b, in("rdx") c,
            in("r10") d, lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ret
}

fn check(ret: isize) -> Result<usize, Errno> {
    if (-4095..0).contains(&ret) {
        Err(Errno::from_raw_os_error(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// `write(fd, buf, len)` on a raw descriptor, for the panic path and for the
/// console before anything is set up; errors are ignored (nowhere to report them).
pub fn write_raw(fd: i32, buf: &[u8]) {
    // SAFETY: `buf` is a live slice of `buf.len()` bytes.
    unsafe {
        syscall4(
            g::__NR_write,
            fd as usize,
            buf.as_ptr() as usize,
            buf.len(),
            0,
        )
    };
}

/// `clock_gettime(CLOCK_MONOTONIC)` in microseconds.
///
/// # References
/// - [`clock_gettime(2)`](https://man7.org/linux/man-pages/man2/clock_gettime.2.html)
pub fn monotonic_us() -> u64 {
    let mut ts = g::__kernel_timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a writable `struct timespec` the kernel fills in.
    unsafe {
        syscall4(
            g::__NR_clock_gettime,
            g::CLOCK_MONOTONIC as usize,
            &raw mut ts as usize,
            0,
            0,
        )
    };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// `nanosleep`, for `ms` milliseconds (interruptions just end the sleep early).
///
/// # References
/// - [`nanosleep(2)`](https://man7.org/linux/man-pages/man2/nanosleep.2.html)
#[inline(never)]
pub fn sleep_ms(ms: u32) {
    let ts = g::__kernel_timespec {
        tv_sec: (ms / 1000) as _,
        tv_nsec: ((ms % 1000) * 1_000_000) as _,
    };
    // SAFETY: `ts` is a valid `struct timespec`; the remainder pointer may be NULL.
    unsafe { syscall4(g::__NR_nanosleep, &raw const ts as usize, 0, 0, 0) };
}

/// `ioctl(fd, request, arg)` returning the kernel's non-negative result.
///
/// # Safety
/// `arg` must be what `request` expects (an integer, or a pointer to a live
/// struct of the right type and size).
///
/// # References
/// - [`ioctl(2)`](https://man7.org/linux/man-pages/man2/ioctl.2.html)
pub unsafe fn ioctl(
    fd: rustix::fd::BorrowedFd<'_>,
    request: u32,
    arg: usize,
) -> Result<usize, Errno> {
    use rustix::fd::AsRawFd;
    // SAFETY: forwarded from the caller.
    check(unsafe {
        syscall4(
            g::__NR_ioctl,
            fd.as_raw_fd() as usize,
            request as usize,
            arg,
            0,
        )
    })
}

/// `execve(path, argv, envp)`; returns only on failure.
///
/// # References
/// - [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html)
pub fn execve(path: &CStr, argv: &[*const u8], envp: &[*const u8]) -> Errno {
    // An empty or unterminated vector would make the kernel read past it.
    if argv.last() != Some(&core::ptr::null()) || envp.last() != Some(&core::ptr::null()) {
        return Errno::INVAL;
    }
    // SAFETY: `path` is NUL-terminated; `argv` and `envp` are NULL-terminated
    // arrays (checked above) of pointers the caller keeps alive.
    let ret = unsafe {
        syscall4(
            g::__NR_execve,
            path.as_ptr() as usize,
            argv.as_ptr() as usize,
            envp.as_ptr() as usize,
            0,
        )
    };
    check(ret).err().unwrap_or(Errno::INVAL)
}

/// `exit_group(code)`: only for the "not PID 1" refusal; PID 1 never exits.
pub fn exit(code: i32) -> ! {
    // SAFETY: exit_group takes an integer and does not return.
    unsafe { syscall4(g::__NR_exit_group, code as usize, 0, 0, 0) };
    // Not reached; sleeping rather than spinning keeps clippy's
    // `empty_loop` (and anyone reading) content.
    loop {
        sleep_ms(u32::MAX);
    }
}

/// `sync(); reboot(RESTART)`, the last resort; waits forever if even that fails.
pub fn reboot_restart() -> ! {
    rustix::fs::sync();
    let _ = rustix::system::reboot(rustix::system::RebootCommand::Restart);
    loop {
        sleep_ms(60_000);
    }
}
