//! initramfs packing (placeholder).
