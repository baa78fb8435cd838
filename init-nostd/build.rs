//! Link stage 1 as a freestanding static executable: no C runtime, no libc,
//! laid out by `link.ld` (which drops the unwind tables: ~9 KiB of the 16 KiB
//! budget that a `panic = "abort"` binary never reads).
//! `-bins` keeps these flags away from build scripts, tests and proc-macros.
fn main() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("link.ld");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        &format!("-Wl,-T,{}", script.display()),
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=link.ld");
}
