//! The floor of stage 1, RAM mode (tmpfs upper). See `../floor.rs`.
#![no_std]
#![no_main]

#[path = "../floor.rs"]
mod floor;

/// The entry point, called by `floor::_start`.
fn main() -> ! {
    floor::run(floor::Upper::Ram)
}
