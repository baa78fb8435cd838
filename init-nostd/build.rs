//! Link stage 1 as a freestanding static executable: no C runtime, no libc.
//! `-bins` keeps these flags away from build scripts, tests and proc-macros.
fn main() {
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
