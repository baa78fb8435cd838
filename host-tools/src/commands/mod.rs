pub mod doctor;
pub mod initramfs;
pub mod kernel;
