//! The only place a [`Machine`] becomes QEMU's arguments.
use anyhow::{Context, Result, bail};
use std::ffi::OsString;
use std::path::Path;

use super::{
    Accel, Boot, Bus, Display, Firmware, GuestForward, Machine, MachineType, Network, OVMF,
    OVMF_SECBOOT_CODE, Vga,
};

/// Where the guest's serial console goes.
pub(super) enum Serial<'a> {
    /// A Unix socket QEMU listens on and waits (`wait=on`) until we connect,
    /// so nothing the guest prints is lost; `monitor`: QEMU's monitor on a
    /// second socket ([`super::Monitor`]).
    Socket {
        console: &'a Path,
        monitor: Option<&'a Path>,
    },
    /// No serial port at all (`-serial none`): a PC whose only console is its
    /// screen. QEMU's monitor listens on `monitor`.
    None { monitor: &'a Path },
    /// The terminal, shared with QEMU's monitor (Ctrl-A X quits, Ctrl-A C
    /// switches), copied to `log`; `monitor`: a second monitor on a socket,
    /// for keys sent by a program.
    Terminal {
        log: &'a Path,
        monitor: Option<&'a Path>,
    },
}

/// The xHCI controller USB drives and the USB keyboard share: its id and `-device`.
const XHCI: (&str, &str) = ("xhci0", "qemu-xhci,id=xhci0");

/// The chardev id of the serial console.
const SERIAL: &str = "serial0";

/// A value inside a QEMU option list: UTF-8, with `,` doubled.
pub(super) fn opt(value: &Path) -> Result<String> {
    let s = value
        .to_str()
        .with_context(|| format!("path is not UTF-8: {}", value.display()))?;
    Ok(s.replace(',', ",,"))
}

/// QEMU's arguments for `machine` under `accel`, with the console on
/// `serial`; `vars`: this run's copy of the Secure Boot firmware's variable
/// store ([`super::FirmwareVars`]), which [`Firmware::SecureBoot`] needs.
pub(super) fn qemu_args(
    machine: &Machine,
    accel: Accel,
    serial: &Serial,
    vars: Option<&Path>,
) -> Result<Vec<OsString>> {
    let secure_boot = machine.boot == Boot::Firmware(Firmware::SecureBoot);
    if secure_boot && machine.machine_type != MachineType::Q35 {
        bail!(
            "Secure Boot firmware needs the q35 machine (its SMM protects the variable store), \
             not {}",
            machine.machine_type.name()
        );
    }
    let mut args: Vec<String> = accel.qemu_args().iter().map(|a| a.to_string()).collect();
    let mut push = |words: &[&str]| args.extend(words.iter().map(|w| w.to_string()));
    push(&["-nodefaults", "-no-user-config"]);
    if secure_boot {
        push(&[
            "-machine",
            &format!("{},smm=on", machine.machine_type.name()),
        ]);
    } else if machine.machine_type != MachineType::Pc {
        push(&["-machine", machine.machine_type.name()]);
    }
    if !machine.allow_reboot {
        push(&["-no-reboot"]);
    }
    match machine.display {
        Display::None => push(&["-display", "none"]),
        Display::Window => push(&["-vga", "std"]),
        Display::Screen(Vga::Std) => push(&["-display", "none", "-vga", "std"]),
        Display::Screen(Vga::Virtio) => push(&["-display", "none", "-device", "virtio-vga"]),
    }
    push(&["-m", &machine.memory_mib.to_string()]);
    push(&["-smp", &machine.cpus.to_string()]);

    // The monitor's socket: created at QEMU's start, connected on first use.
    let monitor_chardev = |path: &Path| -> Result<String> {
        Ok(format!(
            "socket,id=hmp,path={},server=on,wait=off",
            opt(path)?
        ))
    };
    const MONITOR_MON: &str = "chardev=hmp,mode=readline";
    match serial {
        Serial::Socket { console, monitor } => {
            push(&[
                "-chardev",
                &format!(
                    "socket,id={SERIAL},path={},server=on,wait=on",
                    opt(console)?
                ),
                "-serial",
                &format!("chardev:{SERIAL}"),
            ]);
            if let Some(monitor) = monitor {
                push(&["-chardev", &monitor_chardev(monitor)?, "-mon", MONITOR_MON]);
            }
        }
        Serial::None { monitor } => {
            push(&["-serial", "none"]);
            push(&["-chardev", &monitor_chardev(monitor)?, "-mon", MONITOR_MON]);
        }
        Serial::Terminal { log, monitor } => {
            push(&[
                "-chardev",
                &format!("stdio,id={SERIAL},mux=on,signal=off,logfile={}", opt(log)?),
                "-serial",
                &format!("chardev:{SERIAL}"),
                "-mon",
                &format!("chardev={SERIAL},mode=readline"),
            ]);
            if let Some(monitor) = monitor {
                push(&["-chardev", &monitor_chardev(monitor)?, "-mon", MONITOR_MON]);
            }
        }
    }

    match &machine.boot {
        Boot::Kernel { kernel, initrd, .. } => {
            push(&["-kernel", &path_str(kernel)?]);
            if let Some(initrd) = initrd {
                push(&["-initrd", &path_str(initrd)?]);
            }
            let cmdline = machine.kernel_cmdline().expect("a kernel boot");
            push(&["-append", &cmdline]);
        }
        Boot::Firmware(Firmware::Bios) => {}
        Boot::Firmware(Firmware::Uefi) => push(&["-bios", OVMF]),
        Boot::Firmware(Firmware::SecureBoot) => {
            let Some(vars) = vars else {
                bail!("Secure Boot firmware needs a copy of its variable store for this run");
            };
            // The flash chips answer only to code running in SMM (the
            // firmware), so the guest cannot rewrite the keys or turn Secure
            // Boot off; unit 0 the code, unit 1 the variables.
            push(&[
                "-global",
                "driver=cfi.pflash01,property=secure,value=on",
                "-drive",
                &format!(
                    "if=pflash,format=raw,unit=0,readonly=on,file={}",
                    opt(Path::new(OVMF_SECBOOT_CODE))?
                ),
                "-drive",
                &format!("if=pflash,format=raw,unit=1,file={}", opt(vars)?),
            ]);
        }
    }

    // Controllers are added before their first drive; ports count per bus.
    let mut ports = std::collections::BTreeMap::<&str, usize>::new();
    let mut boot_index = 0;
    // Drives on the chipset's own IDE/AHCI controller. On `pc` QEMU picks the
    // next free unit itself; q35's AHCI ports are buses of one unit each,
    // which QEMU does not fill in order by itself, so they are named.
    let mut builtin = 0;
    let q35 = machine.machine_type == MachineType::Q35;
    for (i, d) in machine.drives.iter().enumerate() {
        if !d.plugged {
            check_pluggable(d)?;
        }
        if d.read_only && matches!(d.bus, Bus::Ide | Bus::Sata) {
            bail!(
                "{}: QEMU's IDE and SATA disks cannot be read-only; use a snapshot drive",
                d.path.display()
            );
        }
        let id = drive_id(i);
        let mut drive = format!(
            "if=none,id={id},file={},format={}",
            opt(&d.path)?,
            d.format.name()
        );
        if d.read_only || d.bus == Bus::Cdrom {
            drive += ",readonly=on";
        }
        if d.snapshot {
            drive += ",snapshot=on";
        }
        let mut on_builtin = |kind: &str| -> Result<String> {
            let port = builtin;
            builtin += 1;
            let max = machine.machine_type.builtin_ide_ports();
            if port >= max {
                bail!(
                    "{}: the {} machine's built-in IDE/AHCI controller has {max} ports, all taken",
                    d.path.display(),
                    machine.machine_type.name()
                );
            }
            Ok(match q35 {
                true => format!("{kind},drive={id},bus=ide.{port}"),
                false => format!("{kind},drive={id}"),
            })
        };
        // `hub`: a device the drive's device plugs into, added just before it.
        let mut hub = None;
        let (controller, device) = match d.bus {
            Bus::Cdrom => (None, on_builtin("ide-cd")?),
            Bus::Ide => (None, on_builtin("ide-hd")?),
            Bus::Sata if q35 => (None, on_builtin("ide-hd")?),
            Bus::Virtio => (None, format!("virtio-blk-pci,drive={id}")),
            Bus::Nvme => (None, format!("nvme,drive={id},serial=k1os{i}")),
            Bus::Sata => (
                Some(("ahci0", "ahci,id=ahci0")),
                format!(
                    "ide-hd,drive={id},bus=ahci0.{}",
                    ports.get("ahci0").unwrap_or(&0)
                ),
            ),
            Bus::Scsi => (
                Some(("scsi0", "virtio-scsi-pci,id=scsi0")),
                format!(
                    "scsi-hd,drive={id},bus=scsi0.0,channel=0,scsi-id={},lun=0",
                    ports.get("scsi0").unwrap_or(&0)
                ),
            ),
            Bus::Usb => (Some(XHCI), usb_storage(&id)),
            // A UAS device is a SCSI host of its own with one target (0).
            Bus::Uas => {
                hub = Some(format!("usb-uas,id=uas{i},bus=xhci0.0"));
                (
                    Some(XHCI),
                    format!("scsi-hd,drive={id},bus=uas{i}.0,scsi-id=0,lun=0"),
                )
            }
        };
        if let Some((name, controller)) = controller {
            let port = ports.entry(name).or_insert(0);
            if *port == 0 {
                push(&["-device", controller]);
            }
            *port += 1;
        }
        if !d.plugged {
            // Only the backing file: `plug_command` adds the device later.
            push(&["-drive", &drive]);
            continue;
        }
        if let Some(hub) = hub {
            push(&["-device", &hub]);
        }
        let device = if d.boot {
            boot_index += 1;
            format!("{device},bootindex={}", boot_index - 1)
        } else {
            device
        };
        push(&["-drive", &drive, "-device", &device]);
    }

    if machine.usb_keyboard {
        // On the sticks' xHCI controller, added here when no drive needed it.
        if !ports.contains_key(XHCI.0) {
            push(&["-device", XHCI.1]);
        }
        push(&["-device", &format!("usb-kbd,bus={}.0", XHCI.0)]);
    }

    match &machine.network {
        None => {}
        Some(Network::User) => push(&["-nic", "user,model=virtio-net-pci"]),
        Some(Network::Restricted { forwards }) => {
            let mut netdev = format!("user,id={NETDEV},restrict=on");
            for forward in forwards {
                netdev += &format!(",guestfwd=tcp:{}-cmd:{}", forward.addr, command(forward)?);
            }
            push(&[
                "-netdev",
                &netdev,
                "-device",
                &format!("virtio-net-pci,netdev={NETDEV}"),
            ]);
        }
        Some(Network::Isolated) => push(&[
            "-netdev",
            &format!("hubport,id={NETDEV},hubid=0"),
            "-device",
            &format!("virtio-net-pci,netdev={NETDEV}"),
        ]),
    }
    Ok(args.into_iter().map(OsString::from).collect())
}

/// The USB stick (`usb-storage`) of drive `id` on the xHCI controller.
fn usb_storage(id: &str) -> String {
    format!("usb-storage,drive={id},bus={}.0,removable=on", XHCI.0)
}

/// The `-drive` id of `machine.drives[index]`.
fn drive_id(index: usize) -> String {
    format!("drive{index}")
}

/// Refuses a [`Drive::unplugged`](super::Drive::unplugged) drive that cannot
/// be plugged in later, or that the firmware would have to boot.
fn check_pluggable(d: &super::Drive) -> Result<()> {
    if d.bus != Bus::Usb {
        bail!(
            "{}: only a USB drive can be plugged in while the guest runs, not {:?} \
             (a virtio or NVMe disk is a PCI device, and the kernel has no PCI \
             hot-plug, CONFIG_HOTPLUG_PCI; IDE, SATA and CD drives are fixed)",
            d.path.display(),
            d.bus
        );
    }
    if d.boot {
        bail!(
            "{}: the firmware cannot boot a drive that is not plugged in at start",
            d.path.display()
        );
    }
    Ok(())
}

/// The monitor command that plugs in `machine.drives[index]`, defined at
/// start but not plugged in (its `-drive` and the xHCI controller are on
/// QEMU's command line, see [`qemu_args`]). The device gets the id `plug<N>`,
/// for a later `device_del`.
pub(super) fn plug_command(machine: &Machine, index: usize) -> Result<String> {
    let Some(d) = machine.drives.get(index) else {
        bail!(
            "no drive {index} to plug in: the machine has {} drive(s)",
            machine.drives.len()
        );
    };
    if d.plugged {
        bail!(
            "{}: drive {index} is plugged in at start; make it with `.unplugged()` to plug it \
             in later",
            d.path.display()
        );
    }
    check_pluggable(d)?;
    Ok(format!(
        "device_add {},id=plug{index}",
        usb_storage(&drive_id(index))
    ))
}

/// The id of the `-netdev` of a restricted or isolated network.
const NETDEV: &str = "net0";

/// A forward's command as the one string after `cmd:`. Its words are passed
/// bare and must need no quoting: libslirp 4.7 splits the string with
/// `g_shell_parse_argv`, older ones at single spaces, so a word without
/// whitespace, quotes, backslashes or `#` means the same to both; and a comma
/// would end QEMU's `-netdev` option.
fn command(forward: &GuestForward) -> Result<String> {
    let what = || format!("the guest forward to {}", forward.addr);
    if forward.command.is_empty() {
        bail!("{}: the command is empty", what());
    }
    for word in &forward.command {
        if word.is_empty() {
            bail!(
                "{}: an empty argument in {:?} (QEMU's cmd: forward cannot pass one)",
                what(),
                forward.command
            );
        }
        if let Some(c) = word
            .chars()
            .find(|c| c.is_whitespace() || matches!(c, ',' | '\'' | '"' | '\\' | '#'))
        {
            let why = match c {
                ',' => "a comma would end QEMU's -netdev option",
                _ => "libslirp splits the command into words itself and cannot be given quoting",
            };
            bail!(
                "{}: the argument {word:?} contains {c:?}, which QEMU's cmd: forward cannot \
                 pass ({why}); use a path or value without it",
                what()
            );
        }
    }
    Ok(forward.command.join(" "))
}

/// A path as a plain QEMU argument (UTF-8; not inside an option list).
fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("path is not UTF-8: {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::super::{Drive, Format};
    use super::*;

    fn joined(machine: &Machine) -> String {
        qemu_args(
            machine,
            Accel::Tcg,
            &Serial::Socket {
                console: Path::new("/s,1"),
                monitor: None,
            },
            None,
        )
        .unwrap()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect::<Vec<_>>()
        .join(" ")
    }

    #[test]
    fn a_kernel_boot() {
        let m = Machine::kernel("/k")
            .initrd("/i")
            .append("k1os.mode=ram  k1os.onfail=poweroff")
            .drive(Drive::cdrom("/media,1.iso"))
            .drive(Drive::virtio("/d.qcow2").format(Format::Qcow2));
        assert_eq!(
            m.kernel_cmdline().unwrap(),
            "console=ttyS0 printk.time=1 panic=-1 k1os.mode=ram k1os.onfail=poweroff"
        );
        let args = joined(&m);
        assert!(
            args.starts_with(
                "-accel tcg -nodefaults -no-user-config -no-reboot -display none -m 256 -smp 1 \
                 -chardev socket,id=serial0,path=/s,,1,server=on,wait=on -serial chardev:serial0 \
                 -kernel /k -initrd /i -append console=ttyS0"
            ),
            "{args}"
        );
        assert!(
            args.contains(
                "-drive if=none,id=drive0,file=/media,,1.iso,format=raw,readonly=on \
                 -device ide-cd,drive=drive0 "
            ),
            "{args}"
        );
        assert!(
            args.ends_with(
                "-drive if=none,id=drive1,file=/d.qcow2,format=qcow2 \
                 -device virtio-blk-pci,drive=drive1"
            ),
            "{args}"
        );
        assert!(!args.contains("bootindex"), "{args}");
    }

    #[test]
    fn a_firmware_boot_on_every_bus() {
        let m = Machine::firmware(Firmware::Uefi)
            .drive(Drive::usb("/k.iso").snapshot().boot())
            .drive(Drive::sata("/a.img"))
            .drive(Drive::sata("/b.img"))
            .drive(Drive::scsi("/c.img").read_only())
            .drive(Drive::scsi("/c.img").read_only())
            .drive(Drive::nvme("/n.img"))
            .drive(Drive::ide("/h.img").snapshot())
            .network(Network::User)
            .display(Display::Window)
            .allow_reboot(true)
            .memory_mib(1024)
            .cpus(2);
        let args = joined(&m);
        for part in [
            "-vga std -m 1024 -smp 2 ",
            &format!("-bios {OVMF} "),
            "-device qemu-xhci,id=xhci0 -drive if=none,id=drive0,file=/k.iso,format=raw,snapshot=on \
             -device usb-storage,drive=drive0,bus=xhci0.0,removable=on,bootindex=0 ",
            "-device ahci,id=ahci0 -drive if=none,id=drive1,file=/a.img,format=raw \
             -device ide-hd,drive=drive1,bus=ahci0.0 ",
            "-device ide-hd,drive=drive2,bus=ahci0.1 ",
            "-device virtio-scsi-pci,id=scsi0 -drive if=none,id=drive3,file=/c.img,format=raw,readonly=on \
             -device scsi-hd,drive=drive3,bus=scsi0.0,channel=0,scsi-id=0,lun=0 ",
            "-device scsi-hd,drive=drive4,bus=scsi0.0,channel=0,scsi-id=1,lun=0 ",
            "-device nvme,drive=drive5,serial=k1os5 ",
            "-drive if=none,id=drive6,file=/h.img,format=raw,snapshot=on -device ide-hd,drive=drive6 ",
        ] {
            assert!(args.contains(part), "{part:?} not in {args}");
        }
        assert!(args.ends_with("-nic user,model=virtio-net-pci"), "{args}");
        for absent in ["-no-reboot", "-display none", "-kernel", "-append"] {
            assert!(!args.contains(absent), "{absent} in {args}");
        }
        assert_eq!(args.matches("-device ahci").count(), 1, "{args}");
        assert_eq!(args.matches("-device virtio-scsi-pci").count(), 1, "{args}");
    }

    #[test]
    fn the_terminal_console_shares_the_monitor() {
        let m = Machine::firmware(Firmware::Bios).drive(Drive::cdrom("/k.iso").boot());
        let args = qemu_args(
            &m,
            Accel::Kvm,
            &Serial::Terminal {
                log: Path::new("/l.log"),
                monitor: Some(Path::new("/m.sock")),
            },
            None,
        )
        .unwrap()
        .into_iter()
        .map(|a| a.into_string().unwrap())
        .collect::<Vec<_>>()
        .join(" ");
        assert!(
            args.starts_with("-accel kvm -cpu host -nodefaults"),
            "{args}"
        );
        assert!(
            args.contains(
                "-chardev stdio,id=serial0,mux=on,signal=off,logfile=/l.log -serial chardev:serial0 \
                 -mon chardev=serial0,mode=readline \
                 -chardev socket,id=hmp,path=/m.sock,server=on,wait=off -mon chardev=hmp,mode=readline"
            ),
            "{args}"
        );
        assert!(
            args.contains("-device ide-cd,drive=drive0,bootindex=0"),
            "{args}"
        );
        assert!(!args.contains("-bios"), "{args}");
    }

    #[test]
    fn a_restricted_network_forwards_to_programs() {
        use super::super::GUEST_SERVER;
        let m = Machine::kernel("/k").network(Network::Restricted {
            forwards: vec![
                GuestForward::new(
                    GUEST_SERVER,
                    ["/t/host-tools", "repo", "serve", "--stdio", "--dir", "/r/x"],
                ),
                GuestForward::new("10.0.2.101:8080".parse().unwrap(), ["cat"]),
            ],
        });
        assert!(
            joined(&m).ends_with(
                "-netdev user,id=net0,restrict=on,\
                 guestfwd=tcp:10.0.2.100:80-cmd:/t/host-tools repo serve --stdio --dir /r/x,\
                 guestfwd=tcp:10.0.2.101:8080-cmd:cat \
                 -device virtio-net-pci,netdev=net0"
            ),
            "{}",
            joined(&m)
        );
        // Each word is one argument: QEMU gets the option as one argv entry.
        let args = qemu_args(
            &m,
            Accel::Tcg,
            &Serial::Socket {
                console: Path::new("/s"),
                monitor: None,
            },
            None,
        )
        .unwrap();
        let netdev = args.iter().position(|a| a == "-netdev").unwrap();
        assert!(
            args[netdev + 1]
                .to_str()
                .unwrap()
                .starts_with("user,id=net0")
        );
        assert_eq!(args[netdev + 2], "-device");

        let isolated = Machine::kernel("/k").network(Network::Isolated);
        assert!(
            joined(&isolated)
                .ends_with("-netdev hubport,id=net0,hubid=0 -device virtio-net-pci,netdev=net0"),
            "{}",
            joined(&isolated)
        );

        let alone = Machine::kernel("/k").network(Network::Restricted { forwards: vec![] });
        assert!(
            joined(&alone)
                .ends_with("-netdev user,id=net0,restrict=on -device virtio-net-pci,netdev=net0"),
            "{}",
            joined(&alone)
        );
    }

    #[test]
    fn a_forward_command_that_qemu_cannot_pass_is_refused() {
        let refused = |command: &[&str]| {
            let m = Machine::kernel("/k").network(Network::Restricted {
                forwards: vec![GuestForward::new(
                    "10.0.2.100:80".parse().unwrap(),
                    command.iter().copied(),
                )],
            });
            qemu_args(
                &m,
                Accel::Tcg,
                &Serial::Socket {
                    console: Path::new("/s"),
                    monitor: None,
                },
                None,
            )
            .unwrap_err()
            .to_string()
        };
        let err = refused(&["serve", "--dir", "/a,b"]);
        assert!(
            err.starts_with(
                "the guest forward to 10.0.2.100:80: the argument \"/a,b\" contains ','"
            ) && err.contains("a comma would end QEMU's -netdev option"),
            "{err}"
        );
        for word in ["/with space", "it's", "a\"b", "back\\slash", "#x", "tab\t"] {
            let err = refused(&["serve", word]);
            assert!(
                err.contains("libslirp splits the command"),
                "{word:?}: {err}"
            );
        }
        assert!(refused(&[]).ends_with("the command is empty"));
        assert!(refused(&["serve", ""]).contains("an empty argument"));
    }

    #[test]
    fn q35_puts_cds_and_disks_on_its_ahci_ports() {
        use super::super::MachineType;
        let m = Machine::firmware(Firmware::Uefi)
            .q35()
            .drive(Drive::cdrom("/k.iso").boot())
            .drive(Drive::sata("/a.img"))
            .drive(Drive::ide("/b.img").snapshot())
            .drive(Drive::nvme("/n.img"))
            .drive(Drive::usb("/s.img").snapshot())
            .drive(Drive::uas("/u.img").read_only());
        assert_eq!(m.machine_type, MachineType::Q35);
        let args = joined(&m);
        assert!(
            args.starts_with("-accel tcg -nodefaults -no-user-config -machine q35 -no-reboot "),
            "{args}"
        );
        for part in [
            "-drive if=none,id=drive0,file=/k.iso,format=raw,readonly=on \
             -device ide-cd,drive=drive0,bus=ide.0,bootindex=0 ",
            "-drive if=none,id=drive1,file=/a.img,format=raw -device ide-hd,drive=drive1,bus=ide.1 ",
            "-device ide-hd,drive=drive2,bus=ide.2 ",
            "-device nvme,drive=drive3,serial=k1os3 ",
            "-device qemu-xhci,id=xhci0 -drive if=none,id=drive4,file=/s.img,format=raw,snapshot=on \
             -device usb-storage,drive=drive4,bus=xhci0.0,removable=on ",
        ] {
            assert!(args.contains(part), "{part:?} not in {args}");
        }
        assert!(
            args.ends_with(
                "-device usb-uas,id=uas5,bus=xhci0.0 \
                 -drive if=none,id=drive5,file=/u.img,format=raw,readonly=on \
                 -device scsi-hd,drive=drive5,bus=uas5.0,scsi-id=0,lun=0"
            ),
            "{args}"
        );
        // The chipset's AHCI is used, not a second controller; one xHCI.
        assert!(!args.contains("-device ahci"), "{args}");
        assert_eq!(args.matches("-device qemu-xhci").count(), 1, "{args}");

        let pc = joined(&Machine::kernel("/k").drive(Drive::cdrom("/k.iso")));
        assert!(!pc.contains("-machine"), "{pc}");
        assert!(
            pc.contains("-device ide-cd,drive=drive0 ") || pc.ends_with("ide-cd,drive=drive0"),
            "{pc}"
        );
    }

    #[test]
    fn the_builtin_controller_runs_out_of_ports() {
        let mut m = Machine::kernel("/k").q35();
        for _ in 0..7 {
            m = m.drive(Drive::cdrom("/k.iso"));
        }
        let err = qemu_args(
            &m,
            Accel::Tcg,
            &Serial::Socket {
                console: Path::new("/s"),
                monitor: None,
            },
            None,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "/k.iso: the q35 machine's built-in IDE/AHCI controller has 6 ports, all taken"
        );
        let pc = (0..5).fold(Machine::kernel("/k"), |m, _| {
            m.drive(Drive::cdrom("/k.iso"))
        });
        let err = qemu_args(
            &pc,
            Accel::Tcg,
            &Serial::Socket {
                console: Path::new("/s"),
                monitor: None,
            },
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("the pc machine's built-in IDE/AHCI controller has 4 ports"),
            "{err}"
        );
    }

    #[test]
    fn an_unplugged_usb_drive_is_defined_and_plugged_in_by_the_monitor() {
        let m = Machine::kernel("/k")
            .drive(Drive::cdrom("/k.iso"))
            .drive(Drive::usb("/d,1.img").unplugged());
        let args = joined(&m);
        // The controller and the backing file, no device.
        assert!(
            args.ends_with(
                "-device qemu-xhci,id=xhci0 -drive if=none,id=drive1,file=/d,,1.img,format=raw"
            ),
            "{args}"
        );
        assert!(!args.contains("usb-storage"), "{args}");
        assert_eq!(
            m.plug_command(1).unwrap(),
            "device_add usb-storage,drive=drive1,bus=xhci0.0,removable=on,id=plug1"
        );
        // The same device string as a stick plugged in at start.
        let plugged = joined(&Machine::kernel("/k").drive(Drive::usb("/d.img")));
        assert!(
            plugged.ends_with("-device usb-storage,drive=drive0,bus=xhci0.0,removable=on"),
            "{plugged}"
        );
        // A USB keyboard shares the controller.
        let with_kbd = joined(&m.clone().usb_keyboard());
        assert_eq!(
            with_kbd.matches("-device qemu-xhci").count(),
            1,
            "{with_kbd}"
        );

        let err = |r: Result<String>| r.unwrap_err().to_string();
        assert_eq!(
            err(m.plug_command(0)),
            "/k.iso: drive 0 is plugged in at start; make it with `.unplugged()` to plug it in later"
        );
        assert_eq!(
            err(m.plug_command(2)),
            "no drive 2 to plug in: the machine has 2 drive(s)"
        );
        let serial = Serial::Socket {
            console: Path::new("/s"),
            monitor: None,
        };
        let virtio = Machine::kernel("/k").drive(Drive::virtio("/v.img").unplugged());
        let refused = err(qemu_args(&virtio, Accel::Tcg, &serial, None).map(|_| String::new()));
        assert!(
            refused.starts_with("/v.img: only a USB drive can be plugged in while the guest runs")
                && refused.contains("no PCI hot-plug"),
            "{refused}"
        );
        assert!(err(virtio.plug_command(0)).contains("only a USB drive"));
        let boot = Machine::firmware(Firmware::Bios).drive(Drive::usb("/b.img").unplugged().boot());
        assert!(
            err(qemu_args(&boot, Accel::Tcg, &serial, None).map(|_| String::new()))
                .contains("the firmware cannot boot a drive that is not plugged in")
        );
    }

    #[test]
    fn secure_boot_firmware_is_flash_with_smm_on_q35() {
        use super::super::{MachineType, OVMF_SECBOOT_VARS};
        let m = Machine::firmware(Firmware::SecureBoot).drive(Drive::cdrom("/k.iso").boot());
        assert_eq!(m.machine_type, MachineType::Q35, "chosen for it");
        let serial = Serial::Socket {
            console: Path::new("/s"),
            monitor: None,
        };
        let args: Vec<String> = qemu_args(&m, Accel::Tcg, &serial, Some(Path::new("/t/v,1.fd")))
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let line = args.join(" ");
        assert!(
            line.starts_with("-accel tcg -nodefaults -no-user-config -machine q35,smm=on "),
            "{line}"
        );
        let flash = [
            "-global",
            "driver=cfi.pflash01,property=secure,value=on",
            "-drive",
            "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
            "-drive",
            "if=pflash,format=raw,unit=1,file=/t/v,,1.fd",
        ];
        assert!(
            args.windows(flash.len()).any(|w| w == flash),
            "{flash:?} not in {line}"
        );
        // The run's copy, never the system's store; no -bios.
        assert!(!line.contains(OVMF_SECBOOT_VARS), "{line}");
        assert!(!line.contains("-bios"), "{line}");
        assert!(
            line.ends_with("-device ide-cd,drive=drive0,bus=ide.0,bootindex=0"),
            "{line}"
        );
        assert!(
            m.inputs()
                .contains(&Path::new("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")),
            "the store a copy is made from is checked before QEMU starts"
        );

        let err = |m: &Machine, vars: Option<&Path>| {
            qemu_args(m, Accel::Tcg, &serial, vars)
                .unwrap_err()
                .to_string()
        };
        assert!(
            err(&m, None).contains("needs a copy of its variable store"),
            "{}",
            err(&m, None)
        );
        let on_pc = m.clone().machine_type(MachineType::Pc);
        assert_eq!(
            err(&on_pc, Some(Path::new("/v.fd"))),
            "Secure Boot firmware needs the q35 machine (its SMM protects the variable store), \
             not pc"
        );
        // Plain UEFI keeps its one combined image and no SMM.
        let uefi = joined(&Machine::firmware(Firmware::Uefi).drive(Drive::cdrom("/k.iso")));
        assert!(uefi.contains(&format!("-bios {OVMF} ")), "{uefi}");
        assert!(
            !uefi.contains("pflash") && !uefi.contains("-machine"),
            "{uefi}"
        );
    }

    #[test]
    fn ide_and_sata_disks_cannot_be_read_only() {
        for drive in [Drive::ide("/x.img"), Drive::sata("/x.img")] {
            let m = Machine::kernel("/k").drive(drive.read_only());
            let err = qemu_args(
                &m,
                Accel::Tcg,
                &Serial::Socket {
                    console: Path::new("/s"),
                    monitor: None,
                },
                None,
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("cannot be read-only; use a snapshot"), "{err}");
        }
    }
}
