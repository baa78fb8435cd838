# The familiar K1OS targets; each is a thin call of host-tools.
HOST_TOOLS := cargo run --quiet --locked -p host-tools --
PROFILE ?= $(or $(K1OS_KERNEL_PROFILE),generic)
# Extra flags, e.g. `make qemu QEMU_FLAGS="--uefi --usb"`, `make make-persist PERSIST_FLAGS="--size 4G"`.
QEMU_FLAGS ?=
PERSIST_FLAGS ?=

.PHONY: doctor kernel initramfs iso all-build qemu make-persist qemu-persist test

doctor:
	$(HOST_TOOLS) doctor --install

kernel:
	$(HOST_TOOLS) kernel --profile $(PROFILE)

initramfs:
	$(HOST_TOOLS) initramfs

# The packages (cached) and build/system.squashfs.
.PHONY: rootfs
rootfs:
	$(HOST_TOOLS) rootfs

# Installs what the build needs first, then builds build/k1os.iso and
# everything it is made from (kernel, initramfs, root filesystem).
iso: doctor
	$(HOST_TOOLS) iso --profile $(PROFILE)

all-build: iso

qemu:
	$(HOST_TOOLS) qemu $(QEMU_FLAGS)

make-persist:
	$(HOST_TOOLS) make-persist $(PERSIST_FLAGS)

qemu-persist:
	$(HOST_TOOLS) qemu --persist $(QEMU_FLAGS)

test:
	ci/test.sh

# Size and startup benchmarks: build/bench/results.json and report.md.
.PHONY: bench
bench:
	$(HOST_TOOLS) bench
