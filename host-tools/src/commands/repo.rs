//! `./k1os repo keygen|build|serve|verify`: warp's package repository.
use anyhow::{Result, bail};
use clap::Subcommand;
use std::io::Write;
use std::path::PathBuf;

use host_tools::packages::Settings;
use host_tools::repo::{build, keys, serve, verify};
use host_tools::{paths, ui};

/// warp's repository: signing keys, build, serve and verify
#[derive(clap::Args)]
#[command(after_help = "\
The repository packages are those of packages/ with `repository = true` in
their package.toml (packages/README.md). They install under /usr/local and /opt
only; the image never holds them.

The build key is $K1OS_CACHE/repo-key/k1os-build.sec, made on first use (by
`repo build`, or by `rootfs`, whose image trusts its public half);
K1OS_REPO_KEY=/path/NAME.sec signs with another key. Secret keys never go into
the checkout or build/.

Examples:
  ./k1os repo build                       build/repo/: archives, index, signature
  ./k1os repo verify                      check build/repo/ with the build key
  ./k1os repo serve --dir build/repo      http://127.0.0.1:8080/
  ./k1os repo keygen --out ~/keys release ~/keys/release.sec and release.pub")]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Keygen(KeygenArgs),
    Build(BuildArgs),
    Serve(ServeArgs),
    Verify(VerifyArgs),
}

/// Make a signing key pair: NAME.sec (mode 0600, no passphrase) and NAME.pub,
/// in the signify format
#[derive(clap::Args)]
#[command(after_help = "\
Without --out the pair goes to $K1OS_CACHE/repo-key/, where the build key
lives. An existing file is never overwritten. signify-openbsd reads both files
(`signify-openbsd -S -s NAME.sec …`, `-V -p NAME.pub …`).

Examples:
  ./k1os repo keygen                      the build key, made ahead of its first use
  ./k1os repo keygen --out ~/keys release then K1OS_REPO_KEY=~/keys/release.sec")]
struct KeygenArgs {
    /// The key's name: the files are NAME.sec and NAME.pub
    #[arg(default_value = keys::BUILD_KEY_NAME)]
    name: String,
    /// Where to write them (not inside the checkout or build/)
    /// [default: $K1OS_CACHE/repo-key]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Build the repository packages and publish them, signed, into build/repo/
#[derive(clap::Args)]
#[command(after_help = "\
For each package marked `repository = true`: NAME-VERSION.warp (reproducible:
two builds give the same bytes); then index.json, index.json.sig (signed with
the build key or $K1OS_REPO_KEY) and KEYNAME.pub. Archives of an earlier build
that are gone from packages/ are removed.

Examples:
  ./k1os repo build
  ./k1os repo build --out /srv/k1os --serial 42")]
struct BuildArgs {
    /// The repository directory [default: build/repo]
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// The packages directory [default: <checkout>/packages]
    #[arg(long, value_name = "DIR")]
    packages: Option<PathBuf>,
    /// index.json's serial, which warp requires to grow from one publication
    /// to the next [default: $SOURCE_DATE_EPOCH, else the last commit's time]
    #[arg(long, value_name = "N")]
    serial: Option<u64>,
}

/// Serve a repository over HTTP on 127.0.0.1, or one connection on
/// stdin/stdout
#[derive(clap::Args)]
#[command(after_help = "\
Only GET and HEAD of the files in DIR (and one directory below) are answered;
anything else, `..` included, is refused. Requests are logged on stderr.
--stdio answers one connection on stdin/stdout and exits, for QEMU:
  -netdev user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:host-tools repo serve --stdio --dir D

Examples:
  ./k1os repo serve --dir build/repo              http://127.0.0.1:8080/
  ./k1os repo serve --dir build/repo --port 0     a free port, printed on stdout")]
struct ServeArgs {
    /// The repository directory
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// The port on 127.0.0.1 (0: any free one)
    #[arg(long, default_value_t = 8080, conflicts_with = "stdio")]
    port: u16,
    /// Serve one connection on stdin/stdout, then exit
    #[arg(long)]
    stdio: bool,
}

/// Check a built repository: signature, index, and every archive against it
#[derive(clap::Args)]
#[command(after_help = "\
Checks the signature of index.json with the key, the index's format, every
archive's size and sha256, its manifest against its index entry (name, version,
dependencies), and reads every member against the manifest. Exit status 1 with
every problem listed.

Examples:
  ./k1os repo verify                              build/repo/, the build key
  ./k1os repo verify /srv/k1os --key release.pub")]
struct VerifyArgs {
    /// The repository directory [default: build/repo]
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// The public key [default: the build key's, or $K1OS_REPO_KEY's]
    #[arg(long, value_name = "FILE.pub")]
    key: Option<PathBuf>,
}

pub fn exec(args: Args) -> Result<()> {
    match args.command {
        Command::Keygen(a) => keygen(a),
        Command::Build(a) => build(a),
        Command::Serve(a) => serve(a),
        Command::Verify(a) => verify(a),
    }
}

fn keygen(args: KeygenArgs) -> Result<()> {
    let dir = match args.out {
        Some(dir) => {
            keys::refuse_public_places(&dir)?;
            dir
        }
        None => keys::build_key_dir(&paths::cache_dir()),
    };
    let (sec, public) = keys::keygen(&dir, &args.name)?;
    let key = keys::read_public(&public)?;
    println!("{}: the secret key (keep it private)", sec.display());
    println!(
        "{}: the public key, keynum {}",
        public.display(),
        key.keynum
    );
    Ok(())
}

fn build(args: BuildArgs) -> Result<()> {
    let mut opts = build::Options::default_for_checkout();
    if let Some(out) = args.out {
        opts.out = out;
    }
    if let Some(dir) = args.packages {
        opts.settings.packages_dir = dir;
    }
    opts.serial = args.serial;
    let start = std::time::Instant::now();
    let repo = build::build(&opts, |b| {
        let what = if b.cached { "cached" } else { "built" };
        ui::step(&format!(
            "package {} {}: {what} ({:.1} s)",
            b.name,
            b.version,
            b.elapsed.as_secs_f64()
        ));
    })?;
    if repo.packages.is_empty() {
        ui::note(&format!(
            "no package of {} has `repository = true`: the index lists none",
            opts.settings.packages_dir.display()
        ));
    }
    for name in &repo.removed {
        ui::line(&format!("removed {name} (not built any more)"));
    }
    let mut total = 0;
    for p in &repo.packages {
        total += p.size;
        println!(
            "{}: {} bytes ({} installed)",
            repo.dir.join(&p.file).display(),
            p.size,
            ui::human_size(p.installed_size)
        );
    }
    println!(
        "{}: {}, {} bytes ({}); serial {}, signed with {} (keynum {}); {:.1} s",
        repo.dir.display(),
        count(repo.packages.len(), "package"),
        total,
        ui::human_size(total),
        repo.serial,
        repo.key_name,
        repo.keynum,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

fn serve(args: ServeArgs) -> Result<()> {
    if args.stdio {
        return serve::serve_stdio(&args.dir);
    }
    serve::serve_tcp(&args.dir, args.port, |addr| {
        // Tests read this line to find the port: print it at once.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{addr}/");
        let _ = out.flush();
    })
}

fn verify(args: VerifyArgs) -> Result<()> {
    let dir = args.dir.unwrap_or_else(|| paths::build_dir().join("repo"));
    let (key, from) = match args.key {
        Some(path) => (keys::read_public(&path)?, path),
        None => {
            let cache = Settings::default_for_checkout().cache_dir;
            match keys::verifying_key(&cache)? {
                Some(found) => found,
                None => bail!(
                    "no key to check with: the build key {} does not exist yet (`./k1os repo \
                     build` makes it); pass --key FILE.pub",
                    keys::build_key_dir(&cache)
                        .join(format!("{}.sec", keys::BUILD_KEY_NAME))
                        .display()
                ),
            }
        }
    };
    let v = verify::verify(&dir, &key)?;
    println!(
        "{}: OK: serial {}, {}, {}, {} bytes; signed by key {} ({})",
        dir.display(),
        v.serial,
        count(v.packages, "package"),
        count(v.entries as usize, "entry"),
        v.bytes,
        key.keynum,
        from.display()
    );
    Ok(())
}

/// `1 package`, `2 packages`, `3 entries`.
fn count(n: usize, word: &str) -> String {
    match (n, word.strip_suffix('y')) {
        (1, _) => format!("1 {word}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {word}s"),
    }
}
