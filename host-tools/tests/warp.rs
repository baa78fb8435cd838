//! warp end to end on the host, with real parts: repositories built by
//! `./k1os repo build` from scratch packages and signed with a throwaway key,
//! served by `./k1os repo serve` on 127.0.0.1, and the warp binary managing
//! a temporary root (`--root`). Every refusal is checked to change nothing
//! on disk (a listing with hashes, before and after); every crash point of
//! an install, an upgrade and a removal is hit with SIGKILL, then `warp
//! recover` must leave the old or the new set, with `warp verify` agreeing.
//!
//! The warp under test is built once per process with the `crash-points`
//! feature (a test-only build, in its own target directory); the shipped
//! binary is built by host-tools without it, which `shipped_binary_*`
//! checks.
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use warp_format::index::{self, Index};
use warp_format::manifest::{self, FileEntry, Kind, Manifest};
use warp_format::signify::SecretKey;

// ------------------------------------------------------------------ fixtures

fn checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The test build of warp (with crash points), made once per process.
fn warp_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let target = checkout().join("target/warp-crash-points");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--locked",
                "-p",
                "warp",
                "--features",
                "crash-points",
            ])
            .arg("--target-dir")
            .arg(&target)
            .current_dir(checkout())
            .output()
            .expect("running cargo");
        assert!(
            out.status.success(),
            "building warp with crash points failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("debug/warp")
    })
}

/// host-tools, acting on this checkout, with the scratch cache and key.
fn host_tools(fx: &Published, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-tools"));
    cmd.args(args)
        .current_dir(checkout())
        .stdin(Stdio::null())
        .env("K1OS_CACHE", fx.dir.join("cache"))
        .env("K1OS_REPO_KEY", &fx.secret_key)
        .env("NO_COLOR", "1")
        .env_remove("K1OS_ROOT")
        .env_remove("K1OS_BUILD_DIR");
    cmd
}

/// What a command did.
struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
    fn ok(self, what: &str) -> Run {
        assert!(self.status.success(), "{what} failed:\n{self}");
        self
    }
    fn fails_with(self, code: i32, needle: &str, what: &str) -> Run {
        refused(what, &self);
        assert_eq!(
            self.code(),
            Some(code),
            "{what}: wrong exit status:\n{self}"
        );
        assert!(
            self.stderr.contains(needle),
            "{what}: the error does not say `{needle}`:\n{self}"
        );
        self
    }
}

/// What warp said when it refused (shown with `--nocapture`: the table of
/// bad inputs and warp's answers).
fn refused(what: &str, r: &Run) {
    eprintln!(
        "refused: {what}: status {:?}: {}",
        r.code(),
        r.stderr.trim()
    );
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

fn run(mut cmd: impl std::borrow::BorrowMut<Command>) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.borrow_mut().output().expect("the command runs");
    Run {
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// A scratch package of the repository: `files` are (path, content, mode)
/// under its $DESTDIR.
fn package(dir: &Path, name: &str, version: &str, depends: &[&str], files: &[(&str, &str, u32)]) {
    let pkg = dir.join(name);
    fs::create_dir_all(&pkg).unwrap();
    let deps: Vec<String> = depends.iter().map(|d| format!("\"{d}\"")).collect();
    fs::write(
        pkg.join("package.toml"),
        format!(
            "name = \"{name}\"\nversion = \"{version}\"\ndescription = \"test package {name}\"\n\
             license = \"MIT\"\nrepository = true\ndepends = [{}]\n",
            deps.join(", ")
        ),
    )
    .unwrap();
    let mut script = String::new();
    for (path, content, mode) in files {
        let parent = Path::new(path).parent().unwrap().display().to_string();
        script += &format!(
            "install -d -m 0755 \"$DESTDIR/{parent}\"\nprintf '%s' '{content}' > \"$DESTDIR/{path}\"\n\
             chmod {mode:o} \"$DESTDIR/{path}\"\n"
        );
    }
    fs::write(pkg.join("build.sh"), script).unwrap();
}

/// The repositories the tests install from, built once per process: `v1`
/// (serial 100) and `v2` (serial 200, newer versions), both signed with the
/// throwaway key `key.sec`; and `other.sec`, a second key nobody trusts.
struct Published {
    dir: PathBuf,
    secret_key: PathBuf,
    public_key: PathBuf,
    other_key: PathBuf,
    v1: PathBuf,
    v2: PathBuf,
}

const HELLO_V1: &str = "#!/bin/sh\necho hello 1\n";
const HELLO_V2: &str = "#!/bin/sh\necho hello 2\n";

fn published() -> &'static Published {
    static FX: OnceLock<Published> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = checkout().join("target/warp-test-repos");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Secret keys stay out of the checkout (`repo keygen` refuses it).
        let keys = std::env::temp_dir().join(format!("k1os-warp-test-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&keys);
        let fx = Published {
            secret_key: keys.join("test.sec"),
            public_key: keys.join("test.pub"),
            other_key: keys.join("other.sec"),
            v1: dir.join("v1"),
            v2: dir.join("v2"),
            dir,
        };
        let keys = keys.to_str().unwrap();
        run(host_tools(&fx, &["repo", "keygen", "--out", keys, "test"])).ok("repo keygen test");
        run(host_tools(&fx, &["repo", "keygen", "--out", keys, "other"])).ok("repo keygen other");

        let p1 = fx.dir.join("packages-v1");
        package(
            &p1,
            "libgreet",
            "1.0",
            &[],
            &[("usr/local/share/greet/greeting", "greeting 1", 0o644)],
        );
        package(
            &p1,
            "hello",
            "1.0",
            &["libgreet"],
            &[
                ("usr/local/bin/hello", HELLO_V1, 0o755),
                ("usr/local/share/hello/old-only", "only in 1.0", 0o644),
            ],
        );
        package(
            &p1,
            "tool",
            "1.0",
            &[],
            &[("opt/tool/bin/tool", "tool", 0o755)],
        );
        package(
            &p1,
            "clash",
            "1.0",
            &[],
            &[("usr/local/bin/hello", "not hello", 0o755)],
        );
        let p2 = fx.dir.join("packages-v2");
        package(
            &p2,
            "libgreet",
            "2.0",
            &[],
            &[("usr/local/share/greet/greeting", "greeting 2", 0o644)],
        );
        package(
            &p2,
            "hello",
            "2.0",
            &["libgreet"],
            &[
                ("usr/local/bin/hello", HELLO_V2, 0o755),
                ("usr/local/share/hello/new-only", "only in 2.0", 0o644),
            ],
        );
        package(
            &p2,
            "tool",
            "1.0",
            &[],
            &[("opt/tool/bin/tool", "tool", 0o755)],
        );
        package(
            &p2,
            "clash",
            "1.0",
            &[],
            &[("usr/local/bin/hello", "not hello", 0o755)],
        );

        for (pkgs, out, serial) in [(&p1, &fx.v1, "100"), (&p2, &fx.v2, "200")] {
            run(host_tools(
                &fx,
                &[
                    "repo",
                    "build",
                    "--packages",
                    pkgs.to_str().unwrap(),
                    "--out",
                    out.to_str().unwrap(),
                    "--serial",
                    serial,
                ],
            ))
            .ok("repo build");
        }
        fx
    })
}

/// A repository served by `./k1os repo serve --port 0` from its own
/// directory (tests replace its files to publish something else).
struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Server {
    fn start(fx: &Published, dir: PathBuf) -> Server {
        let mut child = host_tools(fx, &["repo", "serve", "--port", "0", "--dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting repo serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("repo serve said {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server { child, dir, url }
    }

    /// Serves a copy of `repo` from now on.
    fn publish(&self, repo: &Path) {
        for e in fs::read_dir(&self.dir).unwrap() {
            fs::remove_file(e.unwrap().path()).unwrap();
        }
        copy_dir(repo, &self.dir);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// One test's world: a root that looks like K1OS's (the image's empty
/// `usr/local/bin` and `opt`, a file of the image under `usr/bin`), trusting
/// the test key, with the repository `test` at a server of its own.
struct Sys {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    server: Server,
}

impl Sys {
    fn new(repo: &Path) -> Sys {
        let fx = published();
        let tmp = tempfile::tempdir_in(checkout().join("target")).unwrap();
        let root = tmp.path().join("root");
        for d in [
            "usr/bin",
            "usr/local/bin",
            "usr/local/sbin",
            "opt",
            "etc/warp/keys.d",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(root.join("usr/bin/env"), "image file").unwrap();
        fs::copy(&fx.public_key, root.join("etc/warp/keys.d/test.pub")).unwrap();
        let served = tmp.path().join("served");
        copy_dir(repo, &served);
        let server = Server::start(fx, served);
        fs::write(
            root.join("etc/warp/repositories"),
            format!("test {}\n", server.url),
        )
        .unwrap();
        Sys {
            _tmp: tmp,
            root,
            server,
        }
    }

    fn warp(&self, args: &[&str]) -> Run {
        run(self.warp_cmd(args))
    }

    fn warp_cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(warp_bin());
        cmd.arg("--root")
            .arg(&self.root)
            .args(args)
            .stdin(Stdio::null())
            .env_remove("WARP_CRASH_AT");
        cmd
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.root.join(rel))
            .unwrap_or_else(|e| panic!("reading {rel} in the root: {e}"))
    }

    fn exists(&self, rel: &str) -> bool {
        fs::symlink_metadata(self.root.join(rel)).is_ok()
    }

    /// `warp list --installed`, as `name version` lines.
    fn installed(&self) -> Vec<String> {
        let r = self
            .warp(&["-q", "list", "--installed"])
            .ok("list --installed");
        let mut lines: Vec<String> = r
            .stdout
            .lines()
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .filter(|l| !l.is_empty())
            .collect();
        lines.sort();
        lines
    }

    fn snapshot(&self) -> Snapshot {
        snapshot(&self.root)
    }
}

/// Every path under a directory with its type, mode and content hash (or
/// link target): what "nothing changed on disk" compares.
type Snapshot = BTreeMap<String, String>;

fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&p).unwrap();
            let mode = meta.mode() & 0o7777;
            let what = if meta.is_dir() {
                walk(root, &p, out);
                format!("dir {mode:o}")
            } else if meta.file_type().is_symlink() {
                format!("symlink {}", fs::read_link(&p).unwrap().display())
            } else {
                let bytes = fs::read(&p).unwrap();
                format!("file {mode:o} {}", warp_format::sha256_hex(&bytes))
            };
            out.insert(rel, what);
        }
    }
    let mut out = Snapshot::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// The package files only (`usr/local`, `opt`).
fn package_files(snap: &Snapshot) -> Snapshot {
    snap.iter()
        .filter(|(p, _)| p.starts_with("usr/local") || p.starts_with("opt"))
        .map(|(p, w)| (p.clone(), w.clone()))
        .collect()
}

fn assert_no_temporaries(sys: &Sys) {
    let litter: Vec<String> = sys
        .snapshot()
        .into_keys()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap_or(p);
            name.starts_with(".warp-") || name.ends_with(".part") || name.ends_with(".tmp")
        })
        .collect();
    assert!(litter.is_empty(), "temporary files left behind: {litter:?}");
}

fn assert_unchanged(before: &Snapshot, sys: &Sys, what: &str) {
    let after = sys.snapshot();
    if &after != before {
        let mut diff = Vec::new();
        for (p, w) in before {
            match after.get(p) {
                None => diff.push(format!("- {p} ({w})")),
                Some(a) if a != w => diff.push(format!("~ {p}: {w} -> {a}")),
                _ => {}
            }
        }
        for (p, w) in &after {
            if !before.contains_key(p) {
                diff.push(format!("+ {p} ({w})"));
            }
        }
        panic!("{what} changed the disk:\n{}", diff.join("\n"));
    }
}

// ------------------------------------------------- install, upgrade, rollback

#[test]
fn install_upgrade_rollback_remove_with_dependencies() {
    let fx = published();
    let sys = Sys::new(&fx.v1);
    sys.warp(&["update"]).ok("update");
    let r = sys.warp(&["install", "hello"]).ok("install hello");
    assert!(
        r.stdout.contains("libgreet"),
        "the plan names the dependency:\n{r}"
    );
    assert_eq!(sys.installed(), ["hello 1.0", "libgreet 1.0"]);
    assert_eq!(sys.read("usr/local/bin/hello"), HELLO_V1);
    assert_eq!(
        fs::metadata(sys.root.join("usr/local/bin/hello"))
            .unwrap()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(sys.read("usr/local/share/greet/greeting"), "greeting 1");
    assert_eq!(sys.read("usr/local/share/hello/old-only"), "only in 1.0");
    assert_eq!(sys.read("etc/warp/world").trim(), "hello");
    sys.warp(&["verify"]).ok("verify after install");

    // A dependency cannot go while something needs it.
    sys.warp(&["remove", "libgreet"]).fails_with(
        5,
        "hello",
        "remove libgreet while hello needs it",
    );

    // Upgrade to the second publication.
    sys.server.publish(&fx.v2);
    sys.warp(&["update"]).ok("update to v2");
    let up = sys.warp(&["list", "--upgradable"]).ok("list --upgradable");
    assert!(
        up.stdout.contains("hello") && up.stdout.contains("libgreet"),
        "{up}"
    );
    sys.warp(&["upgrade"]).ok("upgrade");
    assert_eq!(sys.installed(), ["hello 2.0", "libgreet 2.0"]);
    assert_eq!(sys.read("usr/local/bin/hello"), HELLO_V2);
    assert_eq!(sys.read("usr/local/share/greet/greeting"), "greeting 2");
    assert!(
        !sys.exists("usr/local/share/hello/old-only"),
        "a file 2.0 no longer has stays"
    );
    assert_eq!(sys.read("usr/local/share/hello/new-only"), "only in 2.0");
    sys.warp(&["verify"]).ok("verify after upgrade");

    // Rollback: back to 1.0 from the archive cache (the repository no
    // longer has 1.0), then forward again.
    sys.warp(&["rollback"]).ok("rollback");
    assert_eq!(sys.installed(), ["hello 1.0", "libgreet 1.0"]);
    assert_eq!(sys.read("usr/local/bin/hello"), HELLO_V1);
    assert_eq!(sys.read("usr/local/share/hello/old-only"), "only in 1.0");
    assert!(!sys.exists("usr/local/share/hello/new-only"));
    sys.warp(&["verify"]).ok("verify after rollback");
    sys.warp(&["rollback"]).ok("rollback of the rollback");
    assert_eq!(sys.installed(), ["hello 2.0", "libgreet 2.0"]);

    // Remove: the orphaned dependency goes too, and the directories the
    // packages made; the image's directories stay.
    sys.warp(&["remove", "hello"]).ok("remove hello");
    assert!(sys.installed().is_empty(), "{:?}", sys.installed());
    for gone in [
        "usr/local/bin/hello",
        "usr/local/share/hello",
        "usr/local/share/greet",
    ] {
        assert!(!sys.exists(gone), "{gone} is still there");
    }
    for kept in ["usr/local/bin", "usr/local/sbin", "opt", "usr/bin/env"] {
        assert!(sys.exists(kept), "{kept} was removed");
    }
    let history = sys.warp(&["history"]).ok("history");
    assert_eq!(history.stdout.lines().count(), 5, "{history}");
    assert_no_temporaries(&sys);
}

#[test]
fn dependencies_become_explicit_and_versions_are_constrained() {
    let fx = published();
    let sys = Sys::new(&fx.v2);
    sys.warp(&["update"]).ok("update");
    // A version that does not exist: resolution error, nothing written.
    let before = sys.snapshot();
    sys.warp(&["install", "hello=1.0"]).fails_with(
        5,
        "hello",
        "install hello=1.0 from a v2 repository",
    );
    assert_unchanged(&before, &sys, "an unmet version");
    sys.warp(&["install", "hello>=2.0", "tool"])
        .ok("install hello>=2.0 tool");
    assert_eq!(sys.installed(), ["hello 2.0", "libgreet 2.0", "tool 1.0"]);
    assert_eq!(sys.read("opt/tool/bin/tool"), "tool");
    // libgreet asked for by name: it stays when hello goes.
    sys.warp(&["install", "libgreet"]).ok("install libgreet");
    sys.warp(&["remove", "hello"]).ok("remove hello");
    assert_eq!(sys.installed(), ["libgreet 2.0", "tool 1.0"]);
    let search = sys.warp(&["search", "greet"]).ok("search");
    assert!(search.stdout.contains("libgreet"), "{search}");
    let info = sys.warp(&["info", "--files", "tool"]).ok("info --files");
    assert!(info.stdout.contains("opt/tool/bin/tool"), "{info}");
}

// ------------------------------------------------------------------ refusals

/// A repository made by hand, for what `repo build` would never produce:
/// each archive is a tar stream written entry by entry (bad paths and all),
/// compressed with zstd, and the index is signed with `key`.
fn hand_made_repo(dir: &Path, serial: u64, key: &Path, archives: &[(Manifest, Vec<u8>)]) {
    fs::create_dir_all(dir).unwrap();
    let mut packages = Vec::new();
    for (m, tar) in archives {
        let bytes = zstd::encode_all(&tar[..], 3).unwrap();
        let file = format!("{}-{}.warp", m.name, m.version);
        fs::write(dir.join(&file), &bytes).unwrap();
        packages.push(index::Entry {
            name: m.name.clone(),
            version: m.version.clone(),
            description: m.description.clone(),
            license: m.license.clone(),
            depends: m.depends.clone(),
            conflicts: m.conflicts.clone(),
            file,
            size: bytes.len() as u64,
            sha256: warp_format::sha256_hex(&bytes),
            installed_size: m.installed_size(),
        });
    }
    let index = Index {
        format: index::FORMAT,
        repo: "test".into(),
        arch: manifest::ARCH.into(),
        serial,
        packages,
    };
    sign_index(dir, &index.to_bytes(), key);
}

fn sign_index(dir: &Path, bytes: &[u8], key: &Path) {
    let sk = SecretKey::parse(&fs::read_to_string(key).unwrap()).unwrap();
    fs::write(dir.join("index.json"), bytes).unwrap();
    fs::write(
        dir.join("index.json.sig"),
        sk.sign(bytes).to_file("verify with test.pub"),
    )
    .unwrap();
}

fn manifest_of(name: &str, files: Vec<FileEntry>, depends: &[&str]) -> Manifest {
    Manifest {
        format: manifest::FORMAT,
        name: name.into(),
        version: "1.0".into(),
        arch: manifest::ARCH.into(),
        description: format!("hand-made {name}"),
        license: "MIT".into(),
        depends: depends.iter().map(|d| d.to_string()).collect(),
        conflicts: vec![],
        files,
    }
}

fn dir_entry(path: &str) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: Kind::Dir,
        mode: 0o755,
        size: 0,
        sha256: String::new(),
        target: String::new(),
    }
}

fn file_entry(path: &str, content: &[u8]) -> FileEntry {
    FileEntry {
        path: path.into(),
        kind: Kind::File,
        mode: 0o644,
        size: content.len() as u64,
        sha256: warp_format::sha256_hex(content),
        target: String::new(),
    }
}

/// A tar member with a raw name (no checks by the tar crate).
fn raw_member(
    tar: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: &str,
) {
    let mut h = tar::Header::new_gnu();
    h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    if !link.is_empty() {
        h.as_gnu_mut().unwrap().linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_cksum();
    tar.append(&h, data).unwrap();
}

/// A tar member: name, type, mode, data, link target.
type Member<'a> = (&'a str, tar::EntryType, u32, &'a [u8], &'a str);

/// The tar stream of `m` whose members are `members` after the manifest.
fn tar_of(m: &Manifest, members: &[Member]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let bytes = m.to_bytes();
    raw_member(
        &mut tar,
        manifest::PATH,
        tar::EntryType::Regular,
        0o644,
        &bytes,
        "",
    );
    for (name, kind, mode, data, link) in members {
        raw_member(&mut tar, name, *kind, *mode, data, link);
    }
    tar.into_inner().unwrap()
}

/// Manifests warp must refuse although the archive matches them, and
/// archives whose members do not match a good manifest.
fn attack_archives() -> Vec<(&'static str, Manifest, Vec<u8>)> {
    use tar::EntryType::{Block, Char, Directory, Link, Regular, Symlink};
    let roots = || {
        vec![
            dir_entry("usr"),
            dir_entry("usr/local"),
            dir_entry("usr/local/bin"),
        ]
    };
    let data = b"payload";
    let mut out = Vec::new();
    let mut add =
        |label: &'static str, name: &str, mut files: Vec<FileEntry>, members: Vec<Member>| {
            let mut all = roots();
            all.append(&mut files);
            let m = manifest_of(name, all, &[]);
            let mut members_all: Vec<Member> = vec![
                ("usr", Directory, 0o755, b"", ""),
                ("usr/local", Directory, 0o755, b"", ""),
                ("usr/local/bin", Directory, 0o755, b"", ""),
            ];
            members_all.extend(members);
            out.push((label, m.clone(), tar_of(&m, &members_all)));
        };
    // The manifest itself is bad (the rules refuse it before anything else).
    add(
        "dotdot",
        "dotdot",
        vec![file_entry("usr/local/bin/../../../etc/evil", data)],
        vec![("usr/local/bin/../../../etc/evil", Regular, 0o644, data, "")],
    );
    add(
        "absolute",
        "absolute",
        vec![file_entry("/usr/local/bin/evil", data)],
        vec![("/usr/local/bin/evil", Regular, 0o644, data, "")],
    );
    add(
        "outside",
        "outside",
        vec![file_entry("usr/bin/evil", data)],
        vec![("usr/bin/evil", Regular, 0o644, data, "")],
    );
    let mut link = dir_entry("usr/local/bin/lib");
    link.kind = Kind::Symlink;
    link.mode = 0o777;
    link.target = "/etc".into();
    add(
        "symlink-then-file",
        "symlinkfile",
        vec![link, file_entry("usr/local/bin/lib/passwd", data)],
        vec![
            ("usr/local/bin/lib", Symlink, 0o777, b"", "/etc"),
            ("usr/local/bin/lib/passwd", Regular, 0o644, data, ""),
        ],
    );
    // A good manifest, members that are not what it says.
    add(
        "member-renamed",
        "renamed",
        vec![file_entry("usr/local/bin/x", data)],
        vec![("usr/local/bin/../../../etc/x", Regular, 0o644, data, "")],
    );
    add(
        "hard-link",
        "hardlink",
        vec![file_entry("usr/local/bin/x", data)],
        vec![("usr/local/bin/x", Link, 0o644, b"", "usr/bin/env")],
    );
    add(
        "device-node",
        "device",
        vec![file_entry("usr/local/bin/x", data)],
        vec![("usr/local/bin/x", Char, 0o644, b"", "")],
    );
    add(
        "block-device",
        "blockdev",
        vec![file_entry("usr/local/bin/x", data)],
        vec![("usr/local/bin/x", Block, 0o644, b"", "")],
    );
    add(
        "content-differs",
        "content",
        vec![file_entry("usr/local/bin/x", data)],
        vec![("usr/local/bin/x", Regular, 0o644, b"PAYLOAD", "")],
    );
    add(
        "extra-member",
        "extra",
        vec![file_entry("usr/local/bin/x", data)],
        vec![
            ("usr/local/bin/x", Regular, 0o644, data, ""),
            ("usr/local/bin/y", Regular, 0o644, data, ""),
        ],
    );
    let mut setuid = file_entry("usr/local/bin/x", data);
    setuid.mode = 0o4755;
    add(
        "setuid",
        "setuid",
        vec![setuid],
        vec![("usr/local/bin/x", Regular, 0o4755, data, "")],
    );
    out
}

#[test]
fn bad_archives_are_refused_and_change_nothing() {
    let fx = published();
    let attacks = attack_archives();
    let repo = fx.dir.join("attacks");
    let _ = fs::remove_dir_all(&repo);
    let mut archives: Vec<(Manifest, Vec<u8>)> = attacks
        .iter()
        .map(|(_, m, t)| (m.clone(), t.clone()))
        .collect();
    // And an unknown dependency.
    let needy = manifest_of(
        "needy",
        vec![
            dir_entry("opt"),
            dir_entry("opt/needy"),
            file_entry("opt/needy/x", b"x"),
        ],
        &["nosuchpkg"],
    );
    let needy_tar = tar_of(
        &needy,
        &[
            ("opt", tar::EntryType::Directory, 0o755, b"", ""),
            ("opt/needy", tar::EntryType::Directory, 0o755, b"", ""),
            ("opt/needy/x", tar::EntryType::Regular, 0o644, b"x", ""),
        ],
    );
    archives.push((needy, needy_tar));
    hand_made_repo(&repo, 300, &fx.secret_key, &archives);

    let sys = Sys::new(&repo);
    sys.warp(&["update"]).ok("update");
    for (label, m, _) in &attacks {
        let before = sys.snapshot();
        let r = sys.warp(&["install", &m.name]);
        refused(label, &r);
        assert_eq!(r.code(), Some(4), "{label}: wrong exit status:\n{r}");
        assert!(
            r.stderr.contains(&m.name),
            "{label}: the error does not name the package:\n{r}"
        );
        assert_unchanged(&before, &sys, label);
        assert_no_temporaries(&sys);
    }
    let before = sys.snapshot();
    sys.warp(&["install", "needy"])
        .fails_with(5, "nosuchpkg", "an unknown dependency");
    assert_unchanged(&before, &sys, "an unknown dependency");
    assert!(!Path::new("/etc/evil").exists() && !sys.root.join("etc/evil").exists());
}

#[test]
fn tampered_or_replayed_repositories_are_refused() {
    let fx = published();
    let sys = Sys::new(&fx.v2);
    sys.warp(&["update"]).ok("update");
    let served = sys.server.dir.clone();

    // (what, how the served repository is spoilt, what the error says)
    type Case<'a> = (&'static str, Box<dyn Fn() + 'a>, &'static str);
    let mut cases: Vec<Case> = Vec::new();
    let v1 = fx.v1.clone();
    let s = served.clone();
    let srv = &sys.server;
    cases.push((
        "replayed older index",
        Box::new(move || srv.publish(&v1)),
        "serial",
    ));
    let s1 = s.clone();
    cases.push((
        "tampered index",
        Box::new(move || {
            let text = fs::read_to_string(s1.join("index.json")).unwrap();
            fs::write(
                s1.join("index.json"),
                text.replace("test package hello", "test package HELLO"),
            )
            .unwrap();
        }),
        "signature",
    ));
    let s2 = s.clone();
    cases.push((
        "no signature",
        Box::new(move || fs::remove_file(s2.join("index.json.sig")).unwrap()),
        "index.json.sig",
    ));
    let s3 = s.clone();
    let other = fx.other_key.clone();
    cases.push((
        "signed by an unknown key",
        Box::new(move || {
            let bytes = fs::read(s3.join("index.json")).unwrap();
            sign_index(&s3, &bytes, &other);
        }),
        "not a trusted key",
    ));
    let s4 = s.clone();
    let key = fx.secret_key.clone();
    cases.push((
        "same serial, other bytes",
        Box::new(move || {
            let text = fs::read_to_string(s4.join("index.json")).unwrap();
            sign_index(
                &s4,
                text.replace("test package tool", "test package TOOL")
                    .as_bytes(),
                &key,
            );
        }),
        "serial",
    ));
    let s5 = s.clone();
    cases.push((
        "malformed signature",
        Box::new(move || {
            fs::write(
                s5.join("index.json.sig"),
                "untrusted comment: x\nnot base64!\n",
            )
            .unwrap()
        }),
        "index.json.sig",
    ));

    for (label, tamper, needle) in cases {
        srv.publish(&fx.v2);
        tamper();
        let before = sys.snapshot();
        let r = sys.warp(&["update"]);
        refused(label, &r);
        assert_eq!(r.code(), Some(4), "{label}: wrong exit status:\n{r}");
        assert!(
            r.stderr.contains(needle),
            "{label}: the error does not say `{needle}`:\n{r}"
        );
        assert_unchanged(&before, &sys, label);
        // The previous verified index still works.
        sys.warp(&["--dry-run", "install", "hello"])
            .ok(&format!("{label}: install from the previous index"));
    }

    // A tampered archive (same size, one byte flipped): refused at download.
    srv.publish(&fx.v2);
    let archive = fs::read_dir(&served)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("tool-")
        })
        .unwrap();
    let mut bytes = fs::read(&archive).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&archive, &bytes).unwrap();
    let before = sys.snapshot();
    sys.warp(&["install", "tool"])
        .fails_with(4, "tool", "a tampered archive");
    assert_unchanged(&before, &sys, "a tampered archive");
}

#[test]
fn conflicts_are_refused_and_change_nothing() {
    let fx = published();
    let sys = Sys::new(&fx.v1);
    sys.warp(&["update"]).ok("update");
    sys.warp(&["install", "hello"]).ok("install hello");
    let before = sys.snapshot();
    let r = sys.warp(&["install", "clash"]).fails_with(
        6,
        "usr/local/bin/hello",
        "two packages, one path",
    );
    assert!(
        r.stderr.contains("hello") && r.stderr.contains("clash"),
        "{r}"
    );
    assert_unchanged(&before, &sys, "a conflict between packages");

    // A file nobody installed (the user's, or the image's) is never overwritten.
    let sys = Sys::new(&fx.v1);
    sys.warp(&["update"]).ok("update");
    fs::create_dir_all(sys.root.join("opt/tool/bin")).unwrap();
    fs::write(sys.root.join("opt/tool/bin/tool"), "the user's own").unwrap();
    let before = sys.snapshot();
    sys.warp(&["install", "tool"])
        .fails_with(6, "opt/tool/bin/tool", "a file no package owns");
    assert_unchanged(&before, &sys, "an unowned file");

    // A directory of the package that is a symlink on disk: never written through.
    let sys = Sys::new(&fx.v1);
    sys.warp(&["update"]).ok("update");
    let outside = sys.root.join("elsewhere");
    fs::create_dir_all(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, sys.root.join("opt/tool")).unwrap();
    let before = sys.snapshot();
    sys.warp(&["install", "tool"])
        .fails_with(6, "opt/tool", "a symlink in the path");
    assert_unchanged(&before, &sys, "a symlink in the path");
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn too_little_space_is_refused_before_writing() {
    let fx = published();
    let sys = Sys::new(&fx.v1);
    // The root on a 1 MiB tmpfs; a package that installs 4 MiB (of zeros:
    // its archive is small, so only the installed size is too big).
    let mount = sys.root.clone();
    let saved = tempfile::tempdir_in(checkout().join("target")).unwrap();
    copy_tree(&mount, saved.path());
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "warp-test"])
        .arg(&mount)
        .status()
        .expect("mount");
    assert!(
        status.success(),
        "mounting a 1 MiB tmpfs (this test needs root)"
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mount.clone());
    copy_tree(saved.path(), &mount);

    let zeros = vec![0u8; 4 << 20];
    let big = manifest_of(
        "big",
        vec![
            dir_entry("opt"),
            dir_entry("opt/big"),
            file_entry("opt/big/zeros", &zeros),
        ],
        &[],
    );
    let tar = tar_of(
        &big,
        &[
            ("opt", tar::EntryType::Directory, 0o755, b"", ""),
            ("opt/big", tar::EntryType::Directory, 0o755, b"", ""),
            ("opt/big/zeros", tar::EntryType::Regular, 0o644, &zeros, ""),
        ],
    );
    let repo = sys.server.dir.clone();
    for e in fs::read_dir(&repo).unwrap() {
        fs::remove_file(e.unwrap().path()).unwrap();
    }
    hand_made_repo(&repo, 400, &fx.secret_key, &[(big, tar)]);
    sys.warp(&["update"]).ok("update");
    let before = sys.snapshot();
    sys.warp(&["install", "big"])
        .fails_with(7, "free space", "too little space");
    assert_unchanged(&before, &sys, "too little space");
}

fn copy_tree(from: &Path, to: &Path) {
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        let ft = e.file_type().unwrap();
        if ft.is_dir() {
            fs::create_dir_all(&target).unwrap();
            copy_tree(&e.path(), &target);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(e.path()).unwrap(), &target).unwrap();
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

#[test]
fn untrusted_local_archive_needs_the_flag_and_is_loud() {
    let fx = published();
    let sys = Sys::new(&fx.v1);
    let archive = fs::read_dir(&fx.v1)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("tool-")
        })
        .unwrap();
    let before = sys.snapshot();
    let r = sys.warp(&["install", archive.to_str().unwrap()]);
    assert_ne!(
        r.code(),
        Some(0),
        "a local file without --allow-untrusted:\n{r}"
    );
    assert_unchanged(&before, &sys, "a local file without --allow-untrusted");
    let r = sys
        .warp(&["install", "--allow-untrusted", archive.to_str().unwrap()])
        .ok("install --allow-untrusted");
    assert!(
        r.stderr.to_uppercase().contains("UNVERIFIED")
            || r.stderr.to_uppercase().contains("UNTRUSTED"),
        "{r}"
    );
    assert_eq!(sys.read("opt/tool/bin/tool"), "tool");
    sys.warp(&["verify"]).ok("verify");
}

// ------------------------------------------------------------ crash safety

/// The crash points of a transaction, in the order they are reached
/// (`warp/src/txn.rs`).
const CRASH_POINTS: [&str; 7] = [
    "after-journal-staging",
    "mid-stage",
    "after-stage",
    "after-commit-point",
    "mid-commit",
    "before-db",
    "after-db",
];

/// One operation to interrupt: how to prepare a root, the command, and
/// the crash points it passes (a removal stages no file).
struct Operation {
    label: &'static str,
    prepare: fn(&Sys),
    args: &'static [&'static str],
    points: &'static [&'static str],
}

fn prepare_empty(sys: &Sys) {
    sys.warp(&["update"]).ok("update");
}

fn prepare_v1_then_v2(sys: &Sys) {
    sys.warp(&["update"]).ok("update");
    sys.warp(&["install", "hello", "tool"])
        .ok("install hello tool");
    sys.server.publish(&published().v2);
    sys.warp(&["update"]).ok("update to v2");
}

fn prepare_installed(sys: &Sys) {
    sys.warp(&["update"]).ok("update");
    sys.warp(&["install", "hello", "tool"])
        .ok("install hello tool");
}

const OPERATIONS: [Operation; 3] = [
    Operation {
        label: "install",
        prepare: prepare_empty,
        args: &["install", "hello", "tool"],
        points: &CRASH_POINTS,
    },
    Operation {
        label: "upgrade",
        prepare: prepare_v1_then_v2,
        args: &["upgrade"],
        points: &CRASH_POINTS,
    },
    Operation {
        label: "remove",
        prepare: prepare_installed,
        args: &["remove", "hello"],
        points: &[
            "after-journal-staging",
            "after-stage",
            "after-commit-point",
            "mid-commit",
            "before-db",
            "after-db",
        ],
    },
];

#[test]
fn killed_at_every_crash_point_recover_leaves_old_or_new_set() {
    let fx = published();
    for op in &OPERATIONS {
        // The set and files before and after, from an uninterrupted run.
        let reference = Sys::new(&fx.v1);
        (op.prepare)(&reference);
        let old_set = reference.installed();
        let old_files = package_files(&reference.snapshot());
        reference.warp(op.args).ok(op.label);
        let new_set = reference.installed();
        let new_files = package_files(&reference.snapshot());
        assert_ne!(
            old_set, new_set,
            "{}: the operation changes nothing",
            op.label
        );

        for &point in op.points {
            let what = format!("{} killed at {point}", op.label);
            let sys = Sys::new(&fx.v1);
            (op.prepare)(&sys);
            let r = run(sys.warp_cmd(op.args).env("WARP_CRASH_AT", point));
            assert_eq!(r.status.signal(), Some(9), "{what}: not killed there:\n{r}");
            let rec = sys.warp(&["recover"]).ok(&format!("{what}: recover"));
            let _ = rec;
            sys.warp(&["verify"])
                .ok(&format!("{what}: verify after recover"));
            let set = sys.installed();
            let files = package_files(&sys.snapshot());
            if set == old_set {
                assert_eq!(files, old_files, "{what}: the old set with other files");
            } else {
                assert_eq!(set, new_set, "{what}: neither the old nor the new set");
                assert_eq!(files, new_files, "{what}: the new set with other files");
            }
            assert_no_temporaries(&sys);
            // And the system goes on working: the operation can be redone.
            if set == old_set {
                sys.warp(op.args)
                    .ok(&format!("{what}: redone after recover"));
                assert_eq!(sys.installed(), new_set);
            }
        }
    }
}

#[test]
fn a_second_warp_waits_or_fails_with_the_locked_status() {
    let fx = published();
    let sys = Sys::new(&fx.v1);
    sys.warp(&["update"]).ok("update");
    let lock = sys.root.join("var/lib/warp/lock");
    assert!(lock.exists(), "no lock file after update");
    // Hold the lock with util-linux's flock for two seconds.
    let mut holder = Command::new("flock")
        .arg(&lock)
        .args(["sleep", "2"])
        .spawn()
        .expect("flock");
    std::thread::sleep(Duration::from_millis(300));
    let before = sys.snapshot();
    sys.warp(&["install", "tool"])
        .fails_with(8, "lock", "a second warp");
    assert_unchanged(&before, &sys, "a second warp");
    // Reading needs no lock: the last committed state.
    sys.warp(&["search", "tool"])
        .ok("search while another warp runs");
    assert!(sys.installed().is_empty());
    let start = Instant::now();
    sys.warp(&["--wait", "install", "tool"])
        .ok("install --wait");
    assert!(
        start.elapsed() > Duration::from_millis(800),
        "--wait did not wait"
    );
    holder.wait().unwrap();
    assert_eq!(sys.installed(), ["tool 1.0"]);
}

// ------------------------------------------------------- the shipped binary

#[test]
fn shipped_binary_is_static_and_has_no_crash_points() {
    // build_warp checks both (warp_build::check_shippable); the test build
    // above, in its own target directory, must not have reached it.
    let bytes = host_tools::warp_build::build_warp().expect("building the shipped warp");
    assert!(!bytes.windows(13).any(|w| w == b"WARP_CRASH_AT"));
    host_tools::warp_build::check_static_pie(&bytes).unwrap();
}
