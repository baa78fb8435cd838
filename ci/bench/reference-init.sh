#!/bin/busybox sh
# K1OS reference stage 1: the classic busybox-script initramfs /init.
#
# BENCHMARK FIXTURE — this is NOT K1OS's stage 1 (that is init-nostd). It is
# the classic way of writing stage 1 (a busybox shell script: findfs, mount -o
# loop, switch_root), kept so the benchmarks can compare init-nostd against it,
# and so the QEMU harness and boot tests can be checked without init-nostd.
# `host_tools::testimg::reference_initramfs` packs it as /init together with a
# static busybox (/bin/busybox + applet links) and /dev/console.
#
# It follows the boot contract (docs/boot-contract.md) in its essentials:
# k1os.mode=auto|persist|ram, k1os.data=, k1os.media=, k1os.image=,
# k1os.timeout=, k1os.ramsize=, k1os.onfail=, init=, nopersist, persist=; the
# `k1os-init: ` log lines, `k1os-init: exec <init>` and `k1os-init: FATAL: `;
# /run/k1os/{media,lower,data|ram} and /run/k1os/boot. Simplified: no quoted
# values, no k1os.toram, media found by label K1OS or by trying every device,
# and "settled" in auto mode is a fixed short wait. It logs one line per
# phase as `k1os-init: <phase>: <detail>` (the contract's phase names, without
# stage 1's own µs clock), so the bench can time each phase from the printk
# timestamps of the /dev/kmsg copies.
export PATH=/bin

# fd 3 is /dev/kmsg once devtmpfs is mounted (it stays valid after /dev moves).
kmsg=
log() {
    echo "k1os-init: $*"
    [ -n "$kmsg" ] && echo "<6>k1os-init: $*" >&3
}

# Centiseconds since boot (from /proc/uptime).
now_cs() {
    read -r up _ </proc/uptime
    s=${up%.*}
    c=${up#*.}
    echo $((s * 100 + ${c#0}))
}

onfail=reboot
fatal() {
    log "FATAL: $*"
    sync
    case "$onfail" in
    poweroff) poweroff -f ;;
    halt) halt -f ;;
    shell)
        log "starting a shell (k1os.onfail=shell); leaving it reboots"
        setsid cttyhack sh
        sync
        reboot -f
        ;;
    *)
        log "rebooting in 10 s (k1os.onfail=reboot)"
        sleep 10
        reboot -f
        ;;
    esac
    while :; do sleep 3600; done
}

mount -t devtmpfs -o mode=0755,nosuid devtmpfs /dev || echo "k1os-init: FATAL: mounting devtmpfs on /dev failed"
if [ -c /dev/kmsg ]; then exec 3>/dev/kmsg; kmsg=1; fi
mount -t proc -o nosuid,nodev,noexec proc /proc || fatal "mounting proc on /proc failed"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fatal "mounting sysfs on /sys failed"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run || fatal "mounting tmpfs on /run failed"
t0=$(now_cs)
log "early: /proc /sys /dev /run mounted"

mode=auto data=LABEL=K1OS-DATA media= image=/system.squashfs timeout=15 ramsize=50% init=/sbin/init
for w in $(cat /proc/cmdline); do
    case "$w" in
    k1os.mode=*) mode=${w#*=} ;;
    k1os.data=*) data=${w#*=} ;;
    k1os.media=*) media=${w#*=} ;;
    k1os.image=*) image=${w#*=} ;;
    k1os.timeout=*) timeout=${w#*=} ;;
    k1os.ramsize=*) ramsize=${w#*=} ;;
    k1os.onfail=*) onfail=${w#*=} ;;
    k1os.debug | quiet) ;;
    init=*) init=${w#*=} ;;
    nopersist) mode=ram ;;
    persist=*) data=${w#*=} ;;
    k1os.*) log "unknown parameter ${w%%=*} ignored" ;;
    esac
done
case "$mode" in auto | persist | ram) ;; *) log "bad k1os.mode=$mode: using auto"; mode=auto ;; esac
case "$onfail" in shell | reboot | poweroff | halt) ;; *) log "bad k1os.onfail=$onfail: using reboot"; onfail=reboot ;; esac
case "$timeout" in '' | *[!0-9]*) log "bad k1os.timeout=$timeout: using 15"; timeout=15 ;; esac
log "mode=$mode data=$data image=$image timeout=${timeout}s"

# The device of LABEL=…, UUID=… or /dev/… (nothing if absent).
resolve() {
    case "$1" in
    LABEL=* | UUID=*) findfs "$1" 2>/dev/null ;;
    /dev/*) [ -b "$1" ] && echo "$1" ;;
    esac
}

mkdir -p /run/k1os/media /run/k1os/lower /newroot

# Mounts the media read-only on /run/k1os/media if it holds the image.
try_media() {
    for fs in iso9660 vfat ext4; do
        if mount -t $fs -o ro "$1" /run/k1os/media 2>/dev/null; then
            [ -f "/run/k1os/media$image" ] && return 0
            umount /run/k1os/media
        fi
    done
    return 1
}

find_media() {
    if [ -n "$media" ]; then
        dev=$(resolve "$media") && [ -n "$dev" ] && try_media "$dev" && return 0
        return 1
    fi
    dev=$(resolve LABEL=K1OS) && [ -n "$dev" ] && try_media "$dev" && return 0
    for sys in /sys/class/block/*; do
        [ "$(cat "$sys/size" 2>/dev/null)" = 0 ] && continue
        dev=/dev/${sys##*/}
        case "$dev" in /dev/loop* | /dev/ram*) continue ;; esac
        try_media "$dev" && return 0
    done
    return 1
}

deadline=$((t0 + timeout * 100))
until find_media; do
    [ "$(now_cs)" -ge "$deadline" ] && fatal "boot media with $image not found within ${timeout}s (k1os.media=${media:-LABEL=K1OS})"
    sleep 0.1
done
mdev=$dev
log "media: $mdev mounted on /run/k1os/media"

mount -t squashfs -o ro,loop "/run/k1os/media$image" /run/k1os/lower || fatal "mounting $image from $mdev failed"
log "image: $image mounted on /run/k1os/lower"

ddev=
if [ "$mode" != ram ]; then
    if [ "$mode" = persist ]; then wait_until=$deadline; else wait_until=$(($(now_cs) + 50)); fi
    while :; do
        ddev=$(resolve "$data")
        [ -n "$ddev" ] && break
        [ "$(now_cs)" -ge "$wait_until" ] && break
        sleep 0.1
    done
    if [ -z "$ddev" ]; then
        [ "$mode" = persist ] && fatal "data partition $data not found within ${timeout}s (k1os.mode=persist)"
        log "data partition $data not found: RAM mode, changes are lost at power-off"
    fi
fi

if [ -n "$ddev" ]; then
    mkdir -p /run/k1os/data
    mount -t ext4 "$ddev" /run/k1os/data || fatal "mounting data partition $ddev (ext4) on /run/k1os/data failed"
    mkdir -p /run/k1os/data/upper /run/k1os/data/work
    upper=/run/k1os/data
    bootmode=persist
    log "data: $ddev on /run/k1os/data"
else
    mkdir -p /run/k1os/ram
    mount -t tmpfs -o "size=$ramsize,mode=0755" tmpfs /run/k1os/ram || fatal "mounting tmpfs (size=$ramsize) on /run/k1os/ram failed"
    mkdir -p /run/k1os/ram/upper /run/k1os/ram/work
    upper=/run/k1os/ram
    bootmode=ram
    log "ram: tmpfs size=$ramsize on /run/k1os/ram"
fi
mount -t overlay -o "lowerdir=/run/k1os/lower,upperdir=$upper/upper,workdir=$upper/work,index=off" overlay /newroot ||
    fatal "mounting overlay (upper $upper/upper) on /newroot failed"
[ -f "/newroot$init" ] && [ -x "/newroot$init" ] || fatal "stage 2 $init is missing or not executable in the root image"
log "overlay: /newroot (upper $upper/upper, $bootmode mode), stage 2 $init"

t1=$(now_cs)
{
    echo "mode=$bootmode"
    echo "media=$mdev"
    echo "data=$ddev"
    echo "image=$image"
    echo "init=$init"
    echo "time_us.total=$(((t1 - t0) * 10000))"
} >/run/k1os/boot

for d in dev proc sys run; do
    mount --move /$d /newroot/$d || fatal "moving /$d to /newroot/$d failed"
done
log "switch_root: /dev /proc /sys /run moved"
log "exec $init"
[ -n "$kmsg" ] && exec 3>&-
exec env -i HOME=/ TERM=linux PATH=/usr/sbin:/usr/bin:/sbin:/bin /bin/switch_root /newroot "$init"
