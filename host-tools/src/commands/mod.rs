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

/// The default of `--kernel-modules` (initramfs, rootfs): the module tree of
/// the kernel in `build/kernel/`, which decides like it decides what `iso`
/// and the tests boot. Debian's kernel has its drivers as modules and links
/// its tree there (`build/kernel/modules`); K1OS's own have them built in
/// and no link.
pub fn kernel_modules_of_build() -> Option<std::path::PathBuf> {
    let link = host_tools::kernel::output_dir().join("modules");
    link.exists().then(|| {
        host_tools::ui::note(&format!(
            "using the modules of {} (the kernel in {} is the debian profile's)",
            link.display(),
            host_tools::kernel::output_dir().display()
        ));
        link
    })
}
