//! Link the floor as a freestanding static executable, like stage 1 (no C
//! runtime, no libc). `-bins` keeps the flags away from this build script.
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
