//! The runtime a freestanding static binary needs and libc would otherwise give:
//! the process entry point, the memory functions the compiler calls, and the
//! panic handler.

use crate::sys;

/// The ELF entry point. The kernel starts PID 1 here with the stack pointer on
/// `argc`; stage 1 reads its arguments from `/proc/cmdline`, so it only needs
/// an aligned stack and a call into Rust.
#[unsafe(naked)]
#[unsafe(no_mangle)]
unsafe extern "C" fn _start() -> ! {
    core::arch::naked_asm!(
        "xor ebp, ebp",  // mark the outermost frame for debuggers
        "and rsp, -16",  // the SysV ABI wants 16-byte alignment at a call
        "call {main}",
        "ud2",
        main = sym crate::main,
    )
}

/// `memcpy(3)`. A Rust loop here could be compiled back into a call to `memcpy`
/// itself; `rep movsb` cannot, and is fast on every x86_64 since Ivy Bridge.
///
/// # Safety
/// `dest` and `src` are valid for `n` bytes and do not overlap.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid and disjoint; the
    // direction flag is clear per the ABI, so `rep movsb` copies forwards.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _, inout("rsi") src => _,
            options(nostack, preserves_flags));
    }
    dest
}

/// `memmove(3)`: like `memcpy`, but the ranges may overlap.
///
/// # Safety
/// `dest` and `src` are valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize).wrapping_sub(src as usize) >= n {
        // SAFETY: `dest` does not start inside `src..src+n`, so a forward copy
        // never reads a byte it already overwrote.
        return unsafe { memcpy(dest, src, n) };
    }
    // SAFETY: `dest` starts inside the source range: copy backwards from the
    // last byte with the direction flag set, and clear it again as the ABI requires.
    unsafe {
        core::arch::asm!("std", "rep movsb", "cld",
            inout("rcx") n => _, inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
            options(nostack));
    }
    dest
}

/// `memset(3)`.
///
/// # Safety
/// `dest` is valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memset(dest: *mut u8, byte: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees `dest..dest+n` is writable; DF is clear.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _, in("al") byte as u8,
            options(nostack, preserves_flags));
    }
    dest
}

/// `memcmp(3)`. LLVM does not turn a comparison loop back into a `memcmp` call.
///
/// # Safety
/// `a` and `b` are valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n` and the caller guarantees `n` readable bytes behind both.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return x as i32 - y as i32;
        }
        i += 1;
    }
    0
}

/// `bcmp(3)`: equality only; LLVM emits it for `==` on byte slices.
///
/// # Safety
/// `a` and `b` are valid for `n` bytes.
#[unsafe(no_mangle)]
unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as memcmp.
    unsafe { memcmp(a, b, n) }
}

/// A panic is a bug in stage 1; PID 1 must still not exit (that panics the
/// kernel with a message that hides ours). Say so, then wait for a human.
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    let msg = b"k1os-init: FATAL: internal error (panic) in stage 1; rebooting in 30 s\n";
    sys::write_raw(2, msg);
    sys::sleep_ms(30_000);
    sys::reboot_restart()
}

/// Debug builds only: their unoptimised `core` keeps unwind tables that name
/// the personality routine, so the link needs the symbol. Nothing unwinds
/// (`panic = "abort"`), so it is never called; release builds (LTO) do not
/// reference it.
#[cfg(debug_assertions)]
#[unsafe(no_mangle)]
extern "C" fn rust_eh_personality() {}

/// `strlen(3)`: `CStr::from_ptr` calls it (directory entry names from rustix).
///
/// # Safety
/// `s` points to a NUL-terminated string.
#[unsafe(no_mangle)]
unsafe extern "C" fn strlen(s: *const u8) -> usize {
    let mut n = 0;
    // SAFETY: the caller guarantees a NUL within the allocation, so every byte
    // up to and including it is readable.
    while unsafe { *s.add(n) } != 0 {
        n += 1;
    }
    n
}
