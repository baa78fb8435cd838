//! The work behind `host-tools`' subcommands. Only this crate runs external
//! programs, and only through [`run`], which names the program when it fails.
pub mod bench;
pub mod console;
pub mod doctor;
pub mod flat_toml;
pub mod hash;
pub mod initramfs;
pub mod iso;
pub mod kernel;
pub mod notices;
pub mod packages;
pub mod paths;
pub mod persist;
pub mod qemu;
pub mod rootfs;
pub mod run;
pub mod testimg;
pub mod ui;
pub mod vm;
