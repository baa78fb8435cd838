//! `host-tools`: the K1OS build CLI. One file per subcommand under `commands/`,
//! each thin; the work lives in the library modules (`host_tools::…`).
use anyhow::Result;
use clap::{Parser, Subcommand};

mod commands;

#[derive(Parser)]
#[command(name = "host-tools", version, about = "Build, boot and test K1OS")]
struct Cli {
    /// Print the command lines of external programs as they run.
    #[arg(long, short, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Doctor(commands::doctor::Args),
    Kernel(commands::kernel::Args),
    Initramfs(commands::initramfs::Args),
    Iso(commands::iso::Args),
    MakePersist(commands::make_persist::Args),
    Qemu(commands::qemu::Args),
    Packages(commands::packages::Args),
    Rootfs(commands::rootfs::Args),
    Bench(commands::bench::Args),
}

fn main() {
    let cli = Cli::parse();
    host_tools::ui::set_verbose(cli.verbose);
    let result: Result<()> = match cli.command {
        Command::Doctor(args) => commands::doctor::exec(args),
        Command::Kernel(args) => commands::kernel::exec(args),
        Command::Initramfs(args) => commands::initramfs::exec(args),
        Command::Iso(args) => commands::iso::exec(args),
        Command::MakePersist(args) => commands::make_persist::exec(args),
        Command::Qemu(args) => commands::qemu::exec(args),
        Command::Packages(args) => commands::packages::exec(args),
        Command::Rootfs(args) => commands::rootfs::exec(args),
        Command::Bench(args) => commands::bench::exec(args),
    };
    if let Err(err) = result {
        host_tools::ui::error(&err);
        std::process::exit(1);
    }
}
