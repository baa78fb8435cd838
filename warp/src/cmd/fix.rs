//! `warp fix` (stub: to be written).
use crate::context::Ctx;
use crate::error::{Error, Result};

pub const HELP: &str = "warp fix: not written yet";

pub fn run(_ctx: &Ctx, _args: &mut lexopt::Parser) -> Result<()> {
    Err(Error::failure("warp fix: not written yet"))
}
