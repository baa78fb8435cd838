pub mod bench;
pub mod doctor;
pub mod initramfs;
pub mod iso;
pub mod kernel;
pub mod make_persist;
pub mod packages;
pub mod qemu;
pub mod repo;
pub mod rootfs;

/// A value as the command line spells it (`gzip`, `qcow2`), for messages.
pub fn spelling<T: clap::ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}
