//! `warp repo` (stub: to be written).
use crate::context::Ctx;
use crate::error::{Error, Result};

pub const HELP: &str = "warp repo: not written yet";

pub fn run(_ctx: &Ctx, _args: &mut lexopt::Parser) -> Result<()> {
    Err(Error::failure("warp repo: not written yet"))
}
