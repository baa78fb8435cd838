//! The K1OS boot contract in code, shared by stage 1 (`init-nostd`'s binary)
//! and `host-tools`, so the ISO's `grub.cfg`, the tests' log parsers and stage 1
//! can never disagree. Everything here is pure: bytes in, values out, no syscalls.
//! It builds `no_std` for stage 1 and with `std` for the host's unit tests.
#![cfg_attr(not(test), no_std)]

pub mod choose;
pub mod cmdline;
pub mod contract;
pub mod errno;
pub mod probe;
