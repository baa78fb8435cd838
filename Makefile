# The familiar K1OS targets; each is a thin call of host-tools.
HOST_TOOLS := cargo run --quiet --locked -p host-tools --
PROFILE ?= $(or $(K1OS_KERNEL_PROFILE),generic)

.PHONY: doctor kernel initramfs test

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

test:
	ci/test.sh

# Size and startup benchmarks: build/bench/results.json and report.md.
.PHONY: bench
bench:
	$(HOST_TOOLS) bench
