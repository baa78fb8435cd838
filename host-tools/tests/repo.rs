//! `host-tools repo` through the real binary, on scratch packages, caches and
//! keys: a repository built twice gives the same bytes, verifies, and its
//! signature is accepted by the reference verifier (`signify-openbsd`, Debian
//! package `signify-openbsd`); keys go both ways between signify-openbsd and
//! `warp_format::signify`; tampering is caught by `repo verify`; a repository
//! package with a file outside /usr/local and /opt is refused; `repo serve`
//! answers over TCP and on stdin/stdout and refuses traversal; `rootfs`
//! leaves repository packages out of the image. No VM; a few seconds.
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use host_tools::packages::Settings;
use host_tools::rootfs::{self, Compression};
use warp_format::index::Index;
use warp_format::signify::{PublicKey, SecretKey, Signature};

/// The reference verifier.
const SIGNIFY: &str = "signify-openbsd";
const EPOCH: &str = "1700000000";

/// A scratch packages directory, cache, build directory and key directory.
struct Scratch {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        fs::create_dir_all(root.join("packages")).unwrap();
        Scratch { _tmp: tmp, root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `packages/<name>/` with a package.toml (plus `extra` lines) and `script`.
    fn package(&self, name: &str, version: &str, depends: &[&str], extra: &str, script: &str) {
        let dir = self.path("packages").join(name);
        fs::create_dir_all(&dir).unwrap();
        let deps: Vec<String> = depends.iter().map(|d| format!("\"{d}\"")).collect();
        fs::write(
            dir.join("package.toml"),
            format!(
                "name = \"{name}\"\nversion = \"{version}\"\ndescription = \"test package {name}\"\n\
                 license = \"MIT\"\ndepends = [{}]\n{extra}",
                deps.join(", ")
            ),
        )
        .unwrap();
        fs::write(dir.join("build.sh"), script).unwrap();
    }

    /// An image package `skel` (what rootfs needs to accept a tree), a
    /// repository library `libgreet` and a repository tool `hello` that
    /// depends on both (only `libgreet` is a warp dependency).
    fn two_repository_packages(&self) {
        self.package(
            "skel",
            "1.0",
            &[],
            "",
            "for d in dev proc sys run tmp sbin etc usr/local/bin opt; do mkdir -p \"$DESTDIR/$d\"; done\n\
             printf '#!/bin/sh\\n' > \"$DESTDIR/sbin/init\"\nchmod 755 \"$DESTDIR/sbin/init\"\n\
             echo NAME=TEST > \"$DESTDIR/etc/os-release\"\n",
        );
        self.package(
            "libgreet",
            "1.2-1",
            &[],
            "repository = true\n",
            "mkdir -p \"$DESTDIR/usr/local/share/greet\"\n\
             echo hello > \"$DESTDIR/usr/local/share/greet/word\"\n",
        );
        self.package(
            "hello",
            "2.0",
            &["libgreet", "skel"],
            "repository = true\n",
            "mkdir -p \"$DESTDIR/usr/local/bin\" \"$DESTDIR/opt/hello\"\n\
             { echo '#!/bin/sh'; echo \"echo $(cat \"$SYSROOT/usr/local/share/greet/word\")\"; } \
             > \"$DESTDIR/usr/local/bin/hello\"\nchmod 755 \"$DESTDIR/usr/local/bin/hello\"\n\
             ln -s ../../usr/local/bin/hello \"$DESTDIR/opt/hello/hello\"\n",
        );
    }

    /// host-tools with `args`, run in the checkout, with this scratch's
    /// cache and build directory and a fixed SOURCE_DATE_EPOCH.
    fn host_tools(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_host-tools"));
        cmd.args(args)
            .current_dir(checkout())
            .stdin(Stdio::null())
            .env("K1OS_CACHE", self.path("cache"))
            .env("K1OS_BUILD_DIR", self.path("build"))
            .env("SOURCE_DATE_EPOCH", EPOCH)
            .env("NO_COLOR", "1")
            .env_remove("K1OS_REPO_KEY")
            .env_remove("K1OS_ROOT");
        cmd
    }

    /// `repo build --packages <scratch> --out <out>`, signed with `key`;
    /// panics with its output when it fails.
    fn repo_build(&self, out: &Path, key: &Path) -> Output {
        let out = run(self
            .host_tools(&["repo", "build", "--packages"])
            .arg(self.path("packages"))
            .arg("--out")
            .arg(out)
            .env("K1OS_REPO_KEY", key));
        assert!(out.status.success(), "repo build failed:\n{}", text(&out));
        out
    }

    fn repo_verify(&self, dir: &Path, public: &Path) -> Output {
        run(self
            .host_tools(&["repo", "verify"])
            .arg(dir)
            .arg("--key")
            .arg(public))
    }

    fn keygen(&self, name: &str) -> (PathBuf, PathBuf) {
        let out = run(self
            .host_tools(&["repo", "keygen", "--out"])
            .arg(self.path("keys"))
            .arg(name));
        assert!(out.status.success(), "keygen failed:\n{}", text(&out));
        let dir = self.path("keys");
        (
            dir.join(format!("{name}.sec")),
            dir.join(format!("{name}.pub")),
        )
    }
}

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

/// Every file of a directory, by name, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

/// The `.sec` files under `dir`, at any depth.
fn secret_keys(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = e.path();
        if path.is_dir() {
            found.extend(secret_keys(&path));
        } else if path.extension().is_some_and(|x| x == "sec") {
            found.push(path);
        }
    }
    found
}

fn signify_verify(public: &Path, dir: &Path) -> Output {
    run(Command::new(SIGNIFY)
        .arg("-V")
        .arg("-p")
        .arg(public)
        .arg("-x")
        .arg(dir.join("index.json.sig"))
        .arg("-m")
        .arg(dir.join("index.json")))
}

/// Flips one bit of `path` at `at` (from the end when negative).
fn flip(path: &Path, at: isize) -> Vec<u8> {
    let original = fs::read(path).unwrap();
    let mut bytes = original.clone();
    let i = if at < 0 {
        bytes.len() - at.unsigned_abs()
    } else {
        at as usize
    };
    bytes[i] ^= 0x01;
    fs::write(path, bytes).unwrap();
    original
}

#[test]
fn a_repository_builds_reproducibly_verifies_and_catches_tampering() {
    let s = Scratch::new();
    s.two_repository_packages();
    let (sec, public) = s.keygen("test");
    assert_eq!(
        fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let again = run(s
        .host_tools(&["repo", "keygen", "--out"])
        .arg(s.path("keys"))
        .arg("test"));
    assert!(
        !again.status.success() && text(&again).contains("already exists"),
        "keygen overwrote a key:\n{}",
        text(&again)
    );

    let one = s.path("repo-one");
    let two = s.path("repo-two");
    fs::create_dir_all(&one).unwrap();
    fs::write(one.join("gone-0.1.warp"), "an archive of an earlier build").unwrap();
    let built = s.repo_build(&one, &sec);
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(
        stdout.contains("hello-2.0.warp") && stdout.contains(": 2 packages, "),
        "{stdout}"
    );
    assert!(!one.join("gone-0.1.warp").exists(), "stale archive kept");
    s.repo_build(&two, &sec);
    assert_eq!(files(&one), files(&two), "two builds differ");
    let names: Vec<String> = files(&one).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "hello-2.0.warp",
            "index.json",
            "index.json.sig",
            "libgreet-1.2-1.warp",
            "test.pub"
        ]
    );
    assert_eq!(
        fs::read(one.join("test.pub")).unwrap(),
        fs::read(&public).unwrap()
    );
    assert_eq!(
        secret_keys(&s.path("build")),
        Vec::<PathBuf>::new(),
        "no secret key in build/"
    );

    let index = Index::parse(&fs::read(one.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        (index.repo.as_str(), index.serial),
        ("k1os", EPOCH.parse().unwrap())
    );
    let hello = &index.packages[0];
    assert_eq!(
        (hello.name.as_str(), hello.version.as_str()),
        ("hello", "2.0")
    );
    assert_eq!(
        hello.depends,
        ["libgreet"],
        "the image package skel is no warp dependency"
    );
    assert!(hello.installed_size > 0);
    let sig = fs::read_to_string(one.join("index.json.sig")).unwrap();
    assert!(
        sig.starts_with("untrusted comment: verify with test.pub\n"),
        "{sig}"
    );

    // `--serial` overrides the default.
    let serial = run(s
        .host_tools(&["repo", "build", "--serial", "42", "--packages"])
        .arg(s.path("packages"))
        .arg("--out")
        .arg(&two)
        .env("K1OS_REPO_KEY", &sec));
    assert!(serial.status.success(), "{}", text(&serial));
    let index_two = Index::parse(&fs::read(two.join("index.json")).unwrap()).unwrap();
    assert_eq!(index_two.serial, 42);

    let ok = s.repo_verify(&one, &public);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("OK"));
    let reference = signify_verify(&public, &one);
    assert!(
        reference.status.success(),
        "signify-openbsd refuses the signature:\n{}",
        text(&reference)
    );

    // A flipped byte in an archive: named, with its hash.
    let archive = one.join("libgreet-1.2-1.warp");
    let original = flip(&archive, -10);
    let bad = s.repo_verify(&one, &public);
    let msg = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("libgreet-1.2-1.warp: sha256"),
        "the archive is named:\n{msg}"
    );
    assert!(!msg.contains("hello-2.0.warp:"), "{msg}");
    fs::write(&archive, original).unwrap();

    // A flipped byte in index.json: the signature no longer matches
    // (signify-openbsd agrees).
    let original = flip(&one.join("index.json"), 20);
    let bad = s.repo_verify(&one, &public);
    let msg = text(&bad);
    assert_eq!(bad.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("index.json.sig: the signature by key"),
        "{msg}"
    );
    assert!(!signify_verify(&public, &one).status.success());
    fs::write(one.join("index.json"), original).unwrap();

    // Another key: refused, naming the signing key.
    let (_, other) = s.keygen("other");
    let bad = s.repo_verify(&one, &other);
    assert!(
        text(&bad).contains("which is not a trusted key") || text(&bad).contains("signed by key"),
        "{}",
        text(&bad)
    );
    assert!(!bad.status.success());

    // An archive the index does not list, and a missing one.
    fs::write(one.join("extra-1.warp"), "x").unwrap();
    fs::remove_file(one.join("hello-2.0.warp")).unwrap();
    let msg = text(&s.repo_verify(&one, &public));
    assert!(
        msg.contains("extra-1.warp: an archive the index does not list"),
        "{msg}"
    );
    assert!(msg.contains("hello-2.0.warp: "), "{msg}");
    assert!(msg.contains("2 problem(s)"), "{msg}");
}

#[test]
fn signify_openbsd_and_warp_format_read_each_others_keys_and_signatures() {
    let s = Scratch::new();
    let dir = s.path("keys");
    fs::create_dir_all(&dir).unwrap();
    let (ref_sec, ref_pub) = (dir.join("ref.sec"), dir.join("ref.pub"));
    let made = run(Command::new(SIGNIFY)
        .args(["-G", "-n", "-c", "reference key", "-p"])
        .arg(&ref_pub)
        .arg("-s")
        .arg(&ref_sec));
    assert!(made.status.success(), "{}", text(&made));

    // signify-openbsd signs, warp_format verifies.
    let message = dir.join("message");
    fs::write(&message, b"{\"serial\": 1}\n").unwrap();
    let signed = run(Command::new(SIGNIFY)
        .arg("-S")
        .arg("-s")
        .arg(&ref_sec)
        .arg("-m")
        .arg(&message)
        .arg("-x")
        .arg(dir.join("message.sig")));
    assert!(signed.status.success(), "{}", text(&signed));
    let key = PublicKey::parse(&fs::read_to_string(&ref_pub).unwrap()).unwrap();
    let sig = Signature::parse(&fs::read_to_string(dir.join("message.sig")).unwrap()).unwrap();
    key.verify(&fs::read(&message).unwrap(), &sig).unwrap();
    assert!(key.verify(b"other bytes", &sig).is_err());
    // Its secret key reads as ours, with the same public half.
    let secret = SecretKey::parse(&fs::read_to_string(&ref_sec).unwrap()).unwrap();
    assert_eq!(secret.public(), key);

    // A repository signed with signify-openbsd's key passes signify-openbsd.
    s.two_repository_packages();
    let repo = s.path("repo");
    s.repo_build(&repo, &ref_sec);
    let reference = signify_verify(&ref_pub, &repo);
    assert!(reference.status.success(), "{}", text(&reference));

    // A key from `repo keygen` signs with signify-openbsd, and the result
    // verifies both with signify-openbsd and warp_format.
    let (our_sec, our_pub) = s.keygen("ours");
    let signed = run(Command::new(SIGNIFY)
        .arg("-S")
        .arg("-s")
        .arg(&our_sec)
        .arg("-m")
        .arg(&message)
        .arg("-x")
        .arg(dir.join("ours.sig")));
    assert!(signed.status.success(), "{}", text(&signed));
    let checked = run(Command::new(SIGNIFY)
        .arg("-V")
        .arg("-p")
        .arg(&our_pub)
        .arg("-x")
        .arg(dir.join("ours.sig"))
        .arg("-m")
        .arg(&message));
    assert!(checked.status.success(), "{}", text(&checked));
    let ours = PublicKey::parse(&fs::read_to_string(&our_pub).unwrap()).unwrap();
    let sig = Signature::parse(&fs::read_to_string(dir.join("ours.sig")).unwrap()).unwrap();
    ours.verify(&fs::read(&message).unwrap(), &sig).unwrap();
}

#[test]
fn a_repository_package_outside_usr_local_and_opt_is_refused() {
    let s = Scratch::new();
    s.package(
        "good",
        "1.0",
        &[],
        "repository = true\n",
        "mkdir -p \"$DESTDIR/opt/good\"\necho x > \"$DESTDIR/opt/good/x\"\n",
    );
    let (sec, _) = s.keygen("test");
    let repo = s.path("repo");
    s.repo_build(&repo, &sec);
    let before = files(&repo);
    // A new version of `good` and a package with files in the image's
    // places: nothing of this build is published.
    s.package(
        "good",
        "1.1",
        &[],
        "repository = true\n",
        "mkdir -p \"$DESTDIR/opt/good\"\necho y > \"$DESTDIR/opt/good/x\"\n",
    );
    s.package(
        "sneaky",
        "1.0",
        &[],
        "repository = true\n",
        "mkdir -p \"$DESTDIR/usr/local/bin\" \"$DESTDIR/usr/bin\" \"$DESTDIR/etc\"\n\
         echo x > \"$DESTDIR/usr/local/bin/fine\"\necho x > \"$DESTDIR/usr/bin/sneaky\"\n\
         ln -s /bin/sh \"$DESTDIR/etc/shell\"\n",
    );
    let out = run(s
        .host_tools(&["repo", "build", "--packages"])
        .arg(s.path("packages"))
        .arg("--out")
        .arg(&repo)
        .env("K1OS_REPO_KEY", &sec));
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(1), "{msg}");
    assert!(
        msg.contains("repository package `sneaky` 1.0 installs outside /usr/local and /opt")
            && msg.contains("/etc/shell, /usr/bin/sneaky"),
        "the package and every misplaced path are named:\n{msg}"
    );
    assert!(!msg.contains("/usr/local/bin/fine"), "{msg}");
    assert_eq!(
        files(&repo),
        before,
        "the published repository is unchanged"
    );
}

#[test]
fn keygen_keeps_secret_keys_out_of_the_checkout() {
    let s = Scratch::new();
    for inside in [checkout().join("packages/keys"), s.path("build/keys")] {
        let out = run(s
            .host_tools(&["repo", "keygen", "--out"])
            .arg(&inside)
            .arg("leak"));
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(1), "{msg}");
        assert!(msg.contains("a secret key must stay out of it"), "{msg}");
        assert!(!inside.join("leak.sec").exists(), "{}", inside.display());
    }
    // Without --out: the build key, in the cache.
    let out = run(&mut s.host_tools(&["repo", "keygen"]));
    assert!(out.status.success(), "{}", text(&out));
    let sec = s.path("cache/repo-key/k1os-build.sec");
    assert_eq!(
        fs::metadata(&sec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // `repo build` then signs with it, and `repo verify` finds it.
    s.package(
        "tool",
        "1",
        &[],
        "repository = true\n",
        "mkdir -p \"$DESTDIR/usr/local/bin\"\necho x > \"$DESTDIR/usr/local/bin/tool\"\n",
    );
    let built = run(s
        .host_tools(&["repo", "build", "--packages"])
        .arg(s.path("packages")));
    assert!(built.status.success(), "{}", text(&built));
    let repo = s.path("build/repo");
    assert_eq!(
        fs::read(repo.join("k1os-build.pub")).unwrap(),
        fs::read(s.path("cache/repo-key/k1os-build.pub")).unwrap()
    );
    let verified = run(&mut s.host_tools(&["repo", "verify"]));
    assert!(verified.status.success(), "{}", text(&verified));
    assert_eq!(secret_keys(&s.path("build")), Vec::<PathBuf>::new());
}

/// `repo serve --port 0` in the background, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(s: &Scratch, dir: &Path) -> Server {
        let mut child = s
            .host_tools(&["repo", "serve", "--port", "0", "--dir"])
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on http://127.0.0.1:")
            .and_then(|rest| rest.strip_suffix('/'))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no `listening on` line: {line:?}"));
        Server { child, port }
    }

    /// The raw answer to `request`.
    fn ask(&self, request: &str) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        answer
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The status code and the body of a raw HTTP answer.
fn status_and_body(answer: &[u8]) -> (u16, Vec<u8>) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    let at = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = &text[..at];
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Content-Length in {head:?}"));
    assert!(head.contains("Connection: close\r\n"), "{head}");
    let body = answer[at..].to_vec();
    assert_eq!(body.len(), length, "{head}");
    (status, body)
}

#[test]
fn serve_answers_files_and_refuses_traversal() {
    let s = Scratch::new();
    let dir = s.path("repo");
    fs::create_dir_all(&dir).unwrap();
    let index = b"{\"format\": 1}\n".to_vec();
    fs::write(dir.join("index.json"), &index).unwrap();
    fs::write(s.path("secret"), "not to be served").unwrap();

    let server = Server::start(&s, &dir);
    let (status, body) =
        status_and_body(&server.ask("GET /index.json HTTP/1.1\r\nHost: x\r\n\r\n"));
    assert_eq!((status, body), (200, index.clone()));
    for target in [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E%2Fsecret",
        "/..%2fsecret",
        "/../secret",
    ] {
        let answer = server.ask(&format!("GET {target} HTTP/1.1\r\n\r\n"));
        let (status, body) = status_and_body(&answer);
        assert_eq!(
            status,
            400,
            "{target}: {}",
            String::from_utf8_lossy(&answer)
        );
        assert!(!String::from_utf8_lossy(&body).contains("not to be served"));
        assert!(!String::from_utf8_lossy(&body).contains("root:"));
    }
    assert_eq!(
        status_and_body(&server.ask("GET /missing.warp HTTP/1.1\r\n\r\n")).0,
        404
    );
    assert_eq!(
        status_and_body(&server.ask("DELETE /index.json HTTP/1.1\r\n\r\n")).0,
        405
    );
    assert_eq!(status_and_body(&server.ask("nonsense\r\n\r\n")).0, 400);
    // Two at once: one thread per connection.
    let slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let (status, _) = status_and_body(&server.ask("GET /index.json HTTP/1.0\r\n\r\n"));
    assert_eq!(status, 200, "a silent connection does not block another");
    drop(slow);

    // --stdio: one request on stdin, the answer alone on stdout.
    let mut child = s
        .host_tools(&["repo", "serve", "--stdio", "--dir"])
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"GET /index.json HTTP/1.1\r\nHost: 10.0.2.100\r\n\r\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        out.stdout.starts_with(b"HTTP/1.1 200 OK\r\n"),
        "{}",
        text(&out)
    );
    assert_eq!(status_and_body(&out.stdout), (200, index));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("GET /index.json"),
        "the request is logged on stderr:\n{}",
        text(&out)
    );
}

#[test]
fn rootfs_leaves_repository_packages_out_of_the_image() {
    let s = Scratch::new();
    s.two_repository_packages();
    let opts = rootfs::Options {
        settings: Settings {
            packages_dir: s.path("packages"),
            cache_dir: s.path("cache"),
            work_dir: s.path("work"),
            jobs: 1,
        },
        staging: s.path("staging"),
        image: s.path("system.squashfs"),
        compression: Compression::Zstd,
        kernel_modules: None,
    };
    let built = rootfs::build(&opts, |_| {}).unwrap_or_else(|e| panic!("{e:#}"));
    let names: Vec<&str> = built.packages.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["skel"], "repository packages are not even built");
    assert!(s.path("staging/usr/local/bin").is_dir());
    assert!(!s.path("staging/usr/local/bin/hello").exists());
    assert!(!s.path("staging/usr/local/share").exists());
    assert!(!s.path("staging/opt/hello").exists());
    let notices =
        fs::read_to_string(s.path("staging").join(host_tools::notices::NOTICES_PATH)).unwrap();
    assert!(notices.contains("skel 1.0"), "{notices}");
    assert!(
        !notices.contains("hello 2.0"),
        "a repository package is not in the image's notices"
    );
}

/// The real `packages/warp` in a scratch image: `/usr/bin/warp` (static,
/// 0755), the signing key's public half as `<keynum>.pub`, the default
/// repository list; another `K1OS_REPO_KEY` rebuilds it with that key.
#[test]
fn the_image_trusts_the_key_the_repository_is_signed_with() {
    let s = Scratch::new();
    s.two_repository_packages();
    let warp = s.path("packages/warp");
    fs::create_dir_all(&warp).unwrap();
    for file in ["package.toml", "build.sh"] {
        fs::copy(checkout().join("packages/warp").join(file), warp.join(file)).unwrap();
    }
    let (test_sec, test_pub) = s.keygen("test");
    let (other_sec, other_pub) = s.keygen("other");
    let staged = |key: &Path| -> PathBuf {
        let out = run(s
            .host_tools(&["rootfs", "--packages"])
            .arg(s.path("packages"))
            .env("K1OS_REPO_KEY", key));
        assert!(out.status.success(), "rootfs failed:\n{}", text(&out));
        s.path("build/rootfs")
    };
    let keynum = |public: &Path| {
        PublicKey::parse(&fs::read_to_string(public).unwrap())
            .unwrap()
            .keynum
            .to_string()
    };

    let rootfs = staged(&test_sec);
    let binary = rootfs.join("usr/bin/warp");
    assert_eq!(
        fs::metadata(&binary).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    host_tools::warp_build::check_shippable(&fs::read(&binary).unwrap()).unwrap();
    let keys: Vec<String> = fs::read_dir(rootfs.join("usr/share/warp/keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys, [format!("{}.pub", keynum(&test_pub))]);
    assert_eq!(
        fs::read(rootfs.join("usr/share/warp/keys").join(&keys[0])).unwrap(),
        fs::read(&test_pub).unwrap()
    );
    let list = fs::read_to_string(rootfs.join("usr/share/warp/repositories")).unwrap();
    let repos: Vec<&str> = list
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        repos,
        ["media file:///run/k1os/media/repo/"],
        "only the boot media's repository (`./k1os iso` puts it there): {list}"
    );
    assert!(
        !rootfs.join("usr/local/bin/hello").exists(),
        "repository packages stay out"
    );

    let rootfs = staged(&other_sec);
    let keys: Vec<String> = fs::read_dir(rootfs.join("usr/share/warp/keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(keys, [format!("{}.pub", keynum(&other_pub))]);
}
