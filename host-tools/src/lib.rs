//! The work behind `host-tools`' subcommands. Only this crate runs external
//! programs, and only through [`run`], which names the program when it fails.
pub mod doctor;
pub mod initramfs;
pub mod kernel;
pub mod paths;
pub mod qemu;
pub mod run;
pub mod testimg;
pub mod ui;
