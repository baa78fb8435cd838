# What the network service (/sbin/k1os-network) and its udhcpc event script
# (/usr/share/udhcpc/default.script) share. Sourced after contract.sh.

# Run-time state, in RAM (nothing here is worth a write to the data partition
# at every lease): per interface NAME, NAME.udhcpc (the pid of its udhcpc),
# NAME.lease (the address, route and DNS servers it configured), NAME.dns
# (its resolv.conf lines), NAME.waiting (a "no offer yet" line was logged);
# and resolv.conf, all interfaces' DNS lines, which /etc/resolv.conf links to.
K1OS_NETWORK_DIR=$K1OS_RUN_DIR/network
K1OS_NETWORK_SCRIPT=/usr/share/udhcpc/default.script

# One line "k1os: network: …" to the kernel log (a printk timestamp; syslog
# through klogd) and so to the console, which the kernel echoes info lines to
# unless the console log level hides them (`quiet`): then straight to the
# console, as rc.sysinit does with its ready line. /dev/kmsg is opened per
# line: the kernel rate-limits each open file to 10 lines per 5 s.
network_say() {
	level=7
	read -r level _ < /proc/sys/kernel/printk
	if ! { echo "<6>k1os: network: $*" > /dev/kmsg; } 2>/dev/null || [ "$level" -le 6 ]; then
		echo "k1os: network: $*" > /dev/console
	fi
}
