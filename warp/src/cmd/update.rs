//! `warp update` (stub: to be written).
use crate::context::Ctx;
use crate::error::{Error, Result};

pub const HELP: &str = "warp update: not written yet";

pub fn run(_ctx: &Ctx, _args: &mut lexopt::Parser) -> Result<()> {
    Err(Error::failure("warp update: not written yet"))
}
