# The familiar K1OS targets, each a thin call of ./k1os (host-tools, K1OS's
# build CLI). `make` alone prints the help below.
K1OS := ./k1os

# Kernel profile for `kernel` and `iso`: qemu, generic or debian. Left empty,
# host-tools reads $K1OS_KERNEL_PROFILE, else uses generic.
PROFILE ?=
# Extra flags, e.g. `make qemu QEMU_FLAGS="--uefi --usb"`,
# `make make-persist PERSIST_FLAGS="--size 4G"`.
QEMU_FLAGS ?=
PERSIST_FLAGS ?=

# Where `clean` and `cache-clean` look: what host-tools uses (an empty
# variable counts as unset; a relative K1OS_BUILD_DIR is taken from the checkout,
# which is where make runs).
BUILD_DIR := $(or $(K1OS_BUILD_DIR),build)
CACHE_DIR := $(or $(K1OS_CACHE),$(HOME)/.cache/k1os)

profile_flag = $(if $(PROFILE),--profile $(PROFILE))

.DEFAULT_GOAL := help
.PHONY: help doctor kernel initramfs packages rootfs iso all-build qemu \
	make-persist qemu-persist test test-generic bench clean cache-clean

define HELP
K1OS make targets; each runs ./k1os (see `./k1os --help` for all of it).

Build:
  make iso           install what the build needs (doctor), then build/k1os.iso
  make doctor        install the host packages and rustup targets the build
                     needs (apt-get through sudo unless you are root)
  make kernel        build/kernel/bzImage (cached: generic ~20 min the 1st time)
  make initramfs     build/init and build/initramfs.img
  make packages      list the packages: versions, licences, cached or not
  make rootfs        build the packages and build/system.squashfs
  make all-build     the same as make iso

Run and test:
  make qemu          boot build/k1os.iso in QEMU (Ctrl-A X quits)
  make make-persist  build/persist.img, a 2 GiB data disk (kept if it exists)
  make qemu-persist  boot with that data disk: changes survive a reboot
  make test          every test, as CI runs them (ci/test.sh; installs what it
                     needs first)
  make test-generic  the generic ISO on emulated PC hardware (q35; BIOS, UEFI;
                     CD, USB; RAM, persistent; the screen console); not in CI:
                     builds the generic kernel (~25 min the 1st time)
  make bench         size and boot-time benchmarks (build/bench/)

Clean:
  make clean         remove build/, except the data disks build/persist.*
  make cache-clean   remove the kernel and package cache shared by every
                     checkout (the next build takes long again)

Variables (make VAR=value target):
  PROFILE=qemu|generic|debian
                        kernel profile for kernel and iso (debian: Debian's
                        signed kernel package, its modules in the initramfs)
                        [default: $$K1OS_KERNEL_PROFILE, else generic]
  QEMU_FLAGS="…"        flags for qemu and qemu-persist, e.g. "--uefi --usb",
                        --ram-mode, "--memory 2G" (./k1os qemu --help)
  PERSIST_FLAGS="…"     flags for make-persist, e.g. "--size 4G",
                        "--format qcow2", --force (./k1os make-persist --help)

Environment (see ./k1os --help): K1OS_KERNEL_PROFILE, K1OS_CACHE,
K1OS_BUILD_DIR, K1OS_ACCEL, SOURCE_DATE_EPOCH, CARGO_TARGET_DIR, K1OS_ROOT.
Now: build directory $(BUILD_DIR), cache $(CACHE_DIR).
endef
export HELP

help:
	@echo "$$HELP"

# Installs what `make iso` needs (not the test tools: `make test` does those).
doctor:
	$(K1OS) doctor --install --for build

kernel:
	$(K1OS) kernel $(profile_flag)

initramfs:
	$(K1OS) initramfs

packages:
	$(K1OS) packages

# The packages (cached) and build/system.squashfs.
rootfs:
	$(K1OS) rootfs

# Installs what the build needs first, then builds build/k1os.iso and
# everything it is made from (kernel, initramfs, root filesystem).
iso: doctor
	$(K1OS) iso $(profile_flag)

all-build: iso

qemu:
	$(K1OS) qemu $(QEMU_FLAGS)

# An existing image is kept (with a note), so a second `make make-persist`
# succeeds; PERSIST_FLAGS=--force replaces it.
make-persist:
	$(K1OS) make-persist --if-missing $(PERSIST_FLAGS)

# build/persist.img, else build/persist.qcow2, else a new build/persist.img.
qemu-persist:
	$(K1OS) qemu --persist $(QEMU_FLAGS)

test:
	ci/test.sh

# The generic ISO (what `make iso` builds) on emulated PC hardware: q35, BIOS
# and UEFI, CD and USB stick, RAM and persistent, the screen without a serial
# port. Not in CI: the generic kernel's first build takes about 25 minutes.
# Rows for docs/hardware.md are the `HARDWARE |` lines.
# build/kernel/ gets the qemu kernel back afterwards (cached), which the other
# tests boot.
test-generic:
	$(K1OS) doctor --install
	$(K1OS) kernel --profile generic
	cargo test --locked -p host-tools --test generic -- --ignored --nocapture \
		--test-threads=1; status=$$?; $(K1OS) kernel --profile qemu; exit $$status

# Size and startup benchmarks: build/bench/results.json and report.md.
bench:
	$(K1OS) bench

# Refuses directories that cannot be a build directory (K1OS_BUILD_DIR=/ …).
define refuse_dangerous
	@case "$(1)" in ""|/|.|..|./|"$(HOME)"|"$(HOME)/"|"$(CURDIR)"|"$(CURDIR)/") \
		echo "make: refusing to remove '$(1)' ($(2))" >&2; exit 1;; esac
endef

# Everything in build/ but the data disks, which hold what you saved in QEMU.
clean:
	$(call refuse_dangerous,$(BUILD_DIR),K1OS_BUILD_DIR)
	@if [ -d "$(BUILD_DIR)" ]; then \
		find "$(BUILD_DIR)" -mindepth 1 -maxdepth 1 ! -name persist.img \
			! -name persist.qcow2 -exec rm -rf -- {} +; \
		for f in "$(BUILD_DIR)"/persist.img "$(BUILD_DIR)"/persist.qcow2; do \
			[ ! -e "$$f" ] || echo "kept $$f (a data disk: remove it yourself)"; \
		done; \
		echo "removed the contents of $(BUILD_DIR)/"; \
	fi

# The cache is shared by every checkout on this machine: kernels (the generic
# one takes about 20 minutes to rebuild), packages and their sources.
cache-clean:
	$(call refuse_dangerous,$(CACHE_DIR),K1OS_CACHE)
	@echo "note: removing $(CACHE_DIR), the kernel and package cache every K1OS" \
		"checkout on this machine shares; the next build rebuilds the kernel" \
		"(about 20 minutes for generic)"
	rm -rf -- "$(CACHE_DIR)"
