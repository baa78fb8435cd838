#!/usr/bin/env bash
# Seeds for the fuzz corpus: real inputs, so the fuzzer starts from what the
# parsers meet in practice. Run once (or when a format changes), then fuzz and
# minimise (`cargo fuzz cmin`, docs/fuzzing.md); the committed corpus is the
# result, not these seeds.
#
# - cmdline: the ISO's grub.cfg lines and the boot contract's examples;
# - probe: superblocks made by mkfs.ext2/3/4, mkfs.vfat (FAT12/16/32),
#   mksquashfs and xorriso, folded as the target reads them (the first 2 KiB,
#   then the bytes from 0x8000 to PROBE_LEN);
# - warp_*: the repository the ISO tests publish (build/test-iso/repo, made by
#   `cargo test -p host-tools --test pc_hardware` and friends) when present:
#   its index.json, the public key and signature; the smallest archive
#   under build/ (its tar stream and manifest).
#   signify-openbsd makes a secret key to go with them; warp_paths gets two
#   package paths.
#
# Needs the tools `./k1os doctor` lists for tests. Writes fuzz/corpus/<target>/seed-*.
set -euo pipefail
cd "$(dirname "$0")"
corpus=corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

seed() { # target name < bytes
    mkdir -p "$corpus/$1"
    cat >"$corpus/$1/seed-$2"
}

# --- cmdline
cmdline() { printf '%s\n' "$2" | seed cmdline "$1"; }
cmdline grub-auto 'BOOT_IMAGE=/boot/vmlinuz console=tty0 console=ttyS0,115200 k1os.mode=auto'
cmdline grub-ram 'BOOT_IMAGE=/boot/vmlinuz console=tty0 console=ttyS0,115200 k1os.mode=ram'
cmdline grub-debug 'console=tty0 console=ttyS0,115200 k1os.mode=auto k1os.debug loglevel=7 printk.time=1'
cmdline quoted 'quiet k1os.data="LABEL=MY DATA" "k1os.media=LABEL=K1OS" k1os.image="/my images/root.sfs"'
cmdline every-key 'k1os.mode=persist k1os.data=UUID=0b4a5c3e-1f2d-4e5f-8a9b-0c1d2e3f4a5b k1os.media=/dev/sr0 k1os.image=/k1os/root.sfs k1os.timeout=30 k1os.toram=yes k1os.ramsize=512M init=/bin/sh k1os.onfail=poweroff quiet=on'
cmdline legacy 'persist=/dev/sdb2 nopersist -- k1os.debug=1'
cmdline bad 'k1os.mode=bogus k1os.timeout=abc k1os.data= k1os.tmeout=5 k1os.ramsize=101% "k1os.data=LABEL=unterminated'

# --- probe
fold() { # image name
    { dd if="$1" bs=2048 count=1 status=none
      dd if="$1" bs=2048 skip=$((0x8000 / 2048)) count=1 status=none; } | seed probe "$2"
}
mkimg() { truncate -s "$2" "$tmp/$1.img"; }
for fs in ext2 ext3 ext4; do
    mkimg "$fs" 8M
    "mkfs.$fs" -q -F -L K1OS-DATA "$tmp/$fs.img"
    fold "$tmp/$fs.img" "$fs"
done
for bits in 12 16 32; do
    mkimg "fat$bits" 40M
    mkfs.vfat -F "$bits" -n K1OS "$tmp/fat$bits.img" >/dev/null
    fold "$tmp/fat$bits.img" "fat$bits"
done
mkdir -p "$tmp/tree/boot"
echo hello >"$tmp/tree/boot/hello"
mksquashfs "$tmp/tree" "$tmp/sq.img" -quiet -noappend -all-root >/dev/null
head -c 96 "$tmp/sq.img" | seed probe squashfs
xorriso -as mkisofs -quiet -V K1OS -o "$tmp/iso.img" "$tmp/tree" 2>/dev/null
fold "$tmp/iso.img" iso9660

# --- warp
# warp_paths: the first byte picks the prefix (1 = usr/local/, 2 = opt/).
printf '\002bin/hello' | seed warp_paths usr-local-file
printf '\005tool/lib' | seed warp_paths opt-dir
repo=../build/test-iso/repo
if [ -f "$repo/index.json" ]; then
    seed warp_index index <"$repo/index.json"
    # The smallest archive the tests made (tests/warp_vm.rs's are a few
    # hundred bytes), whole: a stream warp accepts.
    smallest=$(find ../build -name '*.warp' -not -path '*tampered*' -printf '%s %p\n' | sort -n | awk 'NR == 1 { print $2 }')
    zstd -qdc "$smallest" >"$tmp/archive.tar"
    tar -xOf "$tmp/archive.tar" .WARP/manifest.json | seed warp_manifest manifest
    # warp_archive's raw mode: an even first byte, then the tar stream.
    { printf '\0'; cat "$tmp/archive.tar"; } | seed warp_archive tar
    signify-openbsd -G -n -p "$tmp/k.pub" -s "$tmp/k.sec" -c "fuzz seed"
    # warp_signify: .pub 0xFF .sig 0xFF .sec 0xFF message.
    { cat "$repo/k1os-build.pub"; printf '\377'; cat "$repo/index.json.sig"; printf '\377'
      cat "$tmp/k.sec"; printf '\377'; cat "$repo/index.json"; } | seed warp_signify repo
else
    echo "note: $repo is missing: no warp seeds (the targets start from nothing)" >&2
fi
echo "seeds written under fuzz/$corpus/"
