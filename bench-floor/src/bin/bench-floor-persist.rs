//! The floor of stage 1, persistent mode (`/dev/vda` as the upper). See `../floor.rs`.
#![no_std]
#![no_main]

#[path = "../floor.rs"]
mod floor;

/// The entry point, called by `floor::_start`.
fn main() -> ! {
    floor::run(floor::Upper::Persist)
}
