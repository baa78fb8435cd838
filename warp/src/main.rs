//! `warp`, K1OS's package manager. SKELETON: helper B writes the command
//! line (lexopt) and dispatch here; one file per command under `cmd/`.
mod context;
mod crash;
mod db;
mod error;
mod layout;
mod txn;
mod cmd;

fn main() {}
