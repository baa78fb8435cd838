//! Stage 2's network (`rootfs/sbin/k1os-network`, the udhcpc script
//! `rootfs/usr/share/udhcpc/default.script`): QEMU boots (TCG unless
//! `K1OS_ACCEL` says otherwise) of the real kernel (`build/kernel/bzImage`,
//! qemu profile: virtio-net, packet sockets), stage 1 and the real root
//! filesystem (`build/system.squashfs`) on a test ISO, like `stage2.rs`. Run
//! `./k1os kernel --profile qemu`, `./k1os initramfs` and `./k1os rootfs`
//! first.
//!
//! The networks ([`Network`]): restricted (QEMU's DHCP, and one reachable
//! server, `host-tools repo serve --stdio` run by QEMU per connection at
//! `http://10.0.2.100/`), QEMU's NAT (a router and DNS in the lease; nothing
//! is fetched from outside), isolated (a NIC and no DHCP server), none.
//!
//! Console logs are kept in `build/test-logs/network_*.log`; each test prints
//! the time from stage 1's hand-over to `k1os: stage 2 ready` (printk times),
//! so boots with and without a NIC can be compared, and when the lease came.
mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::{OrPanic, UnderTest, power_off, start_console};
use host_tools::bench::timeline::{Marker, Timeline};
use host_tools::testimg;
use host_tools::vm::{Console, Drive, GUEST_SERVER, GuestForward, Machine, Network};
use k1os_contract::contract;

/// From QEMU's start to the shell prompt (TCG boots take 3–8 s).
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// One shell command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// From the prompt to the lease line: QEMU's DHCP server answers the first
/// discover at once.
const LEASE_TIMEOUT: Duration = Duration::from_secs(60);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Every line of the network service starts so (`rootfs/lib/k1os/network.sh`).
const NETWORK_LINE: &str = "k1os: network: ";
/// The lease QEMU's DHCP server gives the first interface: the address
/// always; a router and a DNS server only when the network is not restricted
/// (libslirp leaves both options out then: there is nothing to route to).
const LEASE_LINE: &str = "k1os: network: eth0 10.0.2.15/24";

/// The boot media (ISO 9660 `K1OS` with the real `/system.squashfs`), made
/// once per process.
fn media() -> &'static Path {
    static ISO: OnceLock<PathBuf> = OnceLock::new();
    ISO.get_or_init(|| {
        let rootfs = UnderTest::with_rootfs().rootfs.expect("asked for");
        let iso = common::scratch("network").join("k1os.iso");
        testimg::iso(&rootfs, &iso).unwrap_or_else(|e| panic!("making the test ISO: {e:?}"));
        iso
    })
}

/// A RAM-mode boot of the kernel and initramfs under test from the media.
fn vm() -> Machine {
    let t = UnderTest::with_rootfs();
    Machine::kernel(t.kernel)
        .initrd(t.initrd)
        .append("k1os.mode=ram")
        .drive(Drive::cdrom(media()))
}

/// Waits for stage 1's hand-over, stage 2's ready line and the prompt, and
/// prints the time from the one to the other (printk times).
fn wait_for_shell_timed(c: &mut Console, name: &str) {
    common::wait_for_shell(c, BOOT_TIMEOUT);
    let t = Timeline::parse(&c.transcript());
    match (t.stage2_ready, t.span(Marker::Exec, Marker::Stage2Ready)) {
        (Some(ready), Some(us)) => eprintln!(
            "{name}: stage 2 ready at {:.3} s, {:.0} ms after stage 1's exec",
            ready as f64 / 1e6,
            us as f64 / 1000.0
        ),
        _ => panic!(
            "{}",
            c.failure("no printk timestamps on the exec or ready line")
        ),
    }
}

fn run_ok(c: &mut Console, command: &str) -> String {
    c.run_ok(command, COMMAND_TIMEOUT).or_panic()
}

#[track_caller]
fn assert_has(c: &Console, what: &str, text: &str, part: &str) {
    assert!(
        text.contains(part),
        "{}",
        c.failure(&format!("{what} lacks {part:?}:\n{text}"))
    );
}

/// Waits for the lease line (it comes whenever udhcpc gets the lease, before
/// or after the prompt: the boot does not wait for it) and returns it from
/// `k1os: network:` on; it must be the service's only line.
fn lease_line(c: &mut Console, name: &str) -> String {
    // Until the whole line is there (the console may have part of it).
    let transcript = loop {
        let transcript = c.transcript();
        match transcript.find(LEASE_LINE) {
            Some(at) if transcript[at..].contains('\n') => break transcript,
            Some(_) => c.wait_for("\n", LEASE_TIMEOUT).or_panic(),
            None => c.wait_for(LEASE_LINE, LEASE_TIMEOUT).or_panic(),
        };
    };
    let lines: Vec<&str> = transcript
        .lines()
        .filter_map(|l| l.find(NETWORK_LINE).map(|at| &l[at..]))
        .collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with(LEASE_LINE),
        "{}",
        c.failure(&format!(
            "the network service logged more than the lease: {lines:#?}"
        ))
    );
    let times = Timeline::parse(&transcript);
    let line = lines[0].trim_end().to_string();
    // The printk time of the lease line, against the ready line's.
    let at = transcript
        .lines()
        .find_map(|l| Some(&l[..l.find(LEASE_LINE)?]))
        .and_then(|before| before.rsplit_once('['))
        .and_then(|(_, t)| t.split_once(']'))
        .and_then(|(t, _)| t.trim().parse::<f64>().ok());
    match (at, times.stage2_ready) {
        (Some(at), Some(ready)) => eprintln!(
            "{name}: {line:?} at {at:.3} s, {:.0} ms after stage 2 ready",
            (at - ready as f64 / 1e6) * 1000.0
        ),
        _ => eprintln!("{name}: {line:?}"),
    }
    line
}

#[test]
fn dhcp_and_a_download_on_the_restricted_network() {
    let dir = common::scratch("network-served");
    // Unique per run, so a stale answer cannot pass.
    let content = format!(
        "served to the guest by repo serve --stdio, run {}\n",
        std::process::id()
    );
    std::fs::write(dir.join("hello.txt"), &content).unwrap();
    let server = GuestForward::new(
        GUEST_SERVER,
        [
            env!("CARGO_BIN_EXE_host-tools"),
            "repo",
            "serve",
            "--stdio",
            "--dir",
            dir.to_str().expect("a UTF-8 scratch path"),
        ],
    );
    let vm = vm().network(Network::Restricted {
        forwards: vec![server],
    });
    let name = "network_restricted";
    let mut c = start_console(&vm, name);
    wait_for_shell_timed(&mut c, name);

    let lease = lease_line(&mut c, name);
    assert_eq!(
        lease,
        format!("{LEASE_LINE} (no router)"),
        "{}",
        c.failure("a restricted network's lease has a router or DNS")
    );
    let addr = run_ok(&mut c, "ip -4 addr show dev eth0");
    assert_has(&c, "`ip -4 addr`", &addr, "inet 10.0.2.15/24");
    assert_eq!(
        c.run("k1os-service status network", COMMAND_TIMEOUT)
            .or_panic()
            .status,
        0,
        "{}",
        c.failure("the network service is not running")
    );

    // Twice: QEMU starts one server per connection.
    let url = format!("http://{}/hello.txt", GUEST_SERVER.ip());
    for _ in 0..2 {
        let got = run_ok(&mut c, &format!("wget -q -O - {url}"));
        assert_eq!(
            got,
            content,
            "{}",
            c.failure(&format!("wget {url} printed something else"))
        );
    }
    // The whole connection, read to its end, is the HTTP answer: the server
    // writes nothing else into it (QEMU gives it the connection as stdin,
    // stdout and stderr).
    let raw = run_ok(
        &mut c,
        "printf 'GET /hello.txt HTTP/1.0\\r\\n\\r\\n' | nc 10.0.2.100 80",
    );
    assert!(
        raw.starts_with("HTTP/1.1 200") && raw.ends_with(&content),
        "{}",
        c.failure(&format!(
            "the connection carried more than the answer:\n{raw}"
        ))
    );
    // Restricted: nothing else answers, not even the host behind the gateway.
    let out = c
        .run("wget -q -T 3 -O - http://10.0.2.2/", COMMAND_TIMEOUT)
        .or_panic();
    assert_ne!(
        out.status,
        0,
        "{}",
        c.failure(&format!(
            "the guest reached the gateway on a restricted network:\n{}",
            out.text
        ))
    );

    power_off(&mut c, SHUTDOWN_TIMEOUT);
}

#[test]
fn dhcp_sets_the_route_and_dns_on_the_user_network() {
    // QEMU's NAT network: its DHCP server also gives a router and a DNS
    // server. Nothing is fetched from outside.
    let name = "network_user";
    let mut c = start_console(&vm().network(Network::User), name);
    wait_for_shell_timed(&mut c, name);

    let lease = lease_line(&mut c, name);
    assert_eq!(
        lease,
        format!("{LEASE_LINE} via 10.0.2.2, dns 10.0.2.3"),
        "{}",
        c.failure("the lease line")
    );
    let routes = run_ok(&mut c, "ip -4 route");
    assert_has(
        &c,
        "`ip -4 route`",
        &routes,
        "default via 10.0.2.2 dev eth0",
    );
    let resolv = run_ok(&mut c, "cat /etc/resolv.conf");
    assert_has(&c, "/etc/resolv.conf", &resolv, "nameserver 10.0.2.3");
    // /etc/resolv.conf is the file under /run: RAM, not the data partition.
    let target = run_ok(&mut c, "readlink -f /etc/resolv.conf");
    assert_eq!(
        target.trim(),
        format!("{}/network/resolv.conf", contract::RUN_DIR),
        "{}",
        c.failure("/etc/resolv.conf does not resolve to the run directory")
    );

    // Supervision: a udhcpc that dies is started again (within the
    // service's 5 s poll), which gets the lease again.
    let pid = run_ok(&mut c, "cat /run/k1os/network/eth0.udhcpc");
    let pid = pid.trim();
    run_ok(&mut c, &format!("kill {pid}"));
    c.wait_for(
        &format!("k1os: network: eth0: udhcpc (pid {pid}) exited; starting it again"),
        LEASE_TIMEOUT,
    )
    .or_panic();
    c.wait_for(LEASE_LINE, LEASE_TIMEOUT).or_panic();
    let again = run_ok(&mut c, "cat /run/k1os/network/eth0.udhcpc");
    assert_ne!(
        again.trim(),
        pid,
        "{}",
        c.failure("udhcpc was not restarted")
    );
    let routes = run_ok(&mut c, "ip -4 route");
    assert_has(
        &c,
        "`ip -4 route` after the restart",
        &routes,
        "default via 10.0.2.2 dev eth0",
    );

    power_off(&mut c, SHUTDOWN_TIMEOUT);
}

#[test]
fn a_nic_without_a_dhcp_server_does_not_hold_the_boot() {
    // The link is up, nothing answers: udhcpc keeps asking in the background
    // and says so once, after its first round of discovers (3, 3 s apart).
    let name = "network_isolated";
    let mut c = start_console(&vm().network(Network::Isolated), name);
    wait_for_shell_timed(&mut c, name);
    let waiting = "k1os: network: eth0: no DHCP offer yet; udhcpc keeps asking in the background";
    c.wait_for(waiting, LEASE_TIMEOUT).or_panic();
    let link = run_ok(&mut c, "ip link show dev eth0");
    // Brought up by the deconfig event; LOWER_UP: the carrier is there.
    assert_has(&c, "`ip link show dev eth0`", &link, ",UP,LOWER_UP>");
    let addr = run_ok(&mut c, "ip -4 addr show dev eth0");
    assert!(
        !addr.contains("inet "),
        "{}",
        c.failure(&format!("eth0 has an address without a lease:\n{addr}"))
    );
    let pid = run_ok(&mut c, "cat /run/k1os/network/eth0.udhcpc");
    assert_eq!(
        c.run(&format!("kill -0 {}", pid.trim()), COMMAND_TIMEOUT)
            .or_panic()
            .status,
        0,
        "{}",
        c.failure("udhcpc gave up")
    );
    let lines = c
        .transcript()
        .lines()
        .filter(|l| l.contains(NETWORK_LINE))
        .count();
    assert_eq!(lines, 1, "{}", c.failure("more than the one waiting line"));
    power_off(&mut c, SHUTDOWN_TIMEOUT);
}

#[test]
fn no_nic_reaches_stage_2_without_a_network_line() {
    let name = "network_none";
    let mut c = start_console(&vm(), name);
    wait_for_shell_timed(&mut c, name);

    // lo and the kernel's virtual interfaces (sit0), none of a device.
    let devices = run_ok(&mut c, "ls -d /sys/class/net/*/device 2>/dev/null; true");
    assert_eq!(
        devices.trim(),
        "",
        "{}",
        c.failure("a machine without a NIC has a network device")
    );
    // The service runs (it would pick up an interface that appears later)
    // and has said nothing.
    assert_eq!(
        c.run("k1os-service status network", COMMAND_TIMEOUT)
            .or_panic()
            .status,
        0,
        "{}",
        c.failure("the network service is not running")
    );
    let transcript = c.transcript();
    for bad in [NETWORK_LINE, "k1os: service network: cannot"] {
        assert!(
            !transcript.contains(bad),
            "{}",
            c.failure(&format!("{bad:?} on a boot without a NIC"))
        );
    }
    power_off(&mut c, SHUTDOWN_TIMEOUT);
}
