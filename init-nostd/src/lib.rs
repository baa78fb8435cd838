//! The K1OS boot contract in code, shared by stage 1 (`init-nostd`'s binary)
//! and `host-tools`, so the ISO's `grub.cfg`, the tests' log parsers and stage 1
//! can never disagree. Everything here is pure: bytes in, values out, no syscalls.
//! It builds `no_std` for stage 1 and with `std` for the host's unit tests.
//! No `unsafe` anywhere in it (stage 1's system calls are in the binary).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod choose;
pub mod cmdline;
pub mod contract;
pub mod errno;
pub mod fmt;
pub mod kmod;
pub mod probe;
pub mod settle;
pub mod verity;

/// The formatting crate of [`contract::phase::write_head`] and the `uDisplay`
/// types, for users that write to their own [`ufmt::uWrite`].
pub use ufmt;
