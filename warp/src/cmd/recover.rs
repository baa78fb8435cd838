//! `warp recover` (stub: to be written).
use crate::context::Ctx;
use crate::error::{Error, Result};

pub const HELP: &str = "warp recover: not written yet";

pub fn run(_ctx: &Ctx, _args: &mut lexopt::Parser) -> Result<()> {
    Err(Error::failure("warp recover: not written yet"))
}
