//! `host-tools`: the K1OS build CLI, run as `./k1os` from a checkout. One
//! file per subcommand under `commands/`, each thin; the work lives in the
//! library modules (`host_tools::…`).
use anyhow::Result;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::path::Path;

use host_tools::{paths, ui};

mod commands;

/// The quick workflow, in build order: the top of `--help`'s epilogue
/// (lines fit 80 columns).
const WORKFLOW: &str = "\
The pieces in build order (each builds what it needs; `./k1os iso` does all):
  ./k1os doctor --install --for build  install what the build needs
  ./k1os kernel --profile qemu         build/kernel/bzImage (cached)
  ./k1os initramfs                     build/init, build/initramfs.img
  ./k1os packages                      the packages: licences, cached or not
  ./k1os rootfs                        the packages, build/system.squashfs
  ./k1os repo build                    build/repo/: warp's signed repository
  ./k1os iso --profile qemu            build/k1os.iso (generic: for real PCs)
  ./k1os make-persist                  build/persist.img, a 2 GiB data disk
  ./k1os qemu --persist                boot the ISO in QEMU with that disk
  ./k1os bench --quick                 stage 1's size and boot time

The checkout is the one holding the current directory. `build/` means
$K1OS_BUILD_DIR, else <checkout>/build. `./k1os COMMAND --help` shows a
command's options and examples; `make help` the make targets.";

/// What the exit statuses mean: the end of `--help`.
const EXIT_STATUS: &str = "\
Exit status: 0 success; 1 failure (a check that found problems too); 2 bad usage.";

#[derive(Parser)]
#[command(
    name = "host-tools",
    bin_name = "./k1os",
    version,
    about = "Build, boot and test K1OS"
)]
struct Cli {
    /// Print the command lines of external programs as they run, and where
    /// things are (checkout, build directory, cache)
    #[arg(long, short, global = true, display_order = 1000)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands in build order (`--help` lists them so).
#[derive(Subcommand)]
enum Command {
    Doctor(commands::doctor::Args),
    Kernel(commands::kernel::Args),
    Initramfs(commands::initramfs::Args),
    Packages(commands::packages::Args),
    Rootfs(commands::rootfs::Args),
    Repo(commands::repo::Args),
    Iso(commands::iso::Args),
    MakePersist(commands::make_persist::Args),
    Qemu(commands::qemu::Args),
    Bench(commands::bench::Args),
}

fn main() {
    exit_quietly_on_closed_output();
    let cli = parse();
    ui::set_verbose(cli.verbose);
    if let Err(err) = paths::checkout().and_then(|root| run(cli.command, &root)) {
        ui::error(&err);
        std::process::exit(1);
    }
}

/// The command line, with `--help`'s epilogue (workflow, environment, exit
/// statuses) and `--version`'s commit filled in at run time.
fn parse() -> Cli {
    let mut command = Cli::command().after_help(format!(
        "{WORKFLOW}\n\n{}\n\n{EXIT_STATUS}",
        environment_help()
    ));
    if let Some(long) = long_version() {
        command = command.long_version(&*long.leak());
    }
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `Environment:` and each variable host-tools reads, wrapped to fit 80
/// columns.
fn environment_help() -> String {
    let width = paths::ENVIRONMENT
        .iter()
        .map(|(name, _)| name.len())
        .max()
        .unwrap_or(0);
    let mut text =
        String::from("Environment (empty = unset; relative directories are from the checkout):");
    for (name, what) in paths::ENVIRONMENT {
        let mut line = format!("  {name:<width$} ");
        let indent = line.len();
        for word in what.split(' ') {
            if line.len() + 1 + word.len() > 79 {
                text += &format!("\n{}", line.trim_end());
                line = " ".repeat(indent);
            }
            line += " ";
            line += word;
        }
        text += &format!("\n{line}");
    }
    text
}

/// `0.1.0 (commit abc1234, checkout /path)` for `--version`, when the
/// current directory is in a git checkout; read from `.git` directly, no
/// program runs.
fn long_version() -> Option<String> {
    let root = paths::checkout().ok()?;
    let commit = git_head(&root)?;
    Some(format!(
        "{} (commit {}, checkout {})",
        env!("CARGO_PKG_VERSION"),
        &commit[..commit.len().min(12)],
        root.display()
    ))
}

/// The commit `HEAD` names in `root`'s git directory (plain or a worktree's
/// `gitdir:` file; loose or packed refs).
fn git_head(root: &Path) -> Option<String> {
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_file() {
        let text = std::fs::read_to_string(&dot_git).ok()?;
        root.join(text.strip_prefix("gitdir:")?.trim())
    } else {
        dot_git
    };
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(rel) => git_dir.join(rel.trim()),
        Err(_) => git_dir.clone(),
    };
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(name) = head.strip_prefix("ref:").map(str::trim) else {
        return Some(head.to_string());
    };
    for dir in [&git_dir, &common] {
        if let Ok(hash) = std::fs::read_to_string(dir.join(name)) {
            return Some(hash.trim().to_string());
        }
    }
    let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|line| {
        let (hash, refname) = line.split_once(' ')?;
        (refname == name).then(|| hash.to_string())
    })
}

fn run(command: Command, root: &Path) -> Result<()> {
    ui::detail(&format!(
        "checkout {}, build directory {}, cache {}",
        root.display(),
        paths::build_dir().display(),
        paths::cache_dir().display()
    ));
    match command {
        Command::Doctor(args) => commands::doctor::exec(args),
        Command::Kernel(args) => commands::kernel::exec(args),
        Command::Initramfs(args) => commands::initramfs::exec(args),
        Command::Packages(args) => commands::packages::exec(args),
        Command::Rootfs(args) => commands::rootfs::exec(args),
        Command::Repo(args) => commands::repo::exec(args),
        Command::Iso(args) => commands::iso::exec(args),
        Command::MakePersist(args) => commands::make_persist::exec(args),
        Command::Qemu(args) => commands::qemu::exec(args),
        Command::Bench(args) => commands::bench::exec(args),
    }
}

/// `./k1os packages | head -1`: when the reader of stdout (or stderr) has
/// gone, stop quietly with status 0 instead of panicking. Rust ignores
/// SIGPIPE, so `println!` panics on EPIPE; this hook catches exactly that
/// panic. (Resetting SIGPIPE instead would need `unsafe`, and would also kill
/// host-tools silently when a VM's console socket or a child's stdin closes.)
fn exit_quietly_on_closed_output() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if (message.starts_with("failed printing to stdout")
            || message.starts_with("failed printing to stderr"))
            && message.contains("Broken pipe")
        {
            std::process::exit(0);
        }
        default(info)
    }));
}
