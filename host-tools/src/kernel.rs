//! Kernel build (owned by the kernel helper; placeholder).
