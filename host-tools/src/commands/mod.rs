pub mod bench;
pub mod doctor;
pub mod initramfs;
pub mod kernel;
pub mod packages;
pub mod rootfs;
