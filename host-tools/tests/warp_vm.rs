//! warp inside a running K1OS: QEMU boots (TCG unless `K1OS_ACCEL` says
//! otherwise) of the real kernel, stage 1 and root filesystem, driven on the
//! serial console like a user (`host_tools::vm::Console`).
//!
//! The repositories are built by `host-tools repo build` from scratch
//! packages, **signed with the build key** (`K1OS_REPO_KEY` and `K1OS_CACHE`
//! are left as they are), so the image under test trusts them as it trusts
//! the repository built next to it. They reach the guest two ways:
//!
//! - over the network: QEMU's restricted user network, whose only reachable
//!   address is `http://10.0.2.100/`, answered per connection by `host-tools
//!   repo serve --stdio` over a directory the test swaps (v1, v2, a tampered
//!   index);
//! - on the media: a test ISO holding `/system.squashfs` and `/repo`, which
//!   the image's default repository list names (`media
//!   file:///run/k1os/media/repo/`), booted with no network card at all.
//!
//! The tests: install with a dependency, reboot, upgrade, rollback and a
//! tampered index in persistent mode over the network; the real ISO
//! (`host-tools iso --profile qemu`, with the real repository packages) in
//! RAM mode with no network: the message for an unreachable repository, the
//! media's repository installing, the RAM-mode warning, nothing left after a
//! reboot; and a power cut while an install stages 32 MiB, then the next
//! boot's `warp recover` line, `warp verify`, and a clean data partition.
//!
//! Console logs: `build/test-logs/warp_vm_*.log`.
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    Data, OrPanic, UnderTest, assert_upper_file, power_off, start_console, wait_for_shell,
};
use host_tools::iso::TITLE_RAM;
use host_tools::run::Cmd;
use host_tools::vm::{
    Console, Drive, Firmware, GUEST_SERVER, GuestForward, KERNEL_RESTART, Machine, Network,
};
use host_tools::{paths, testimg};
use k1os_contract::contract;
use warp_format::index::Index;

/// From QEMU's start to the shell prompt (TCG: 3–8 s; a loaded machine can
/// be much slower).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// One quick shell command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// A warp command that downloads, unpacks and syncs (tens of MiB under TCG).
const WARP_TIMEOUT: Duration = Duration::from_secs(300);
/// From `poweroff` or `reboot` to QEMU's exit or restart.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// The RAM-mode warning of `warp install` (`warp/src/cli.rs`).
const RAM_WARNING: &str =
    "warp: warning: this system runs in RAM mode: what you install is gone at the next boot";

// ---------------------------------------------------------------- fixtures

fn checkout() -> PathBuf {
    paths::repo_root()
}

/// `host-tools ARGS` in the checkout, with the environment as it is (so the
/// build key is the one the image under test was built to trust).
fn host_tools(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_host-tools"))
        .args(args)
        .current_dir(checkout())
        .stdin(Stdio::null())
        .output()
        .expect("running host-tools");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`host-tools {}` failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// One file of a scratch package.
struct File<'a> {
    path: &'a str,
    mode: u32,
    /// Written by the build script: a shell command whose stdout is the
    /// file's content.
    content: Content<'a>,
}

enum Content<'a> {
    Text(&'a str),
    /// `n` bytes of /dev/urandom: incompressible, so the archive is as big
    /// as the file and unpacking it takes a while.
    Random(u64),
}

/// A scratch repository package (`repository = true`) in `dir/name/`.
fn package(dir: &Path, name: &str, version: &str, depends: &[&str], files: &[File]) {
    let pkg = dir.join(name);
    fs::create_dir_all(&pkg).unwrap();
    let deps: Vec<String> = depends.iter().map(|d| format!("\"{d}\"")).collect();
    fs::write(
        pkg.join("package.toml"),
        format!(
            "name = \"{name}\"\nversion = \"{version}\"\n\
             description = \"warp_vm test package {name}\"\nlicense = \"MIT\"\n\
             repository = true\ndepends = [{}]\n",
            deps.join(", ")
        ),
    )
    .unwrap();
    let mut script = String::from("set -e\n");
    for f in files {
        let parent = Path::new(f.path).parent().unwrap().display().to_string();
        script += &format!("install -d -m 0755 \"$DESTDIR/{parent}\"\n");
        match f.content {
            Content::Text(text) => {
                assert!(!text.contains("K1OS_EOF"), "{text}");
                script += &format!(
                    "cat > \"$DESTDIR/{}\" <<'K1OS_EOF'\n{text}K1OS_EOF\n",
                    f.path
                );
            }
            Content::Random(n) => {
                script += &format!("head -c {n} /dev/urandom > \"$DESTDIR/{}\"\n", f.path);
            }
        }
        script += &format!("chmod {:o} \"$DESTDIR/{}\"\n", f.mode, f.path);
    }
    fs::write(pkg.join("build.sh"), script).unwrap();
}

fn text<'a>(path: &'a str, mode: u32, text: &'a str) -> File<'a> {
    File {
        path,
        mode,
        content: Content::Text(text),
    }
}

const GREETING: &str = "greetings from libgreet\n";
const HELLO_V1: &str = "#!/bin/sh\necho \"hello 1, $(cat /usr/local/share/greet/greeting)\"\n";
const HELLO_V2: &str = "#!/bin/sh\necho \"hello 2, $(cat /usr/local/share/greet/greeting)\"\n";
/// What `hello` prints in each version.
const HELLO_1_SAYS: &str = "hello 1, greetings from libgreet";
const HELLO_2_SAYS: &str = "hello 2, greetings from libgreet";
const EXTRA: &str = "#!/bin/sh\necho extra 1\n";
/// The package the power cut interrupts.
const BIG_BYTES: u64 = 32 << 20;

/// The repositories, built once per process under
/// `build/test-images/warp-vm/`: `v1` (serial 100: hello 1.0 needing
/// libgreet), `v2` (serial 200: hello 2.0, extra), `tampered` (v2 with one
/// byte of its index changed after signing) and `media` (note, and big:
/// 32 MiB of random bytes); `served`, the symlink `repo serve` follows.
struct Repos {
    dir: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
    tampered: PathBuf,
    media: PathBuf,
    served: PathBuf,
}

fn repos() -> &'static Repos {
    static REPOS: OnceLock<Repos> = OnceLock::new();
    REPOS.get_or_init(|| {
        let dir = common::scratch("warp-vm");
        let r = Repos {
            v1: dir.join("repo-v1"),
            v2: dir.join("repo-v2"),
            tampered: dir.join("repo-tampered"),
            media: dir.join("repo-media"),
            served: dir.join("served"),
            dir,
        };
        let libgreet = |dir: &Path| {
            package(
                dir,
                "libgreet",
                "1.0",
                &[],
                &[text("usr/local/share/greet/greeting", 0o644, GREETING)],
            )
        };
        let p1 = r.dir.join("packages-v1");
        libgreet(&p1);
        package(
            &p1,
            "hello",
            "1.0",
            &["libgreet"],
            &[text("usr/local/bin/hello", 0o755, HELLO_V1)],
        );
        let p2 = r.dir.join("packages-v2");
        libgreet(&p2);
        package(
            &p2,
            "hello",
            "2.0",
            &["libgreet"],
            &[text("usr/local/bin/hello", 0o755, HELLO_V2)],
        );
        package(
            &p2,
            "extra",
            "1.0",
            &[],
            &[text("usr/local/bin/extra", 0o755, EXTRA)],
        );
        let pm = r.dir.join("packages-media");
        package(
            &pm,
            "note",
            "1.0",
            &[],
            &[text("usr/local/share/note/note", 0o644, "a note\n")],
        );
        package(
            &pm,
            "big",
            "1.0",
            &[],
            &[
                File {
                    path: "opt/big/blob",
                    mode: 0o644,
                    content: Content::Random(BIG_BYTES),
                },
                text(
                    "usr/local/bin/big",
                    0o755,
                    "#!/bin/sh\nwc -c < /opt/big/blob\n",
                ),
            ],
        );
        for (pkgs, out, serial) in [
            (&p1, &r.v1, "100"),
            (&p2, &r.v2, "200"),
            (&pm, &r.media, "300"),
        ] {
            host_tools(&[
                "repo",
                "build",
                "--packages",
                pkgs.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
                "--serial",
                serial,
            ]);
        }
        // The signature stays, one byte of what it signed changes.
        fs::create_dir_all(&r.tampered).unwrap();
        for e in fs::read_dir(&r.v2).unwrap() {
            let e = e.unwrap();
            fs::copy(e.path(), r.tampered.join(e.file_name())).unwrap();
        }
        let index = r.tampered.join("index.json");
        let bytes = fs::read(&index).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let tampered = text.replacen(
            "warp_vm test package extra",
            "warp_vm test package EXTRA",
            1,
        );
        assert_ne!(tampered, text, "the index has no `extra` description");
        fs::write(&index, tampered).unwrap();
        r.serve(&r.v1);
        r
    })
}

impl Repos {
    /// `repo serve` answers from `repo` from now on (a symlink replaced by
    /// a rename: each connection sees one repository or the other).
    fn serve(&self, repo: &Path) {
        let tmp = self.dir.join("served.tmp");
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(repo, &tmp).unwrap();
        fs::rename(&tmp, &self.served).unwrap();
    }
}

/// A boot medium for a kernel boot: ISO 9660 `K1OS` with the root
/// filesystem under test as `/system.squashfs` and, when given, `repo` as
/// `/repo` (what `host-tools iso` puts there).
fn media_iso(name: &str, repo: Option<&Path>) -> PathBuf {
    let rootfs = UnderTest::with_rootfs().rootfs.expect("asked for");
    let iso = common::scratch(name).join("media.iso");
    let mut grafts = vec![format!("{}={}", contract::DEFAULT_IMAGE, rootfs.display())];
    if let Some(repo) = repo {
        grafts.push(format!("/repo={}", repo.display()));
    }
    Cmd::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-r",
            "-V",
            contract::MEDIA_LABEL,
        ])
        .arg("-o")
        .arg(&iso)
        .arg("-graft-points")
        .args(grafts)
        .env("SOURCE_DATE_EPOCH", testimg::SOURCE_DATE_EPOCH)
        .run()
        .or_panic();
    iso
}

/// The kernel and initramfs under test, `media` as a CD-ROM, `data` as a
/// virtio disk; no network card (`-nodefaults`) unless the test adds one.
fn machine(media: &Path, data: &Path) -> Machine {
    let t = UnderTest::with_rootfs();
    Machine::kernel(t.kernel)
        .initrd(t.initrd)
        .append("k1os.mode=persist")
        .drive(Drive::cdrom(media))
        .drive(Drive::virtio(data))
}

fn run_ok(c: &mut Console, command: &str) -> String {
    c.run_ok(command, COMMAND_TIMEOUT).or_panic()
}

/// Runs a warp command; fails unless it exits with `status`. Returns its
/// output and how long it took.
fn warp(c: &mut Console, command: &str, status: i32) -> (String, Duration) {
    let start = Instant::now();
    let out = c.run(command, WARP_TIMEOUT).or_panic();
    let took = start.elapsed();
    assert_eq!(
        out.status,
        status,
        "{}",
        c.failure(&format!(
            "`{command}`: exit status {}:\n{}",
            out.status, out.text
        ))
    );
    (out.text, took)
}

#[track_caller]
fn assert_has(c: &Console, text: &str, needle: &str) {
    assert!(
        text.contains(needle),
        "{}",
        c.failure(&format!("{needle:?} is not in:\n{text}"))
    );
}

#[track_caller]
fn assert_lacks(c: &Console, text: &str, needle: &str) {
    assert!(
        !text.contains(needle),
        "{}",
        c.failure(&format!("{needle:?} should not be in:\n{text}"))
    );
}

/// What is not clean in an ext4 image: its superblock's state, a journal
/// that needs recovery, and what `e2fsck -fn` would fix.
fn assert_clean_ext4(image: &Path) {
    let header = Cmd::new("dumpe2fs").arg("-h").arg(image).read().or_panic();
    let field = |name: &str| {
        header
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(field("Filesystem state:"), "clean", "{}", image.display());
    let features = field("Filesystem features:");
    assert!(
        !features.split_whitespace().any(|f| f == "needs_recovery"),
        "{}: the journal needs recovery ({features})",
        image.display()
    );
    let out = Cmd::new("e2fsck").arg("-fn").arg(image).read().or_panic();
    assert!(
        !out.contains("Fix? no"),
        "`e2fsck -fn {}` found problems:\n{out}",
        image.display()
    );
}

// ------------------------------------------------------------------- tests

/// A power cut while `warp install` stages a 32 MiB package from the media:
/// the next boot's `warp recover` (stage 2, before the services) rolls it
/// back and says so, `warp verify` passes, the package installs after all,
/// and after a clean power-off the data partition is clean.
#[test]
fn power_cut_during_an_install_is_recovered_at_the_next_boot() {
    let r = repos();
    let media = media_iso("warp-vm-power-cut", Some(&r.media));
    let data = media.with_file_name("data.img");
    testimg::data_image(&data, 256).or_panic();
    let vm = machine(&media, &data);

    let mut c = start_console(&vm, "warp_vm_power_cut_1");
    wait_for_shell(&mut c, BOOT_TIMEOUT);
    let (out, _) = warp(&mut c, "warp update", 0);
    assert_has(&c, &out, "media: serial 300, 2 packages");
    let (out, _) = warp(&mut c, "warp install note", 0);
    assert_lacks(&c, &out, "RAM mode");
    // -v prints `staging big 1.0 from …` once the journal is written, before
    // the first file: the cut comes while the package's files are staged.
    c.send_line("warp -v install big").or_panic();
    c.wait_for("staging big 1.0", WARP_TIMEOUT).or_panic();
    let cut_at = c.elapsed();
    drop(c); // QEMU killed: a power cut
    eprintln!(
        "warp_vm_power_cut_1: power cut {:.1} s after QEMU started, while staging",
        cut_at.as_secs_f64()
    );

    let mut c = start_console(&vm, "warp_vm_power_cut_2");
    let stage2 = wait_for_shell(&mut c, BOOT_TIMEOUT);
    assert_has(
        &c,
        &stage2,
        "k1os: warp: recovered: rolled back an interrupted transaction",
    );
    let (out, _) = warp(&mut c, "warp verify", 0);
    assert_lacks(&c, &out, "big");
    let (out, _) = warp(&mut c, "warp list --installed", 0);
    assert_has(&c, &out, "note 1.0");
    assert_lacks(&c, &out, "big");
    run_ok(&mut c, "test ! -e /opt/big/blob");
    assert_eq!(
        run_ok(&mut c, "find /usr/local /opt -name '.warp-*' | wc -l").trim(),
        "0",
        "{}",
        c.failure("temporary files left after the recovery")
    );
    // The archive was in the cache before the cut (fetched, checked, synced
    // and renamed there before the transaction): it is not copied again.
    let (out, took) = warp(&mut c, "warp -v install big", 0);
    assert_has(&c, &out, "big 1.0: in the cache");
    assert_has(&c, &out, "transaction");
    eprintln!(
        "warp_vm_power_cut_2: `warp install big` (32 MiB, from the cache) took {:.1} s",
        took.as_secs_f64()
    );
    assert_eq!(run_ok(&mut c, "big").trim(), BIG_BYTES.to_string());
    warp(&mut c, "warp verify", 0);
    power_off(&mut c, SHUTDOWN_TIMEOUT);
    drop(c);
    assert_clean_ext4(&data);
    assert_upper_file(Data::Image(&data), "usr/local/share/note/note", "a note\n");
}

/// The real ISO (`host-tools iso --profile qemu`, with the real repository
/// packages on it as `/repo`) booted by SeaBIOS from a CD, "K1OS (RAM
/// mode)" chosen in GRUB's menu, no network card at all: a network
/// repository fails with one line that says why, while the media's
/// repository updates and installs (with the RAM-mode warning); after a
/// reboot nothing installed is left.
#[test]
fn ram_mode_with_no_network_installs_from_the_media_and_forgets_at_reboot() {
    let iso = common::qemu_iso();
    let index = real_index(iso);
    // The issue's real packages: bash, and bash-completion needing it.
    let completion = index
        .packages
        .iter()
        .find(|p| p.name == "bash-completion")
        .unwrap_or_else(|| panic!("no bash-completion in the ISO's repository: {index:?}"));
    assert!(
        completion
            .depends
            .iter()
            .any(|d| d == "bash" || d.starts_with("bash>")),
        "bash-completion does not depend on bash: {:?}",
        completion.depends
    );
    let largest = index
        .packages
        .iter()
        .max_by_key(|p| p.size)
        .expect("the repository has packages");

    let vm = Machine::firmware(Firmware::Bios)
        .drive(Drive::cdrom(iso).boot())
        .allow_reboot(true);
    let name = "warp_vm_ram_media";
    let mut c = start_console(&vm, name);
    let boot = boot_iso_entry(&mut c, TITLE_RAM);
    eprintln!(
        "{name}: GRUB menu to prompt {:.1} s ({:.1} s after QEMU started)",
        boot.as_secs_f64(),
        c.elapsed().as_secs_f64()
    );
    run_ok(
        &mut c,
        &format!("grep -qx mode=ram {}", contract::RUN_BOOT_FILE),
    );
    run_ok(&mut c, "test ! -e /sys/class/net/eth0");

    // A network repository with no network: one line, exit status 3; the
    // media's repository updates all the same.
    warp(&mut c, "warp repo add net http://10.0.2.100/", 0);
    let (out, update) = warp(&mut c, "warp update", 3);
    assert_has(
        &c,
        &out,
        &format!(
            "media: serial {}, {} packages",
            index.serial,
            index.packages.len()
        ),
    );
    let no_network = "warp: net: cannot reach http://10.0.2.100/index.json: network unreachable \
                      — no network? (no route to 10.0.2.100: see `ip addr` and `ip route`)";
    assert_has(&c, &out, &format!("{no_network}\n"));
    assert_eq!(
        out.lines().filter(|l| l.starts_with("warp: ")).count(),
        1,
        "{}",
        c.failure(&format!("more than one error line:\n{out}"))
    );

    let (out, install) = warp(&mut c, &format!("warp install {}", largest.name), 0);
    assert_has(&c, &out, RAM_WARNING);
    eprintln!(
        "{name}: `warp update` {:.1} s, `warp install {}` ({} bytes, {} installed) {:.1} s; \
         boot {:.1} s",
        update.as_secs_f64(),
        largest.name,
        largest.size,
        largest.installed_size,
        install.as_secs_f64(),
        boot.as_secs_f64()
    );
    let (out, _) = warp(&mut c, "warp install bash-completion", 0);
    assert_has(&c, &out, RAM_WARNING);
    let (out, _) = warp(&mut c, "warp list --installed", 0);
    for pkg in ["bash ", "bash-completion "] {
        assert_has(&c, &out, pkg);
    }
    assert_eq!(
        run_ok(&mut c, "bash -c 'echo \"$0 $((6*7))\"'").trim(),
        "bash 42"
    );
    run_ok(&mut c, "test -d /usr/local/share/bash-completion");
    warp(&mut c, "warp verify", 0);

    // RAM mode: a reboot forgets it all, the repository list included.
    c.send_line("reboot").or_panic();
    c.wait_for(KERNEL_RESTART, SHUTDOWN_TIMEOUT).or_panic();
    boot_iso_entry(&mut c, TITLE_RAM);
    assert_eq!(
        c.run("test -e /usr/local/bin/bash", COMMAND_TIMEOUT)
            .or_panic()
            .status,
        1,
        "{}",
        c.failure("bash survived a reboot in RAM mode")
    );
    let (out, _) = warp(&mut c, "warp list --installed", 0);
    assert_eq!(out.trim(), "", "{}", c.failure("installed after a reboot"));
    let (out, _) = warp(&mut c, "warp repo list", 0);
    assert_lacks(&c, &out, "net ");
    power_off(&mut c, SHUTDOWN_TIMEOUT);
}

/// The index of the repository the ISO carries (`<out>/repo/index.json`,
/// what was put on the ISO as `/repo/index.json`).
fn real_index(iso: &Path) -> Index {
    let path = iso.with_file_name("repo").join("index.json");
    let bytes = fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    Index::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Chooses GRUB's entry `title`, waits for stage 2 and a shell; the time
/// from the menu to the prompt.
fn boot_iso_entry(c: &mut Console, title: &str) -> Duration {
    c.select_entry(title, BOOT_TIMEOUT).or_panic();
    let chosen = Instant::now();
    wait_for_shell(c, BOOT_TIMEOUT);
    let took = chosen.elapsed();
    c.wait_for_shell(COMMAND_TIMEOUT).or_panic();
    took
}

/// Persistent mode over the network: the guest reaches only the test
/// repository (`http://10.0.2.100/`, `host-tools repo serve --stdio` per
/// connection). Install with a dependency, reboot, upgrade, rollback, a
/// tampered index refused while the previous one still installs; the
/// media's repository is absent (this media has none) and skipped.
#[test]
fn persistent_install_upgrade_rollback_and_tampering_over_the_network() {
    let r = repos();
    let media = media_iso("warp-vm-network", None);
    let data = media.with_file_name("data.img");
    testimg::data_image(&data, 128).or_panic();
    r.serve(&r.v1);
    let server = GuestForward::new(
        GUEST_SERVER,
        [
            env!("CARGO_BIN_EXE_host-tools"),
            "repo",
            "serve",
            "--stdio",
            "--dir",
            r.served.to_str().unwrap(),
        ],
    );
    let vm = machine(&media, &data)
        .network(Network::Restricted {
            forwards: vec![server],
        })
        .allow_reboot(true);

    let name = "warp_vm_network";
    let mut c = start_console(&vm, name);
    wait_for_shell(&mut c, BOOT_TIMEOUT);
    let boot = c.elapsed();
    run_ok(
        &mut c,
        &format!("grep -qx mode=persist {}", contract::RUN_BOOT_FILE),
    );
    wait_for_lease(&mut c, 1);
    eprintln!(
        "{name}: prompt {:.1} s after QEMU started, DHCP lease by {:.1} s",
        boot.as_secs_f64(),
        c.elapsed().as_secs_f64()
    );

    warp(
        &mut c,
        &format!("warp repo add test http://{GUEST_SERVER}/"),
        0,
    );
    let (out, update) = warp(&mut c, "warp update", 0);
    assert_has(&c, &out, "test: serial 100, 2 packages");
    assert_has(
        &c,
        &out,
        "media: skipped: /run/k1os/media/repo/ does not exist",
    );
    let (out, install) = warp(&mut c, "warp install hello", 0);
    assert_has(&c, &out, "libgreet");
    assert_lacks(&c, &out, "RAM mode");
    eprintln!(
        "{name}: `warp update` {:.1} s, `warp install hello` (and libgreet) {:.1} s",
        update.as_secs_f64(),
        install.as_secs_f64()
    );
    assert_eq!(run_ok(&mut c, "hello").trim(), HELLO_1_SAYS);

    // Persistent: still there after a reboot, and still runs.
    c.send_line("reboot").or_panic();
    c.wait_for(KERNEL_RESTART, SHUTDOWN_TIMEOUT).or_panic();
    wait_for_shell(&mut c, BOOT_TIMEOUT);
    assert_eq!(run_ok(&mut c, "hello").trim(), HELLO_1_SAYS);
    let (out, _) = warp(&mut c, "warp list --installed", 0);
    assert_has(&c, &out, "hello 1.0 (test)");
    assert_has(&c, &out, "libgreet 1.0 (test) [dependency]");
    warp(&mut c, "warp verify", 0);
    wait_for_lease(&mut c, 2);

    // Upgrade to v2, then roll back.
    r.serve(&r.v2);
    let (out, _) = warp(&mut c, "warp update", 0);
    assert_has(&c, &out, "test: serial 100 -> 200, 3 packages");
    warp(&mut c, "warp upgrade", 0);
    assert_eq!(run_ok(&mut c, "hello").trim(), HELLO_2_SAYS);
    warp(&mut c, "warp rollback", 0);
    assert_eq!(run_ok(&mut c, "hello").trim(), HELLO_1_SAYS);

    // A tampered index is refused and changes nothing; the stored v2 index
    // still installs (the archives served next to it are v2's).
    r.serve(&r.tampered);
    let (out, _) = warp(&mut c, "warp update", 4);
    assert_has(&c, &out, "warp: test: http://10.0.2.100/index.json:");
    assert_has(&c, &out, "the stored index is unchanged and stays in use");
    let (out, _) = warp(&mut c, "warp repo list", 0);
    assert_has(&c, &out, "test http://10.0.2.100/ (serial 200)");
    warp(&mut c, "warp install extra", 0);
    assert_eq!(run_ok(&mut c, "extra").trim(), "extra 1");
    warp(&mut c, "warp verify", 0);

    power_off(&mut c, SHUTDOWN_TIMEOUT);
    drop(c);
    assert_clean_ext4(&data);
    assert_upper_file(Data::Image(&data), "usr/local/bin/hello", HELLO_V1);
}

/// The network service's line for eth0's DHCP lease
/// (`k1os: network: eth0 10.0.2.15/24 via 10.0.2.2, dns 10.0.2.3`), the
/// `boots`-th of this console: it comes before or after the prompt, so it
/// is counted in the whole transcript, and waited for only when missing.
fn wait_for_lease(c: &mut Console, boots: usize) {
    const LEASE: &str = "k1os: network: eth0 10.0.2.15/24";
    while c.transcript().matches(LEASE).count() < boots {
        c.wait_for(LEASE, BOOT_TIMEOUT).or_panic();
    }
}
