use anyhow::Result;

/// (placeholder)
#[derive(clap::Args)]
pub struct Args {}

pub fn exec(_args: Args) -> Result<()> {
    anyhow::bail!("not implemented yet")
}
