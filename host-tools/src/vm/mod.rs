//! The QEMU harness: every VM this project boots — the boot and stage-2
//! tests, the ISO tests, the benchmarks, `host-tools qemu` — is a
//! [`Machine`] started here.
//!
//! - [`Machine`] says what to boot and with what: a kernel directly
//!   (`-kernel`/`-initrd`) or firmware (SeaBIOS, OVMF) and GRUB; [`Drive`]s on
//!   named [`Bus`]es; memory, CPUs, an optional [`Network`] (NAT, or
//!   restricted to [`GuestForward`]s: host programs per connection). `args.rs` is the
//!   only place that turns it into QEMU's arguments.
//! - [`accel`]: the accelerator (`K1OS_ACCEL`, parsed once; what unset means
//!   for tests and for a person) and the lock that runs one VM at a time.
//! - `Running` (`process.rs`): QEMU in the background (a [`crate::run::Child`]):
//!   spawn, poll, kill, timeouts, and the error when it exits too early.
//! - [`Console`] (`console.rs`): a running VM's serial console on a Unix
//!   socket, driven like a user at a terminal: [`Console::wait_for`],
//!   [`Console::send_line`], [`Console::run`] a shell command and get its
//!   output and exit status, [`Console::select_entry`] in GRUB's menu by title.
//! - [`Monitor`] (`monitor.rs`): QEMU's human monitor on a socket, for what
//!   acts on the machine: screenshots, keys, devices plugged in later. Every
//!   [`Console`] has one; [`ScreenOnly`] (`screen_only.rs`) is a VM with no
//!   serial port at all, only its screen and keyboard.
//! - [`BootLog`] and [`Outcome`] (`log.rs`): a finished run's console and how
//!   it ended, and the one failure-message format.
//!
//! Four ways to run: [`Machine::start`] (a [`Console`]), [`Machine::run`]
//! (until QEMU exits: a [`BootLog`]), [`Machine::run_until`] (until a line
//! appears, then stop: the bench), and [`Machine::run_interactive`] (the
//! console on the terminal). Headless VMs are `-nodefaults` with no display
//! and `-no-reboot` (unless [`Machine::allow_reboot`]): a guest reboot, or a
//! kernel panic (`panic=-1`), ends QEMU.
use anyhow::{Result, bail};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::paths;
use process::Running;

pub mod accel;
mod args;
mod console;
mod interactive;
mod log;
mod monitor;
mod process;
mod screen_only;

pub use accel::{ACCEL_ENV, Accel, AccelChoice, Purpose};
pub use console::{CommandOutput, Console};
pub use log::{
    BootLog, FAILURE_TAIL_LINES, KERNEL_PANIC, KERNEL_POWER_DOWN, KERNEL_RESTART, Outcome,
};
pub use monitor::Monitor;
pub use screen_only::ScreenOnly;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";
/// UEFI firmware for QEMU (Debian package `ovmf`).
pub const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
/// OVMF built with Secure Boot and SMM (Debian package `ovmf`): its code,
/// mapped read-only as the first flash chip.
pub const OVMF_SECBOOT_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";
/// Its variable store with Microsoft's keys enrolled (the PK, KEK and db a
/// PC ships with) and Secure Boot on. Never given to QEMU itself: the
/// firmware writes its variables, so each run gets a copy ([`FirmwareVars`]).
pub const OVMF_SECBOOT_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
/// Kernel command-line words every kernel boot gets: the serial console, the
/// printk timestamps stage-1 timings are read from, and `panic=-1` (a panic
/// reboots at once, which `-no-reboot` turns into QEMU exiting, so a
/// panicking guest fails in seconds instead of at the timeout).
pub const BASE_CMDLINE: &[&str] = &["console=ttyS0", "printk.time=1", "panic=-1"];
/// Guest memory of a kernel boot unless [`Machine::memory_mib`] says otherwise.
pub const KERNEL_BOOT_MEMORY_MIB: u32 = 256;
/// Guest memory of a firmware boot: the generic kernel, OVMF and a RAM-mode
/// upper layer fit.
pub const FIRMWARE_BOOT_MEMORY_MIB: u32 = 512;

/// What the machine starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Boot {
    /// QEMU loads the kernel and initramfs itself (no firmware menu).
    Kernel {
        kernel: PathBuf,
        initrd: Option<PathBuf>,
        /// Words after [`BASE_CMDLINE`].
        cmdline: Vec<String>,
    },
    /// The firmware boots the drive marked [`Drive::boot`], as a PC does.
    Firmware(Firmware),
}

/// The machine's firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default: El Torito from a CD, the MBR from a disk.
    Bios,
    /// OVMF ([`OVMF`]): `BOOTX64.EFI` from an ESP.
    Uefi,
    /// OVMF with Secure Boot enforced and Microsoft's keys enrolled
    /// ([`OVMF_SECBOOT_CODE`], a copy of [`OVMF_SECBOOT_VARS`]), as PCs
    /// ship: only a loader signed by Microsoft (such as shim) boots. Needs
    /// the `q35` chipset with SMM, which keeps the guest from writing the
    /// variable store behind the firmware's back;
    /// [`Machine::firmware`] chooses `q35`.
    SecureBoot,
}

/// How a drive is attached to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bus {
    /// An ATAPI CD-ROM on the chipset's IDE controller (`/dev/sr0`); always
    /// read-only.
    Cdrom,
    /// A disk on the chipset's IDE controller (`/dev/sdX` through libata).
    Ide,
    /// A disk on an AHCI (SATA) controller added for it (`/dev/sdX`).
    Sata,
    /// A virtio-blk disk (`/dev/vdX`).
    Virtio,
    /// A disk on a virtio-scsi controller added for it (`/dev/sdX`).
    Scsi,
    /// A removable USB mass-storage stick behind an xHCI controller (`/dev/sdX`).
    Usb,
    /// An NVMe controller of its own (`/dev/nvmeXn1`).
    Nvme,
    /// A USB 3 stick that speaks USB Attached SCSI (`usb-uas` with one
    /// `scsi-hd` on it) behind the xHCI controller (`/dev/sdX` through the
    /// `uas` driver, not `usb-storage`).
    Uas,
}

/// The emulated chipset (QEMU's `-machine`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MachineType {
    /// QEMU's default `pc` (i440FX + PIIX3): a PIIX IDE controller with two
    /// buses of two units each; SATA disks get an AHCI controller added.
    #[default]
    Pc,
    /// `q35` (ICH9), what PCs of the last 15 years look like: PCIe, and a
    /// built-in AHCI controller with six ports (`ide.0`–`ide.5`) that
    /// `-nodefaults` keeps. CD-ROMs, IDE and SATA drives all go on those
    /// ports (`ata_piix` is not involved; `ahci` drives them).
    Q35,
}

impl MachineType {
    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            MachineType::Pc => "pc",
            MachineType::Q35 => "q35",
        }
    }

    /// How many drives its built-in IDE/AHCI controller takes.
    pub fn builtin_ide_ports(self) -> usize {
        match self {
            MachineType::Pc => 4,
            MachineType::Q35 => 6,
        }
    }
}

/// The image format of a drive's file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
}

impl Format {
    /// QEMU's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Format::Raw => "raw",
            Format::Qcow2 => "qcow2",
        }
    }

    /// qcow2 by its magic, raw otherwise.
    pub fn detect(path: &Path) -> Result<Format> {
        use anyhow::Context;
        use std::io::Read;
        let mut magic = [0u8; 4];
        let mut file =
            std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let n = file.read(&mut magic)?;
        Ok(if n == 4 && magic == *b"QFI\xfb" {
            Format::Qcow2
        } else {
            Format::Raw
        })
    }
}

/// One drive of a [`Machine`]: a file on a bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drive {
    pub path: PathBuf,
    pub bus: Bus,
    pub format: Format,
    /// The guest cannot write to it (always true for a CD-ROM). IDE and SATA
    /// disks cannot be read-only in QEMU: give them [`Drive::snapshot`].
    pub read_only: bool,
    /// The guest's writes go to a throwaway overlay; the file is never changed.
    pub snapshot: bool,
    /// The firmware boots from it.
    pub boot: bool,
    /// Plugged in when QEMU starts. `false`: only its backing file is
    /// defined (`-drive if=none`, plus the controller it goes on), and a
    /// test plugs it in later through QEMU's monitor
    /// ([`Machine::plug_command`]): a stick that appears while the guest
    /// boots. USB only ([`Drive::unplugged`]).
    pub plugged: bool,
}

impl Drive {
    /// A writable raw drive on `bus` (read-only for a CD-ROM).
    pub fn new(bus: Bus, path: impl Into<PathBuf>) -> Drive {
        Drive {
            path: path.into(),
            bus,
            format: Format::Raw,
            read_only: bus == Bus::Cdrom,
            snapshot: false,
            boot: false,
            plugged: true,
        }
    }

    pub fn cdrom(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Cdrom, path)
    }

    pub fn ide(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Ide, path)
    }

    pub fn sata(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Sata, path)
    }

    pub fn virtio(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Virtio, path)
    }

    pub fn scsi(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Scsi, path)
    }

    pub fn usb(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Usb, path)
    }

    pub fn nvme(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Nvme, path)
    }

    pub fn uas(path: impl Into<PathBuf>) -> Drive {
        Drive::new(Bus::Uas, path)
    }

    pub fn read_only(mut self) -> Drive {
        self.read_only = true;
        self
    }

    pub fn snapshot(mut self) -> Drive {
        self.snapshot = true;
        self
    }

    /// The firmware boots from this drive.
    pub fn boot(mut self) -> Drive {
        self.boot = true;
        self
    }

    pub fn format(mut self, format: Format) -> Drive {
        self.format = format;
        self
    }

    /// Not plugged in at start: [`Machine::plug_command`] is the monitor
    /// command that plugs it in. Only [`Bus::Usb`] drives can be: the kernel
    /// sees a USB stick appear on the xHCI controller at any time, while a
    /// virtio or NVMe disk is a PCI device and the kernel has no PCI
    /// hot-plug, and IDE/SATA/CD drives are fixed (the arguments are
    /// refused, naming the drive).
    pub fn unplugged(mut self) -> Drive {
        self.plugged = false;
        self
    }
}

/// What the guest's screen shows on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// Nothing: no graphics card, no window.
    None,
    /// A standard VGA card in a window (interactive runs).
    Window,
    /// A graphics card and no window: the screen is read with
    /// [`Monitor::screendump`].
    Screen(Vga),
}

/// An emulated graphics card.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vga {
    /// `-vga std`: Bochs VGA (VBE); text mode under SeaBIOS, the firmware's
    /// framebuffer (GOP) under OVMF.
    Std,
    /// `-device virtio-vga`: virtio-gpu with a VGA front, which Linux's
    /// `virtio_gpu` DRM driver takes over from the firmware's framebuffer.
    Virtio,
}

/// The guest's network, always on a virtio-net card (`eth0` in the guest).
/// `User` and `Restricted` are QEMU's user-mode stack (slirp: no host setup,
/// no root), whose DHCP server gives the guest 10.0.2.15/24 (with the
/// gateway 10.0.2.2 and DNS 10.0.2.3 unless restricted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Network {
    /// NAT to the host's network: the guest reaches whatever the host does.
    User,
    /// `restrict=on`: the guest reaches nothing outside QEMU — no host port,
    /// no internet — except its [`GuestForward`]s, each a program QEMU runs
    /// per connection (no port is opened on the host either). DHCP still
    /// answers. For tests that must see exactly one server.
    Restricted { forwards: Vec<GuestForward> },
    /// A virtio-net card whose link is up but leads nowhere (a QEMU hub
    /// with no other port): no DHCP server, nothing answers — a cable in a
    /// switch with no router behind it. QEMU warns on stderr that the hub
    /// is not connected to the host network.
    Isolated,
}

/// The address tests give their one forwarded server by convention
/// (`http://10.0.2.100/` in the guest): inside slirp's 10.0.2.0/24, outside
/// its DHCP range (10.0.2.15 and up) and its own addresses (.2 gateway, .3 DNS).
pub const GUEST_SERVER: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(10, 0, 2, 100), 80);

/// A TCP address in the guest's network whose connections QEMU hands to a
/// host program (`guestfwd=tcp:ADDR-cmd:COMMAND`): for each connection QEMU
/// starts `command` with the connection as its stdin, stdout **and stderr**,
/// so the program must not log to stderr. The command is given to QEMU as
/// one shell-quoted string (libslirp splits it with `g_shell_parse_argv`,
/// searching `PATH` for the program); it cannot contain a comma, which ends
/// QEMU's option ([`Machine`]'s arguments are refused with an error naming it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestForward {
    pub addr: SocketAddrV4,
    /// The program and its arguments.
    pub command: Vec<String>,
}

impl GuestForward {
    pub fn new<S: Into<String>>(
        addr: SocketAddrV4,
        command: impl IntoIterator<Item = S>,
    ) -> GuestForward {
        GuestForward {
            addr,
            command: command.into_iter().map(Into::into).collect(),
        }
    }
}

/// A VM: what it boots and with what. Build it with the methods, then
/// [`Machine::start`], [`Machine::run`], [`Machine::run_until`] or
/// [`Machine::run_interactive`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    pub boot: Boot,
    /// The chipset; `pc` unless [`Machine::q35`].
    pub machine_type: MachineType,
    pub drives: Vec<Drive>,
    pub memory_mib: u32,
    pub cpus: u32,
    pub network: Option<Network>,
    pub display: Display,
    /// A USB keyboard (`usb-kbd`) on the xHCI controller.
    pub usb_keyboard: bool,
    /// Keep QEMU running when the guest reboots (no `-no-reboot`), so a test
    /// can watch a reboot on the same console. A power-off still ends QEMU.
    pub allow_reboot: bool,
    /// `None`: `K1OS_ACCEL`, else the default ([`AccelChoice::default_for`]).
    pub accel: Option<AccelChoice>,
}

impl Machine {
    /// Boots `kernel` directly.
    pub fn kernel(kernel: impl Into<PathBuf>) -> Machine {
        Machine::new(
            Boot::Kernel {
                kernel: kernel.into(),
                initrd: None,
                cmdline: Vec::new(),
            },
            KERNEL_BOOT_MEMORY_MIB,
        )
    }

    /// Boots through `firmware` from the drive marked [`Drive::boot`]; on
    /// `q35` for [`Firmware::SecureBoot`], which needs it.
    pub fn firmware(firmware: Firmware) -> Machine {
        let machine = Machine::new(Boot::Firmware(firmware), FIRMWARE_BOOT_MEMORY_MIB);
        match firmware {
            Firmware::SecureBoot => machine.q35(),
            Firmware::Bios | Firmware::Uefi => machine,
        }
    }

    fn new(boot: Boot, memory_mib: u32) -> Machine {
        Machine {
            boot,
            machine_type: MachineType::Pc,
            drives: Vec::new(),
            memory_mib,
            cpus: 1,
            network: None,
            display: Display::None,
            usb_keyboard: false,
            allow_reboot: false,
            accel: None,
        }
    }

    /// The initramfs of a kernel boot.
    ///
    /// # Panics
    /// On a firmware boot (a mistake in the caller's code).
    pub fn initrd(mut self, path: impl Into<PathBuf>) -> Machine {
        match &mut self.boot {
            Boot::Kernel { initrd, .. } => *initrd = Some(path.into()),
            Boot::Firmware(_) => panic!("an initrd needs a kernel boot"),
        }
        self
    }

    /// Appends whitespace-separated words (`k1os.mode=ram`) to the kernel
    /// command line of a kernel boot.
    ///
    /// # Panics
    /// On a firmware boot (GRUB's menu has the command line).
    pub fn append(mut self, words: &str) -> Machine {
        match &mut self.boot {
            Boot::Kernel { cmdline, .. } => {
                cmdline.extend(words.split_whitespace().map(String::from));
            }
            Boot::Firmware(_) => panic!("a firmware boot's command line is GRUB's"),
        }
        self
    }

    pub fn machine_type(mut self, machine_type: MachineType) -> Machine {
        self.machine_type = machine_type;
        self
    }

    /// On QEMU's `q35` chipset ([`MachineType::Q35`]).
    pub fn q35(self) -> Machine {
        self.machine_type(MachineType::Q35)
    }

    pub fn drive(mut self, drive: Drive) -> Machine {
        self.drives.push(drive);
        self
    }

    pub fn memory_mib(mut self, mib: u32) -> Machine {
        self.memory_mib = mib;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Machine {
        self.cpus = cpus;
        self
    }

    pub fn network(mut self, network: Network) -> Machine {
        self.network = Some(network);
        self
    }

    pub fn display(mut self, display: Display) -> Machine {
        self.display = display;
        self
    }

    /// Plugs a USB keyboard into the xHCI controller, as a PC's keyboard is.
    pub fn usb_keyboard(mut self) -> Machine {
        self.usb_keyboard = true;
        self
    }

    pub fn allow_reboot(mut self, allow: bool) -> Machine {
        self.allow_reboot = allow;
        self
    }

    /// Runs with this accelerator (or choice) instead of `K1OS_ACCEL`'s.
    pub fn accel(mut self, accel: impl Into<AccelChoice>) -> Machine {
        self.accel = Some(accel.into());
        self
    }

    /// The whole kernel command line of a kernel boot.
    pub fn kernel_cmdline(&self) -> Option<String> {
        match &self.boot {
            Boot::Kernel { cmdline, .. } => Some(
                BASE_CMDLINE
                    .iter()
                    .copied()
                    .chain(cmdline.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            Boot::Firmware(_) => None,
        }
    }

    /// The monitor command (`device_add …`) that plugs in drive `index` (of
    /// [`Machine::drives`], counted from 0), made [`Drive::unplugged`]:
    /// `console.monitor().command_quiet(&vm.plug_command(1)?)`.
    pub fn plug_command(&self, index: usize) -> Result<String> {
        args::plug_command(self, index)
    }

    /// The files QEMU needs, in order: the kernel and initramfs (or OVMF),
    /// then the drives.
    fn inputs(&self) -> Vec<&Path> {
        let mut files: Vec<&Path> = match &self.boot {
            Boot::Kernel { kernel, initrd, .. } => std::iter::once(kernel.as_path())
                .chain(initrd.as_deref())
                .collect(),
            Boot::Firmware(Firmware::Uefi) => vec![Path::new(OVMF)],
            Boot::Firmware(Firmware::SecureBoot) => {
                vec![Path::new(OVMF_SECBOOT_CODE), Path::new(OVMF_SECBOOT_VARS)]
            }
            Boot::Firmware(Firmware::Bios) => Vec::new(),
        };
        files.extend(self.drives.iter().map(|d| d.path.as_path()));
        files
    }

    /// Fails, naming the first file QEMU needs that does not exist.
    fn check_inputs(&self) -> Result<()> {
        for file in self.inputs() {
            if !file.is_file() {
                let hint = if [OVMF, OVMF_SECBOOT_CODE, OVMF_SECBOOT_VARS]
                    .iter()
                    .any(|f| file == Path::new(f))
                {
                    " (Debian package `ovmf`; `./k1os doctor --install`)"
                } else {
                    ""
                };
                bail!(
                    "cannot boot the VM: {} does not exist{hint}",
                    file.display()
                );
            }
        }
        Ok(())
    }

    /// Starts the VM with its console in `build/test-logs/<name>.log` (see
    /// [`Machine::start_logged`]).
    pub fn start(&self, name: &str) -> Result<Console> {
        self.start_logged(name, &test_log_path(name))
    }

    /// Starts the VM and connects to its serial console, logged raw to `log`.
    /// Takes the VM lock and chooses the accelerator first ([`accel`]); the
    /// console holds the lock until it is dropped.
    pub fn start_logged(&self, name: &str, log: &Path) -> Result<Console> {
        let (lock, accel) = accel::lock_and_choose(self, Purpose::Automated)?;
        Console::spawn(self, name, log, accel, Some(lock))
    }

    /// Boots until QEMU exits, or kills it at `timeout`; the console is in
    /// `build/test-logs/<name>.log`. A guest that times out or fails is not
    /// an error here (the [`BootLog`] says what happened); QEMU that cannot
    /// start, or exits with an error before the guest printed anything, is.
    pub fn run(&self, name: &str, timeout: Duration) -> Result<BootLog> {
        let mut console = self.start(name)?;
        let outcome = console.wait_exit(timeout)?;
        console.into_log(outcome, timeout)
    }

    /// Boots until a console line contains `marker` (then QEMU is stopped:
    /// [`Outcome::Stopped`]), QEMU exits, or `timeout`; the console is logged
    /// to `log`.
    pub fn run_until(&self, log: &Path, marker: &str, timeout: Duration) -> Result<BootLog> {
        let name = log
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "vm".into());
        let mut console = self.start_logged(&name, log)?;
        let outcome = console.run_until(marker, Instant::now() + timeout)?;
        console.into_log(outcome, timeout)
    }

    /// Runs QEMU with the console on the terminal until the guest powers off
    /// or the user quits (Ctrl-A X); the console is copied to `log`. `entry`:
    /// the title of a GRUB menu entry to choose (a firmware boot of the ISO);
    /// `None` lets GRUB boot its default. The accelerator's default is the
    /// interactive one ([`Purpose::Interactive`]).
    pub fn run_interactive(&self, log: &Path, entry: Option<&str>) -> Result<()> {
        interactive::run(self, log, entry)
    }
}

/// A run's own copy of [`OVMF_SECBOOT_VARS`], the flash chip the firmware
/// writes its variables to (boot entries, and, were a guest to change
/// them, the keys): each run starts from Microsoft's keys and Secure Boot
/// on, and the system's file is never written. Removed when dropped, after
/// QEMU has ended (the [`Running`] or interactive run that holds it).
pub(crate) struct FirmwareVars {
    path: PathBuf,
}

impl FirmwareVars {
    /// The copy `machine` needs, if any (only [`Firmware::SecureBoot`]).
    fn for_machine(machine: &Machine) -> Result<Option<FirmwareVars>> {
        use anyhow::Context;
        use std::sync::atomic::{AtomicU32, Ordering};
        if machine.boot != Boot::Firmware(Firmware::SecureBoot) {
            return Ok(None);
        }
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "k1os-ovmf-vars-{}-{}.fd",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::copy(OVMF_SECBOOT_VARS, &path)
            .with_context(|| format!("copying {OVMF_SECBOOT_VARS} to {}", path.display()))?;
        // A copy keeps the source's mode, which may be read-only; QEMU opens
        // it for writing, and nobody else needs it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("making {} writable", path.display()))?;
        Ok(Some(FirmwareVars { path }))
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FirmwareVars {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `build/test-logs/<name>.log`.
fn test_log_path(name: &str) -> PathBuf {
    paths::build_dir()
        .join("test-logs")
        .join(format!("{name}.log"))
}
