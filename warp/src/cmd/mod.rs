//! One file per command, each with `HELP` (its `--help` text) and
//! `run(ctx, parser)`, which reads the command's own arguments from the
//! parser (the global options are already taken out by `main`).
//!
//! Owners while the first version is written: helper A — verify, fix,
//! history, rollback, recover; helper B — everything else and `main.rs`.
pub mod fix;
pub mod history;
pub mod info;
pub mod install;
pub mod key;
pub mod list;
pub mod recover;
pub mod remove;
pub mod repo;
pub mod rollback;
pub mod search;
pub mod update;
pub mod upgrade;
pub mod verify;
