//! The real repository packages of `packages/` (bash, bash-completion,
//! e2fsck), built by `host-tools repo build` into a scratch repository signed
//! with a throwaway key, then taken apart on the host: the index lists them
//! with their licences and dependencies, every file lies under /usr/local
//! with the modes packages/README.md asks for, each archive carries its
//! notices, and the programs run here (they are static: they run on any
//! x86_64 Linux) — bash prints its version, e2fsck checks a clean and a
//! damaged ext4 image, bash-completion loads through its login hook in an
//! interactive bash only. No VM. The package cache is the shared one
//! (`K1OS_CACHE` as set, else ~/.cache/k1os): the first run downloads the
//! Debian packages, later runs take the built packages from the cache.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use object::read::elf::{ElfFile64, ProgramHeader};
use warp_format::archive;
use warp_format::index::{Entry, Index};
use warp_format::manifest::{Kind, Manifest};

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// host-tools with `args`, in the checkout, with the shared package cache, a
/// scratch build directory (logs) and `key` as the signing key.
fn host_tools(args: &[&str], build: &Path, key: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-tools"));
    cmd.args(args)
        .current_dir(checkout())
        .stdin(Stdio::null())
        .env("K1OS_BUILD_DIR", build)
        .env("K1OS_REPO_KEY", key)
        .env("NO_COLOR", "1")
        .env_remove("K1OS_ROOT");
    cmd
}

/// A repository built from the checkout's `packages/`.
struct Repo {
    tmp: tempfile::TempDir,
    index: Index,
}

impl Repo {
    fn build() -> Repo {
        // Outside the checkout: `repo keygen` refuses to write a secret key
        // into it.
        let tmp = tempfile::tempdir().unwrap();
        let keys = tmp.path().join("keys");
        let build = tmp.path().join("build");
        let sec = keys.join("throwaway.sec");
        let keygen = run(host_tools(&["repo", "keygen", "--out"], &build, &sec)
            .arg(&keys)
            .arg("throwaway"));
        assert!(keygen.status.success(), "keygen:\n{}", text(&keygen));

        let out = tmp.path().join("repo");
        let built = run(host_tools(&["repo", "build", "--out"], &build, &sec).arg(&out));
        assert!(built.status.success(), "repo build:\n{}", text(&built));
        let verified = run(host_tools(&["repo", "verify"], &build, &sec)
            .arg(&out)
            .arg("--key")
            .arg(keys.join("throwaway.pub")));
        assert!(
            verified.status.success(),
            "repo verify:\n{}",
            text(&verified)
        );

        let index = Index::parse(&fs::read(out.join("index.json")).unwrap())
            .unwrap_or_else(|e| panic!("{}: {e}", out.join("index.json").display()));
        Repo { tmp, index }
    }

    fn entry(&self, name: &str) -> &Entry {
        self.index
            .packages
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| {
                let names: Vec<&str> = self
                    .index
                    .packages
                    .iter()
                    .map(|e| e.name.as_str())
                    .collect();
                panic!("the index has no `{name}`, only {names:?}")
            })
    }

    /// `name`'s archive unpacked into `root` (several packages may share
    /// one, as on a K1OS system); returns its manifest, checked against the
    /// index and the rules of repository packages.
    fn unpack(&self, name: &str, root: &Path) -> Manifest {
        let entry = self.entry(name);
        let path = self.tmp.path().join("repo").join(&entry.file);
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, entry.size, "{}", path.display());
        let tar = zstd::decode_all(&bytes[..])
            .unwrap_or_else(|e| panic!("{}: not zstd: {e}", path.display()));
        let manifest =
            archive::read_manifest(&tar[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            (manifest.license.as_str(), &manifest.depends),
            (entry.license.as_str(), &entry.depends),
            "{name}: the manifest and the index disagree"
        );
        check_layout(name, &manifest);
        let mut ar = tar::Archive::new(&tar[..]);
        ar.set_preserve_permissions(true);
        ar.unpack(root)
            .unwrap_or_else(|e| panic!("unpacking {}: {e}", path.display()));
        manifest
    }
}

/// Every path under usr/local (packages/README.md: a repository package
/// writes only there and in /opt; these three need only /usr/local), modes
/// 0755 for directories and executables and 0644 for the rest.
fn check_layout(name: &str, m: &Manifest) {
    let mut wrong = Vec::new();
    for f in &m.files {
        if !(f.path == "usr" || f.path == "usr/local" || f.path.starts_with("usr/local/")) {
            wrong.push(format!("{} is outside /usr/local", f.path));
        }
        let executable = f.path.contains("/bin/") || f.path.contains("/sbin/");
        let want = match f.kind {
            Kind::Dir => Some(0o755),
            Kind::File if executable => Some(0o755),
            Kind::File => Some(0o644),
            Kind::Symlink => None,
        };
        if want.is_some_and(|w| w != f.mode) {
            wrong.push(format!("{} has mode {:o}", f.path, f.mode));
        }
    }
    assert!(wrong.is_empty(), "{name}:\n{}", wrong.join("\n"));
}

/// A statically linked x86_64 executable: no program interpreter, no
/// dynamic section (K1OS has no C library to load).
fn assert_static(path: &Path) {
    let bytes = fs::read(path).unwrap();
    let elf = ElfFile64::<object::Endianness>::parse(&bytes[..])
        .unwrap_or_else(|e| panic!("{}: not a 64-bit ELF file: {e}", path.display()));
    let endian = elf.endian();
    for ph in elf.elf_program_headers() {
        let kind = ph.p_type(endian);
        assert!(
            kind != object::elf::PT_INTERP && kind != object::elf::PT_DYNAMIC,
            "{} is dynamically linked (program header type {kind})",
            path.display()
        );
    }
}

/// The notices every package carries: Debian's copyright file, and next to
/// it the full `texts` of the licences of what the package holds (the
/// copyright file names them under /usr/share/common-licenses/, which K1OS
/// does not have).
fn assert_notices(name: &str, root: &Path, texts: &[&str]) {
    let doc = root.join("usr/local/share/doc").join(name);
    let copyright = fs::read_to_string(doc.join("copyright"))
        .unwrap_or_else(|e| panic!("{name}: {}: {e}", doc.join("copyright").display()));
    assert!(copyright.contains("Copyright"), "{name}: {copyright}");
    for t in texts {
        let full = fs::read_to_string(doc.join(t))
            .unwrap_or_else(|e| panic!("{name}: licence text {t}: {e}"));
        assert!(full.contains("GNU"), "{name}: {t} is not the licence text");
    }
}

/// The program at `path` with `args`, with an empty environment (nothing of
/// the host's shell setup) plus `env`.
fn exec(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    run(Command::new(path)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::null()))
}

#[test]
fn real_repository_packages_install_and_run_on_the_host() {
    let repo = Repo::build();
    let summary: BTreeMap<&str, (&str, u64, u64, &str, &Vec<String>)> = repo
        .index
        .packages
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                (
                    e.version.as_str(),
                    e.size,
                    e.installed_size,
                    e.license.as_str(),
                    &e.depends,
                ),
            )
        })
        .collect();
    // The sizes and licences, for the record (`--nocapture`).
    for (name, (version, size, installed, license, depends)) in &summary {
        println!(
            "{name} {version}: archive {size} bytes, installed {installed} bytes, {license}, depends {depends:?}"
        );
    }

    let bash = repo.entry("bash");
    assert_eq!(bash.version, "5.2.15-2+b13");
    assert_eq!(bash.license, "GPL-3.0-or-later AND LGPL-2.1-or-later");
    assert!(bash.depends.is_empty(), "{:?}", bash.depends);
    let completion = repo.entry("bash-completion");
    assert_eq!(completion.license, "GPL-2.0-or-later");
    assert_eq!(
        completion.depends,
        ["bash"],
        "bash-completion depends on bash in warp"
    );
    let e2fsck = repo.entry("e2fsck");
    assert_eq!(
        e2fsck.license,
        "GPL-2.0-only AND LGPL-2.0-only AND BSD-3-Clause AND LicenseRef-Kazlib AND LGPL-2.1-or-later"
    );
    assert!(e2fsck.depends.is_empty(), "{:?}", e2fsck.depends);

    let tmp = tempfile::tempdir().unwrap();
    bash_runs(&repo, tmp.path());
    completion_loads_in_an_interactive_login_bash_only(&repo, tmp.path());
    e2fsck_checks_ext4(&repo, tmp.path());
}

fn bash_runs(repo: &Repo, tmp: &Path) {
    let root = tmp.join("bash");
    repo.unpack("bash", &root);
    let bash = root.join("usr/local/bin/bash");
    assert_static(&bash);
    let out = exec(&bash, &["-c", "echo $BASH_VERSION"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "5.2.15(1)-release\n");
    // Bash, not a POSIX shell only: arrays and [[ ]].
    let out = exec(
        &bash,
        &["-c", "a=(x y z); [[ ${#a[@]} == 3 ]] && echo ${a[2]}"],
        &[],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "z\n",
        "{}",
        text(&out)
    );
    assert_notices("bash", &root, &["GPL-3", "LGPL-2.1"]);
}

fn completion_loads_in_an_interactive_login_bash_only(repo: &Repo, tmp: &Path) {
    // Both in one tree, as warp installs them.
    let root = tmp.join("completion");
    repo.unpack("bash", &root);
    let m = repo.unpack("bash-completion", &root);
    assert!(
        m.files
            .iter()
            .any(|f| f.path == "usr/local/share/bash-completion/completions/tar"),
        "no completion for tar"
    );
    assert_notices("bash-completion", &root, &["GPL-2"]);
    let bash = root.join("usr/local/bin/bash");
    let hook = root.join("usr/local/etc/profile.d/bash_completion.sh");
    assert!(hook.is_file(), "{}", hook.display());
    // What /etc/profile does in a login bash: source the hook. Then a
    // completion is loaded on demand from the moved tree; XDG_DATA_DIRS
    // points nowhere, so it is found next to bash_completion itself.
    let script = format!(
        ". '{}'; echo \"version ${{BASH_COMPLETION_VERSINFO[*]}}\"; \
         __load_completion tar && complete -p tar",
        hook.display()
    );
    let env = [
        ("HOME", tmp.to_str().unwrap()),
        ("PS1", "$ "),
        ("XDG_DATA_DIRS", "/nonexistent"),
    ];
    let interactive = exec(&bash, &["--norc", "--noprofile", "-i", "-c", &script], &env);
    assert_eq!(
        String::from_utf8_lossy(&interactive.stdout),
        "version 2 11\ncomplete -F _tar tar\n",
        "{}",
        text(&interactive)
    );
    // A script (not interactive) gets nothing.
    let script = format!(
        ". '{}'; echo \"version ${{BASH_COMPLETION_VERSINFO[*]}}\"",
        hook.display()
    );
    let batch = exec(&bash, &["--norc", "--noprofile", "-c", &script], &env);
    assert_eq!(
        String::from_utf8_lossy(&batch.stdout),
        "version \n",
        "{}",
        text(&batch)
    );
    // K1OS's login shell is busybox sh: sourcing the hook there is silent
    // and succeeds (the host's sh stands in for it).
    let sh = run(Command::new("sh")
        .arg("-c")
        .arg(format!(". '{}'; echo \"status $?\"", hook.display()))
        .env("PS1", "# ")
        .stdin(Stdio::null()));
    assert_eq!(
        (
            String::from_utf8_lossy(&sh.stdout).as_ref(),
            String::from_utf8_lossy(&sh.stderr).as_ref()
        ),
        ("status 0\n", ""),
        "{}",
        text(&sh)
    );
}

fn e2fsck_checks_ext4(repo: &Repo, tmp: &Path) {
    let root = tmp.join("e2fsck");
    let m = repo.unpack("e2fsck", &root);
    let e2fsck = root.join("usr/local/sbin/e2fsck");
    assert_static(&e2fsck);
    for t in ["ext2", "ext3", "ext4"] {
        let link = m
            .files
            .iter()
            .find(|f| f.path == format!("usr/local/sbin/fsck.{t}"))
            .unwrap_or_else(|| panic!("no fsck.{t}"));
        assert_eq!((link.kind, link.target.as_str()), (Kind::Symlink, "e2fsck"));
    }
    let version = exec(&e2fsck, &["-V"], &[]);
    assert!(
        String::from_utf8_lossy(&version.stderr).starts_with("e2fsck 1.47.0 "),
        "{}",
        text(&version)
    );
    assert_notices("e2fsck", &root, &["GPL-2", "LGPL-2", "LGPL-2.1"]);

    // A fresh ext4 image (the host's mkfs.ext4, which `./k1os doctor`
    // requires) is clean; with the root directory's link count damaged
    // (debugfs, same package) e2fsck -n finds it and exits 4, "errors left
    // uncorrected".
    let img = tmp.join("fs.img");
    fs::write(&img, vec![0u8; 8 << 20]).unwrap();
    let mkfs = run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "K1OS-DATA"])
        .arg(&img));
    assert!(mkfs.status.success(), "mkfs.ext4:\n{}", text(&mkfs));
    let fsck = root.join("usr/local/sbin/fsck.ext4");
    let clean = exec(&fsck, &["-fn", img.to_str().unwrap()], &[]);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean));
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains("K1OS-DATA: 11/"),
        "{}",
        text(&clean)
    );
    let damage = run(Command::new("debugfs")
        .args(["-w", "-R", "sif <2> links_count 7"])
        .arg(&img));
    assert!(damage.status.success(), "debugfs:\n{}", text(&damage));
    let damaged = exec(&e2fsck, &["-fn", img.to_str().unwrap()], &[]);
    assert_eq!(damaged.status.code(), Some(4), "{}", text(&damaged));
    assert!(
        String::from_utf8_lossy(&damaged.stdout).contains("Inode 2 ref count is 7"),
        "{}",
        text(&damaged)
    );
}
