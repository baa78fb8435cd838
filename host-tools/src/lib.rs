//! The work behind `host-tools`' subcommands. Only this crate runs external
//! programs, and only through [`run`], which names the program when it fails:
//! nothing else in `host-tools/src` uses `duct` or `std::process::Command`
//! (`ci/test.sh` checks it). Tests are exempt: `host-tools/tests/` and
//! init-nostd's probe tests run programs directly.
//!
//! Every VM (tests, benchmarks, `host-tools qemu`) is a [`vm::Machine`].
pub mod bench;
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
pub mod repo;
pub mod rootfs;
pub mod run;
pub mod testimg;
pub mod ui;
pub mod verity;
pub mod vm;
pub mod warp_build;
