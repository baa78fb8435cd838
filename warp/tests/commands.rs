//! warp's commands end to end, as a user runs them: the real binary with
//! `--root` on a temporary tree, against a small repository built here by
//! hand (archives written with warp-format and compressed with ruzstd, an
//! index signed with a throwaway signify key), served from `file://` and
//! from an HTTP server thread on 127.0.0.1. Each refusal is checked for its
//! exit status, its message, and for leaving the files as they were.
//!
//! (The tests with a repository built by `host-tools repo` live in
//! host-tools/tests/warp.rs.)
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use warp_format::archive;
use warp_format::index::{Entry, Index};
use warp_format::manifest::{FileEntry, Kind, Manifest};
use warp_format::paths;
use warp_format::signify::SecretKey;

/// A package to build: `name version`, depends, conflicts, and files
/// (path under the root, content).
struct Pkg {
    name: &'static str,
    version: &'static str,
    depends: &'static [&'static str],
    conflicts: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
}

const fn pkg(
    name: &'static str,
    version: &'static str,
    depends: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
) -> Pkg {
    Pkg {
        name,
        version,
        depends,
        conflicts: &[],
        files,
    }
}

const HELLO_1: Pkg = pkg(
    "hello",
    "1.0",
    &["libgreet>=1"],
    &[
        ("usr/local/bin/hello", "hello 1.0\n"),
        ("usr/local/share/hello/README", "hi\n"),
    ],
);
const HELLO_2: Pkg = pkg(
    "hello",
    "2.0",
    &["libgreet>=1"],
    &[("usr/local/bin/hello", "hello 2.0\n")],
);
const LIBGREET: Pkg = pkg(
    "libgreet",
    "1.0",
    &[],
    &[("usr/local/lib/libgreet.so", "greetings\n")],
);
const BROKEN: Pkg = pkg("broken", "1.0", &["libmissing"], &[("opt/broken/x", "x\n")]);
const RIVAL: Pkg = Pkg {
    name: "rival",
    version: "1.0",
    depends: &[],
    conflicts: &["hello"],
    files: &[("opt/rival/bin", "rival\n")],
};

/// Builds a package's manifest and compressed archive.
fn build(p: &Pkg) -> (Manifest, Vec<u8>) {
    let tree = tempfile::tempdir().unwrap();
    let mut entries: BTreeMap<String, FileEntry> = BTreeMap::new();
    for (path, content) in p.files {
        let mut dir = paths::parent(path);
        while !paths::is_shared_dir(dir) {
            entries.insert(
                dir.to_string(),
                FileEntry {
                    path: dir.to_string(),
                    kind: Kind::Dir,
                    mode: 0o755,
                    size: 0,
                    sha256: String::new(),
                    target: String::new(),
                },
            );
            dir = paths::parent(dir);
        }
        let full = tree.path().join(path);
        fs::create_dir_all(full.parent().unwrap()).unwrap();
        fs::write(&full, content).unwrap();
        entries.insert(
            path.to_string(),
            FileEntry {
                path: path.to_string(),
                kind: Kind::File,
                mode: 0o644,
                size: content.len() as u64,
                sha256: warp_format::sha256_hex(content.as_bytes()),
                target: String::new(),
            },
        );
    }
    // Sorted by path: every directory comes before what it holds.
    let manifest = Manifest {
        format: 1,
        name: p.name.into(),
        version: p.version.into(),
        arch: "x86_64".into(),
        description: format!("the {} package", p.name),
        license: "MIT".into(),
        depends: p.depends.iter().map(|s| s.to_string()).collect(),
        conflicts: p.conflicts.iter().map(|s| s.to_string()).collect(),
        files: entries.into_values().collect(),
    };
    let tar = archive::write(Vec::new(), &manifest, tree.path(), 0).unwrap();
    let zst =
        ruzstd::encoding::compress_to_vec(&tar[..], ruzstd::encoding::CompressionLevel::Fastest);
    (manifest, zst)
}

/// A repository directory and its signing key.
struct Repo {
    dir: tempfile::TempDir,
    key: SecretKey,
}

impl Repo {
    fn new() -> Repo {
        Repo {
            dir: tempfile::tempdir().unwrap(),
            key: SecretKey::from_random([42; 32], *b"warptest"),
        }
    }

    /// Writes the archives, `index.json` at `serial`, and its signature.
    fn publish(&self, serial: u64, pkgs: &[&Pkg]) -> Vec<u8> {
        let mut packages = Vec::new();
        for p in pkgs {
            let (m, zst) = build(p);
            let file = format!("{}-{}.warp", p.name, p.version);
            fs::write(self.dir.path().join(&file), &zst).unwrap();
            packages.push(Entry {
                name: m.name.clone(),
                version: m.version.clone(),
                description: m.description.clone(),
                license: m.license.clone(),
                depends: m.depends.clone(),
                conflicts: m.conflicts.clone(),
                file,
                size: zst.len() as u64,
                sha256: warp_format::sha256_hex(&zst),
                installed_size: m.installed_size(),
            });
        }
        let index = Index {
            format: 1,
            repo: "test".into(),
            arch: "x86_64".into(),
            serial,
            packages,
        };
        let bytes = index.to_bytes();
        self.write_index(&bytes, &self.key);
        bytes
    }

    fn write_index(&self, bytes: &[u8], key: &SecretKey) {
        fs::write(self.dir.path().join("index.json"), bytes).unwrap();
        fs::write(
            self.dir.path().join("index.json.sig"),
            key.sign(bytes).to_file("signed by the test"),
        )
        .unwrap();
    }

    fn url(&self) -> String {
        format!("file://{}/", self.dir.path().display())
    }
}

/// A managed root that trusts the repository's key.
struct Root {
    dir: tempfile::TempDir,
}

impl Root {
    fn new(repo: &Repo, url: &str) -> Root {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("usr/share/warp/keys");
        fs::create_dir_all(&keys).unwrap();
        fs::write(keys.join("test.pub"), repo.key.public().to_file("test key")).unwrap();
        fs::write(
            dir.path().join("usr/share/warp/repositories"),
            format!("# the test's repository\ntest {url}\n"),
        )
        .unwrap();
        for d in ["usr/local", "opt"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        Root { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Runs warp; returns (status, stdout, stderr).
    fn warp(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_warp"))
            .arg("--root")
            .arg(self.dir.path())
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs warp and expects success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let (code, out, err) = self.warp(args);
        assert_eq!(
            code, 0,
            "warp {args:?}: status {code}\nstdout: {out}\nstderr: {err}"
        );
        out
    }

    /// Runs warp and expects status `want` with `msg` on stderr.
    fn fails(&self, args: &[&str], want: i32, msg: &str) -> String {
        let (code, out, err) = self.warp(args);
        assert_eq!(code, want, "warp {args:?}\nstdout: {out}\nstderr: {err}");
        assert!(
            err.contains(msg),
            "warp {args:?}: `{msg}` not in stderr:\n{err}"
        );
        err
    }

    /// Every path under the root with its type, mode and content hash: to
    /// compare before and after a refusal.
    fn listing(&self) -> BTreeMap<String, String> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            for e in fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let rel = p.strip_prefix(base).unwrap().display().to_string();
                let m = fs::symlink_metadata(&p).unwrap();
                let mode = m.permissions().mode() & 0o7777;
                if m.is_dir() {
                    out.insert(rel, format!("d {mode:o}"));
                    walk(base, &p, out);
                } else if m.file_type().is_symlink() {
                    out.insert(rel, format!("l {}", fs::read_link(&p).unwrap().display()));
                } else {
                    let sha = warp_format::sha256_hex(&fs::read(&p).unwrap());
                    out.insert(rel, format!("f {mode:o} {sha}"));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.dir.path(), self.dir.path(), &mut out);
        // The lock file exists once any command ran; its presence is not a
        // change.
        out.remove("var/lib/warp/lock");
        out
    }

    fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    /// Nothing left in the partial download directory.
    fn no_partials(&self) {
        let partial = self.path("var/cache/warp/partial");
        if partial.exists() {
            let left: Vec<_> = fs::read_dir(&partial).unwrap().collect();
            assert!(left.is_empty(), "left in partial/: {left:?}");
        }
    }
}

#[test]
fn install_upgrade_remove_from_a_file_repository() {
    let repo = Repo::new();
    repo.publish(1, &[&HELLO_1, &LIBGREET, &BROKEN, &RIVAL]);
    let root = Root::new(&repo, &repo.url());

    // Before any update: no index, so nothing is known.
    root.fails(&["install", "hello"], 5, "unknown package hello");
    let out = root.ok(&["update"]);
    assert!(out.contains("test: serial 1, 4 packages"), "{out}");
    let out = root.ok(&["update"]);
    assert!(out.contains("test: up to date (serial 1)"), "{out}");

    let out = root.ok(&["search", "GREET"]);
    assert_eq!(out, "libgreet 1.0 - the libgreet package\n");
    let out = root.ok(&["list"]);
    assert!(
        out.contains("hello 1.0\n") && out.contains("rival 1.0\n"),
        "{out}"
    );

    // --dry-run: the plan, and nothing changes.
    let before = root.listing();
    let out = root.ok(&["install", "--dry-run", "hello"]);
    assert!(
        out.contains("+ hello 1.0 (")
            && out.contains("+ libgreet 1.0 (")
            && out.contains("dependency)"),
        "{out}"
    );
    assert!(out.contains("dry run"), "{out}");
    assert_eq!(root.listing(), before);

    // Stage 1's record of a RAM-mode boot: installing says what that means.
    fs::create_dir_all(root.path("run/k1os")).unwrap();
    fs::write(root.path("run/k1os/boot"), "mode=ram\n").unwrap();
    let (code, out, err) = root.warp(&["install", "hello"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("+ hello 1.0"), "{out}");
    assert!(
        err.contains("RAM mode: what you install is gone at the next boot"),
        "{err}"
    );
    fs::remove_dir_all(root.path("run")).unwrap();
    assert_eq!(root.read("usr/local/bin/hello"), "hello 1.0\n");
    assert_eq!(root.read("usr/local/lib/libgreet.so"), "greetings\n");
    assert_eq!(root.read("etc/warp/world"), "hello\n");
    root.no_partials();
    let out = root.ok(&["list", "--installed"]);
    assert_eq!(out, "hello 1.0 (test)\nlibgreet 1.0 (test) [dependency]\n");
    let out = root.ok(&["info", "hello"]);
    assert!(
        out.contains("installed:") && out.contains("1.0 from test, asked for"),
        "{out}"
    );
    assert!(
        out.contains("depends:") && out.contains("libgreet>=1"),
        "{out}"
    );
    let out = root.ok(&["info", "hello", "--files"]);
    assert!(
        out.contains("/usr/local/bin/hello\n") && out.contains("/usr/local/share/hello/\n"),
        "{out}"
    );
    let (_, _, err) = root.warp(&["install", "hello"]);
    assert!(err.contains("hello 1.0 is already installed"), "{err}");

    // Refusals that change nothing.
    let before = root.listing();
    root.fails(&["install", "nosuch"], 5, "unknown package nosuch");
    root.fails(
        &["install", "broken"],
        5,
        "unknown package libmissing (needed by broken)",
    );
    root.fails(
        &["install", "hello>=3"],
        5,
        "hello>=3: only 1.0 is available",
    );
    root.fails(
        &["install", "rival"],
        6,
        "rival 1.0 conflicts with hello 1.0",
    );
    root.fails(
        &["remove", "libgreet"],
        5,
        "cannot remove libgreet: hello needs it (hello depends on libgreet>=1)",
    );
    root.fails(&["remove", "nosuch"], 1, "nosuch is not installed");
    root.fails(&["install", "Bad Name"], 2, "not a package name");
    assert_eq!(root.listing(), before);

    // A new publication: upgrade.
    repo.publish(2, &[&HELLO_1, &HELLO_2, &LIBGREET]);
    let out = root.ok(&["update"]);
    assert!(out.contains("test: serial 1 -> 2, 3 packages"), "{out}");
    assert_eq!(root.ok(&["list", "--upgradable"]), "hello 1.0 -> 2.0\n");
    let out = root.ok(&["upgrade"]);
    assert!(out.contains("^ hello 1.0 -> 2.0"), "{out}");
    assert_eq!(root.read("usr/local/bin/hello"), "hello 2.0\n");
    assert!(!root.path("usr/local/share/hello/README").exists());
    assert_eq!(root.ok(&["list", "--upgradable"]), "");
    let (_, _, err) = root.warp(&["upgrade"]);
    assert!(err.contains("nothing to upgrade"), "{err}");

    // A pinned downgrade, then removal with the orphaned dependency.
    let out = root.ok(&["install", "hello=1.0"]);
    assert!(out.contains("v hello 2.0 -> 1.0"), "{out}");
    assert_eq!(root.read("usr/local/bin/hello"), "hello 1.0\n");
    let before = root.listing();
    let out = root.ok(&["--dry-run", "remove", "hello"]);
    assert!(
        out.contains("- hello 1.0") && out.contains("dry run"),
        "{out}"
    );
    assert_eq!(root.listing(), before);
    let out = root.ok(&["remove", "hello"]);
    assert!(
        out.contains("- hello 1.0") && out.contains("- libgreet 1.0"),
        "{out}"
    );
    assert!(!root.path("usr/local/bin/hello").exists());
    assert!(!root.path("usr/local/lib/libgreet.so").exists());
    assert_eq!(root.ok(&["list", "--installed"]), "");
    root.no_partials();
}

#[test]
fn index_refusals_keep_the_stored_index() {
    let repo = Repo::new();
    let good = repo.publish(5, &[&HELLO_1, &LIBGREET]);
    let root = Root::new(&repo, &repo.url());
    root.ok(&["update"]);
    let stored = root.path("var/lib/warp/repos/test/index.json");
    assert_eq!(fs::read(&stored).unwrap(), good);
    let before = root.listing();
    let index = repo.dir.path().join("index.json");
    let sig = repo.dir.path().join("index.json.sig");

    // Tampered: the bytes changed after signing.
    let mut tampered = good.clone();
    let at = tampered.len() / 2;
    tampered[at] = if tampered[at] == b' ' { b'\t' } else { b' ' };
    fs::write(&index, &tampered).unwrap();
    root.fails(&["update"], 4, "does not match");
    // No signature.
    fs::write(&index, &good).unwrap();
    fs::remove_file(&sig).unwrap();
    root.fails(&["update"], 4, "no signature at file://");
    // A malformed one.
    fs::write(&sig, "untrusted comment: x\nnot base64!\n").unwrap();
    root.fails(&["update"], 4, "index.json.sig: not a signify file");
    // Signed by a key the root does not trust.
    let stranger = SecretKey::from_random([9; 32], *b"stranger");
    repo.write_index(&good, &stranger);
    root.fails(
        &["update"],
        4,
        "signed by key 737472616e676572, which is not a trusted key",
    );
    // A replayed older index, properly signed.
    repo.publish(4, &[&HELLO_1, &LIBGREET]);
    root.fails(
        &["update"],
        4,
        "index serial 4 is older than the last seen 5",
    );
    // The same serial with other content.
    repo.publish(5, &[&HELLO_1]);
    root.fails(
        &["update"],
        4,
        "index serial 5 is the one last seen, but its content differs",
    );
    // An index larger than allowed is cut off, not read into memory.
    assert_eq!(root.listing(), before, "a refused index changed the root");

    // A tampered stored copy is caught by every reader.
    let mut damaged = good.clone();
    damaged[at] = b'x';
    fs::write(&stored, &damaged).unwrap();
    root.fails(
        &["search", "hello"],
        4,
        "stored index of `test`; run `warp update`",
    );
    // ...and `update` with a good, newer index repairs it.
    repo.publish(6, &[&HELLO_1, &LIBGREET]);
    root.ok(&["update"]);
    assert_eq!(
        root.ok(&["search", "hello"]),
        "hello 1.0 - the hello package\n"
    );
}

#[test]
fn archive_refusals_leave_nothing_behind() {
    let repo = Repo::new();
    repo.publish(1, &[&HELLO_1, &LIBGREET]);
    let root = Root::new(&repo, &repo.url());
    root.ok(&["update"]);
    let before = root.listing();
    let archive = repo.dir.path().join("hello-1.0.warp");
    let good = fs::read(&archive).unwrap();

    // Same size, other bytes.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0xff;
    fs::write(&archive, &bad).unwrap();
    root.fails(&["install", "hello"], 4, "the signed index says");
    // Longer than the index says: the download stops there.
    let mut long = good.clone();
    long.extend_from_slice(b"more");
    fs::write(&archive, &long).unwrap();
    root.fails(&["install", "hello"], 4, "longer than the");
    // Missing.
    fs::remove_file(&archive).unwrap();
    root.fails(&["install", "hello"], 3, "hello-1.0.warp: not found");
    root.no_partials();
    let mut after = root.listing();
    // The dependency fetched before the failure may stay in the cache: it
    // is verified, and that is what the cache is for.
    after.retain(|k, _| !k.starts_with("var/cache"));
    let mut before = before;
    before.retain(|k, _| !k.starts_with("var/cache"));
    assert_eq!(after, before);

    fs::write(&archive, &good).unwrap();
    root.ok(&["install", "hello"]);
    assert_eq!(root.read("usr/local/bin/hello"), "hello 1.0\n");
}

/// Serves the files of `dir` over HTTP/1.1 on 127.0.0.1 until dropped;
/// `chunked` sends bodies with chunked transfer encoding.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(dir: PathBuf, chunked: bool) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = conn else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut request = String::new();
                r.read_line(&mut request).unwrap();
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                        break;
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let file = dir.join(path.trim_start_matches('/'));
                let _ = match fs::read(&file) {
                    Ok(body) if chunked => {
                        let _ =
                            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
                        for piece in body.chunks(1000) {
                            let _ = write!(s, "{:x}\r\n", piece.len());
                            let _ = s.write_all(piece);
                            let _ = s.write_all(b"\r\n");
                        }
                        s.write_all(b"0\r\n\r\n")
                    }
                    Ok(body) => {
                        let _ = write!(
                            s,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n",
                            body.len()
                        );
                        s.write_all(&body)
                    }
                    Err(_) => s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
                };
            }
        });
        Server { port, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so the thread ends.
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
    }
}

#[test]
fn over_http() {
    for chunked in [false, true] {
        let repo = Repo::new();
        repo.publish(1, &[&HELLO_1, &LIBGREET]);
        let server = Server::start(repo.dir.path().to_path_buf(), chunked);
        let root = Root::new(&repo, &format!("http://127.0.0.1:{}/", server.port));
        let out = root.ok(&["update"]);
        assert!(out.contains("test: serial 1, 2 packages"), "{out}");
        root.ok(&["install", "hello"]);
        assert_eq!(root.read("usr/local/bin/hello"), "hello 1.0\n");
        fs::remove_file(repo.dir.path().join("index.json.sig")).unwrap();
        root.fails(&["update"], 4, "no signature at http://127.0.0.1:");
        drop(server);
    }
    // Nobody listening: a network error naming the URL.
    let repo = Repo::new();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = Root::new(&repo, &format!("http://127.0.0.1:{port}/r/"));
    root.fails(
        &["update"],
        3,
        &format!("cannot reach http://127.0.0.1:{port}/r/index.json: connection refused"),
    );
}

#[test]
fn untrusted_local_file() {
    let repo = Repo::new();
    repo.publish(1, &[&LIBGREET]);
    let root = Root::new(&repo, &repo.url());
    root.ok(&["update"]);
    let file = repo.dir.path().join("mine.warp");
    fs::write(&file, build(&HELLO_2).1).unwrap();
    let file = file.to_str().unwrap();
    root.fails(&["install", file], 2, "not a package name");
    let (code, out, err) = root.warp(&["install", "--allow-untrusted", file]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("installing an UNVERIFIED package"), "{err}");
    assert!(
        out.contains("+ hello 2.0") && out.contains("+ libgreet 1.0"),
        "{out}"
    );
    assert_eq!(root.read("usr/local/bin/hello"), "hello 2.0\n");
    assert_eq!(
        root.ok(&["list", "--installed"]),
        "hello 2.0 (local)\nlibgreet 1.0 (test) [dependency]\n"
    );
    assert_eq!(root.read("etc/warp/world"), "hello=2.0\n");
    // Not an archive at all.
    let junk = repo.dir.path().join("junk.warp");
    fs::write(&junk, "junk").unwrap();
    root.fails(
        &["install", "--allow-untrusted", junk.to_str().unwrap()],
        4,
        "junk.warp",
    );
}

#[test]
fn repositories_and_keys() {
    let repo = Repo::new();
    let root = Root::new(&repo, &repo.url());
    let out = root.ok(&["repo", "list"]);
    assert_eq!(out, format!("test {} (not updated yet)\n", repo.url()));
    root.fails(
        &["repo", "add", "web", "https://example.org/"],
        2,
        "HTTPS is not supported yet",
    );
    root.fails(
        &["repo", "add", "Web", "http://example.org/"],
        2,
        "not a repository name",
    );
    root.fails(
        &["repo", "add", "test", "http://example.org/"],
        1,
        "already in the list",
    );
    root.ok(&["repo", "add", "web", "http://example.org:8080/k1os/"]);
    // The image's list is untouched; the administrator's starts from it.
    assert_eq!(
        root.read("usr/share/warp/repositories"),
        format!("# the test's repository\ntest {}\n", repo.url())
    );
    let out = root.ok(&["repo", "list"]);
    assert!(
        out.ends_with("web http://example.org:8080/k1os/ (not updated yet)\n"),
        "{out}"
    );
    root.ok(&["repo", "remove", "test"]);
    assert_eq!(
        root.ok(&["repo", "list"]),
        "web http://example.org:8080/k1os/ (not updated yet)\n"
    );
    root.fails(&["repo", "remove", "test"], 1, "no repository `test`");
    root.fails(&["repo", "frob"], 2, "unknown subcommand `frob`");

    let out = root.ok(&["key", "list"]);
    assert_eq!(
        out,
        format!(
            "7761727074657374 {} (image)\n",
            root.path("usr/share/warp/keys/test.pub").display()
        )
    );
    let other = SecretKey::from_random([3; 32], [0xab; 8]);
    let file = root.dir.path().join("other.pub");
    fs::write(&file, other.public().to_file("another key")).unwrap();
    root.ok(&["key", "add", file.to_str().unwrap()]);
    let out = root.ok(&["key", "list"]);
    assert!(
        out.contains("abababababababab")
            && out.contains("etc/warp/keys.d/abababababababab.pub (administrator)"),
        "{out}"
    );
    let err = root.fails(&["key", "remove", "7761727074657374"], 1, "is an image key");
    assert!(err.contains("comes with the image"), "{err}");
    root.ok(&["key", "remove", "abababababababab"]);
    assert!(!root.path("etc/warp/keys.d/abababababababab.pub").exists());
    root.fails(&["key", "remove", "xyz"], 2, "not a key number");
    fs::write(&file, "garbage").unwrap();
    root.fails(
        &["key", "add", file.to_str().unwrap()],
        1,
        "not a signify file",
    );
    // A malformed key file is a warning naming it, not fatal.
    fs::write(root.path("etc/warp/keys.d/bad.pub"), "garbage").unwrap();
    let (code, _, err) = root.warp(&["key", "list"]);
    assert_eq!(code, 0);
    assert!(err.contains("keys.d/bad.pub"), "{err}");
}

#[test]
fn command_line() {
    let repo = Repo::new();
    let root = Root::new(&repo, &repo.url());
    let help = root.ok(&["--help"]);
    for word in [
        "update",
        "rollback",
        "key",
        "--root DIR",
        "--dry-run",
        "--wait",
        "etc/warp/world",
        "8  locked",
    ] {
        assert!(help.contains(word), "{word} not in --help");
    }
    assert!(root.ok(&["install", "--help"]).starts_with("warp install:"));
    assert!(root.ok(&["--version"]).starts_with("warp "));
    assert!(root.ok(&["help", "remove"]).starts_with("warp remove:"));
    assert!(root.ok(&["-h", "search"]).starts_with("warp search:"));
    root.fails(&["frobnicate"], 2, "unknown command `frobnicate`");
    root.fails(&["--frob"], 2, "unknown option `--frob`");
    root.fails(&[], 2, "no command given");
    root.fails(&["list", "--installed", "--upgradable"], 2, "not both");
    root.fails(
        &["install", "--nope", "x"],
        2,
        "install: invalid option '--nope'",
    );
    root.fails(&["update", "extra"], 2, "update:");
    root.fails(&["search"], 2, "search: what to look for?");
    root.fails(&["info"], 2, "info: which package?");
    // No repository at all.
    fs::remove_file(root.path("usr/share/warp/repositories")).unwrap();
    root.fails(&["update"], 1, "no repositories in");
}
