//! QEMU boot tests: the kernel (`build/kernel/bzImage`, qemu profile) and the
//! initramfs (`build/initramfs.img`, stage 1) boot test media made by
//! `host_tools::testimg`, whose stage 2 is a script that reports what stage 1
//! set up on the serial console and powers off.
//!
//! Run `host-tools kernel --profile qemu` and `host-tools initramfs` first;
//! without their outputs every test here fails (never passes silently).
//! `K1OS_TEST_KERNEL` / `K1OS_TEST_INITRD` point the tests at other files;
//! `K1OS_TEST_INITRD=reference` packs and boots the reference busybox-script
//! stage 1 (`ci/bench/reference-init.sh`, a benchmark fixture) instead of
//! init-nostd.
//!
//! Serial logs are kept in `build/test-logs/<boot>.log`; test media in
//! `build/test-images/`. VMs run one at a time (`host_tools::qemu::vm_lock`),
//! with TCG unless `K1OS_ACCEL` says otherwise (see `host_tools::qemu::Accel`).
use std::path::PathBuf;
use std::time::Duration;

use host_tools::paths;
use host_tools::qemu::{BootLog, Drive, KERNEL_PANIC, Vm};
use host_tools::testimg::{self, Media};
use k1os_contract::contract;

/// Per boot. TCG boots take 3–8 s; a loaded machine can be much slower.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// The kernel and initramfs under test.
fn boot_files() -> (PathBuf, PathBuf) {
    let build = paths::build_dir();
    let pick =
        |var: &str, default: PathBuf| std::env::var_os(var).map(PathBuf::from).unwrap_or(default);
    let kernel = pick("K1OS_TEST_KERNEL", build.join("kernel/bzImage"));
    let mut initrd = pick("K1OS_TEST_INITRD", build.join("initramfs.img"));
    if initrd.as_os_str() == "reference" {
        initrd = reference_initramfs();
    }
    let missing: Vec<String> = [&kernel, &initrd]
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        panic!(
            "missing {}: run `./k1os kernel --profile qemu` and `./k1os initramfs` first \
             (or point K1OS_TEST_KERNEL / K1OS_TEST_INITRD at a kernel and an initramfs)",
            missing.join(" and ")
        );
    }
    (kernel, initrd)
}

/// The reference stage 1 packed once per process.
fn reference_initramfs() -> PathBuf {
    static PACKED: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut slot = PACKED.lock().unwrap_or_else(|p| p.into_inner());
    slot.get_or_insert_with(|| {
        let out = testimg::images_dir().join("reference-initramfs.img");
        testimg::reference_initramfs(&out)
            .unwrap_or_else(|e| panic!("packing the reference initramfs: {e:?}"));
        out
    })
    .clone()
}

fn vm() -> Vm {
    let (kernel, initrd) = boot_files();
    Vm::new(kernel).initrd(initrd)
}

fn media() -> Media {
    testimg::media().unwrap_or_else(|e| panic!("building the test media: {e:?}"))
}

/// `build/test-images/<test>/`, emptied.
fn work_dir(test: &str) -> PathBuf {
    let dir = testimg::images_dir().join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn boot(vm: &Vm, name: &str) -> BootLog {
    let log = vm
        .run(name, BOOT_TIMEOUT)
        .unwrap_or_else(|e| panic!("running QEMU for {name}: {e:?}"));
    eprintln!(
        "{name}: {:?} after {:.1} s ({:?}); serial log {}",
        log.outcome,
        log.elapsed.as_secs_f64(),
        log.accel,
        log.log_path.display()
    );
    log
}

/// `k1os-init: exec /sbin/init`.
fn exec_marker() -> String {
    format!("{}{}", contract::MARKER_EXEC, contract::DEFAULT_INIT)
}

/// A `key=value` of `/run/k1os/boot` as the test stage 2 printed it.
fn boot_value<'a>(log: &'a BootLog, key: &str) -> &'a str {
    let marker = format!("{}{key}=", testimg::STAGE2_BOOT_LINE);
    log.value_after(&marker).unwrap_or_else(|| {
        panic!(
            "{}",
            log.failure(&format!("/run/k1os/boot has no `{key}=` line"))
        )
    })
}

/// Stage 1 handed over to the test stage 2, which ran to its end and powered off.
fn assert_reached_stage2(log: &BootLog) {
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(contract::MARKER_FATAL);
    log.assert_order(&exec_marker(), testimg::STAGE2_UP);
    log.assert_line(testimg::STAGE2_DONE);
    if !log.powered_off() {
        panic!(
            "{}",
            log.failure("the test stage 2 finished but the guest did not power off")
        );
    }
}

#[test]
fn ram_mode_from_cd_reaches_stage2() {
    let m = media();
    let log = boot(
        &vm().append("k1os.mode=ram").drive(Drive::cdrom(&m.iso)),
        "boot_ram_cd",
    );
    assert_reached_stage2(&log);
    assert_eq!(
        boot_value(&log, contract::boot_file::MODE),
        "ram",
        "{}",
        log.failure("mode")
    );
    log.assert_line_with_all(&[testimg::STAGE2_ROOT_LINE, "overlay"]);
    log.assert_line(testimg::TEST_MISSING);
}

#[test]
fn persistent_mode_keeps_a_file_across_boots() {
    let m = media();
    let dir = work_dir("persist");
    let data = dir.join("data.img");
    testimg::data_image(&data, 64).unwrap();
    let base = vm()
        .append("k1os.mode=persist")
        .drive(Drive::cdrom(&m.iso))
        .drive(Drive::virtio(&data));

    let first = boot(
        &base.clone().append(testimg::TEST_WRITE),
        "boot_persist_1_write",
    );
    assert_reached_stage2(&first);
    assert_eq!(
        boot_value(&first, contract::boot_file::MODE),
        "persist",
        "{}",
        first.failure("mode")
    );
    first.assert_line(testimg::TEST_WROTE);

    let second = boot(&base, "boot_persist_2_read");
    assert_reached_stage2(&second);
    assert_eq!(
        boot_value(&second, contract::boot_file::MODE),
        "persist",
        "{}",
        second.failure("mode")
    );
    let found = format!("{}{}", testimg::TEST_FOUND, testimg::PERSISTED_CONTENT);
    second.assert_line(&found);

    let on_disk = testimg::read_upper_file(&data, testimg::PERSISTED_FILE).unwrap();
    let expected = format!("{}\n", testimg::PERSISTED_CONTENT);
    assert_eq!(
        on_disk.as_deref().map(String::from_utf8_lossy).as_deref(),
        Some(expected.as_str()),
        "/{}/{} in {}",
        contract::DATA_UPPER_DIR,
        testimg::PERSISTED_FILE,
        data.display()
    );
}

#[test]
fn auto_without_data_disk_falls_back_to_ram_with_a_notice() {
    let m = media();
    let log = boot(
        &vm().append("k1os.mode=auto").drive(Drive::cdrom(&m.iso)),
        "boot_auto_no_data",
    );
    assert_reached_stage2(&log);
    assert_eq!(
        boot_value(&log, contract::boot_file::MODE),
        "ram",
        "{}",
        log.failure("mode")
    );
    let notice = log
        .lines_with(contract::LOG_PREFIX)
        .find(|l| l.contains(contract::DATA_LABEL) && l.to_lowercase().contains("ram"))
        .map(str::to_owned);
    if notice.is_none() {
        panic!(
            "{}",
            log.failure(&format!(
                "no `{}` line names {} and RAM mode",
                contract::LOG_PREFIX,
                contract::DATA_LABEL
            ))
        );
    }
}

#[test]
fn persist_without_data_disk_fails_and_powers_off() {
    let m = media();
    let log = boot(
        &vm()
            .append_all("k1os.mode=persist k1os.onfail=poweroff k1os.timeout=3")
            .drive(Drive::cdrom(&m.iso)),
        "boot_persist_no_data",
    );
    log.assert_exited();
    log.assert_line_with_all(&[contract::MARKER_FATAL, contract::DATA_LABEL]);
    log.assert_absent(KERNEL_PANIC);
    log.assert_absent(testimg::STAGE2_UP);
    if !log.powered_off() {
        panic!(
            "{}",
            log.failure("k1os.onfail=poweroff did not power the guest off")
        );
    }
}

#[test]
fn media_on_a_virtio_disk_reaches_stage2() {
    let m = media();
    let log = boot(
        &vm()
            .append("k1os.mode=ram")
            .drive(Drive::virtio(&m.iso).read_only(true)),
        "boot_ram_virtio_media",
    );
    assert_reached_stage2(&log);
    assert_eq!(
        boot_value(&log, contract::boot_file::MODE),
        "ram",
        "{}",
        log.failure("mode")
    );
    let media_dev = boot_value(&log, contract::boot_file::MEDIA);
    assert!(
        media_dev.contains("vda"),
        "{}",
        log.failure(&format!("media={media_dev}, expected the virtio disk"))
    );
}

#[test]
fn data_partition_in_a_gpt_disk() {
    let m = media();
    let dir = work_dir("gpt");
    let disk = dir.join("disk.img");
    testimg::gpt_data_disk(&disk, 80).unwrap();
    // No k1os.mode: the default (auto) must find the partition and persist.
    let log = boot(
        &vm()
            .append(testimg::TEST_WRITE)
            .drive(Drive::cdrom(&m.iso))
            .drive(Drive::virtio(&disk)),
        "boot_gpt_data",
    );
    assert_reached_stage2(&log);
    assert_eq!(
        boot_value(&log, contract::boot_file::MODE),
        "persist",
        "{}",
        log.failure("mode")
    );
    let data_dev = boot_value(&log, contract::boot_file::DATA);
    assert!(
        data_dev.contains("vda2"),
        "{}",
        log.failure(&format!("data={data_dev}, expected partition 2"))
    );
    log.assert_line(testimg::TEST_WROTE);

    let on_disk = testimg::read_upper_file_in_partition(&disk, 2, testimg::PERSISTED_FILE).unwrap();
    let expected = format!("{}\n", testimg::PERSISTED_CONTENT);
    assert_eq!(
        on_disk.as_deref().map(String::from_utf8_lossy).as_deref(),
        Some(expected.as_str()),
        "/{}/{} in partition 2 of {}",
        contract::DATA_UPPER_DIR,
        testimg::PERSISTED_FILE,
        disk.display()
    );
}
