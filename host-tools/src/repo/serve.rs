//! `repo serve`: a small HTTP/1.1 file server for a repository directory,
//! std only. `GET` and `HEAD` of plain file names in the directory (and one
//! sub-directory level); `Content-Length` and `Connection: close` on every
//! answer. Nothing else is reachable: a target is percent-decoded first and
//! then must be one or two names of `A-Z a-z 0-9 . _ + ~ : -` that do not
//! start with `.`, so `..`, `%2e%2e`, absolute paths, backslashes and hidden
//! files are refused (400); symlinks and missing files are 404.
//!
//! Two ways to run: listening on 127.0.0.1 only (one thread per
//! connection), or one connection on stdin/stdout (`--stdio`, for QEMU's
//! `guestfwd=…-cmd:`, which runs a command per connection). Requests are
//! logged on stderr, never on stdout.
use anyhow::{Context, Result, ensure};
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest request head (request line and headers) read.
pub const MAX_HEAD: u64 = 8192;
/// How long a connection may stay silent before it is dropped.
const IDLE: Duration = Duration::from_secs(30);

/// One request and what it got, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// The request line as received (lossy), or empty.
    pub request: String,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
}

/// Serves `dir` on 127.0.0.1:`port` (0: a free port) until killed;
/// `listening` is told the address once the socket listens.
pub fn serve_tcp(dir: &Path, port: u16, listening: impl FnOnce(SocketAddr)) -> Result<()> {
    let dir = repository_dir(dir)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    listening(listener.local_addr()?);
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let dir = dir.clone();
                std::thread::spawn(move || serve_connection(&dir, stream));
            }
            Err(e) => eprintln!("repo serve: accepting a connection: {e}"),
        }
    }
    Ok(())
}

/// Serves one connection on stdin and stdout, then returns. The request is
/// logged on stderr unless stderr is the connection itself: QEMU's
/// `guestfwd=…-cmd:` gives the command the connection as stdin, stdout and
/// stderr, and a log line there would reach the client after the answer.
pub fn serve_stdio(dir: &Path) -> Result<()> {
    let dir = repository_dir(dir)?;
    let mut input = BufReader::new(io::stdin().lock());
    let mut output = io::BufWriter::new(io::stdout().lock());
    let exchange = respond(&dir, &mut input, &mut output).context("answering on stdout")?;
    output.flush().context("answering on stdout")?;
    if !stderr_is_stdout() {
        log("stdio", &exchange);
    }
    Ok(())
}

/// Are stdout and stderr the same open file (device and inode)?
fn stderr_is_stdout() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let identity = |fd: std::os::fd::BorrowedFd<'_>| {
        let meta = fs::File::from(fd.try_clone_to_owned().ok()?)
            .metadata()
            .ok()?;
        Some((meta.dev(), meta.ino()))
    };
    match (
        identity(io::stdout().as_fd()),
        identity(io::stderr().as_fd()),
    ) {
        (Some(out), Some(err)) => out == err,
        _ => false,
    }
}

fn repository_dir(dir: &Path) -> Result<PathBuf> {
    let real = fs::canonicalize(dir).with_context(|| format!("serving {}", dir.display()))?;
    ensure!(real.is_dir(), "serving {}: not a directory", dir.display());
    Ok(real)
}

fn serve_connection(dir: &Path, stream: TcpStream) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(IDLE));
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut input = BufReader::new(reading);
    let mut output = io::BufWriter::new(&stream);
    let result = respond(dir, &mut input, &mut output).and_then(|e| output.flush().map(|()| e));
    match result {
        Ok(exchange) => log(&peer, &exchange),
        Err(e) => eprintln!("repo serve: {peer}: {e}"),
    }
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

fn log(peer: &str, e: &Exchange) {
    if e.request.is_empty() && e.status == 0 {
        return; // the client closed without asking anything
    }
    eprintln!(
        "repo serve: {peer} \"{}\" {} {} bytes",
        e.request.escape_debug(),
        e.status,
        e.bytes
    );
}

/// Reads one request from `input` and answers it on `output`. A
/// connection closed before any byte gets no answer (status 0).
pub fn respond(
    dir: &Path,
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> io::Result<Exchange> {
    let head = match read_head(input)? {
        Head::Closed => {
            return Ok(Exchange {
                request: String::new(),
                status: 0,
                bytes: 0,
            });
        }
        Head::TooLong(line) => {
            return answer_error(output, line, 431, "the request head is too long", true);
        }
        Head::Bad(line) => return answer_error(output, line, 400, "a malformed request", true),
        Head::Request(line) => line,
    };
    let words: Vec<&str> = head.split(' ').collect();
    let [method, target, version] = words[..] else {
        return answer_error(output, head.clone(), 400, "a malformed request line", true);
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return answer_error(output, head.clone(), 400, "not HTTP/1.0 or HTTP/1.1", true);
    }
    let with_body = method != "HEAD";
    if !matches!(method, "GET" | "HEAD") {
        return answer_error(output, head.clone(), 405, "only GET and HEAD", true);
    }
    let names = match target_names(target) {
        Ok(n) => n,
        Err(why) => return answer_error(output, head.clone(), 400, why, with_body),
    };
    let Some(file) = open_file(dir, &names) else {
        return answer_error(output, head.clone(), 404, "no such file", with_body);
    };
    let (mut file, size) = file;
    let last = names.last().map(String::as_str).unwrap_or_default();
    write!(
        output,
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n",
        content_type(last)
    )?;
    let bytes = if with_body {
        io::copy(&mut (&mut file).take(size), output)?
    } else {
        0
    };
    Ok(Exchange {
        request: head,
        status: 200,
        bytes,
    })
}

enum Head {
    /// The request line (the headers are read and ignored).
    Request(String),
    Closed,
    TooLong(String),
    Bad(String),
}

/// Reads the request line and the headers up to the empty line.
fn read_head(input: &mut impl BufRead) -> io::Result<Head> {
    let mut limited = input.take(MAX_HEAD);
    let mut request: Option<String> = None;
    loop {
        let mut line = Vec::new();
        let n = limited.read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        if n == 0 || !line.ends_with(b"\n") {
            // End of input or of the allowance, in the middle of the head.
            return Ok(match (&request, limited.limit()) {
                (None, _) if n == 0 => Head::Closed,
                (_, 0) => Head::TooLong(request.unwrap_or(text)),
                _ => Head::Bad(request.unwrap_or(text)),
            });
        }
        match &request {
            None if text.is_empty() => continue, // a stray empty line before the request
            None => request = Some(text),
            Some(_) if text.is_empty() => break,
            Some(_) => {} // a header: nothing here depends on one
        }
    }
    Ok(Head::Request(request.unwrap_or_default()))
}

/// The one or two names a request target asks for, or why it is refused.
pub fn target_names(target: &str) -> Result<Vec<String>, &'static str> {
    // The absolute form (`http://host/path`), which clients may send.
    let path = match target.strip_prefix("http://") {
        Some(rest) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let Some(path) = path.strip_prefix('/') else {
        return Err("the target is not an absolute path");
    };
    let decoded = percent_decode(path).ok_or("a bad percent-escape")?;
    let names: Vec<String> = decoded.split('/').map(str::to_string).collect();
    for name in &names {
        let ok = !name.is_empty()
            && !name.starts_with('.')
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._+~:-".contains(&b));
        if !ok {
            return Err("not a plain file name (no `..`, hidden files or odd characters)");
        }
    }
    if names.len() > 2 {
        return Err("only files in the repository and one directory below are served");
    }
    Ok(names)
}

/// `%XX` decoded; `None` for a bad escape or a result that is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The regular file `dir/names…` and its size; `None` when it is missing
/// or anything on the way is a symlink or not what it should be.
fn open_file(dir: &Path, names: &[String]) -> Option<(fs::File, u64)> {
    let mut path = dir.to_path_buf();
    for (i, name) in names.iter().enumerate() {
        path.push(name);
        let meta = fs::symlink_metadata(&path).ok()?;
        let last = i + 1 == names.len();
        if (last && !meta.is_file()) || (!last && !meta.is_dir()) {
            return None;
        }
    }
    let file = fs::File::open(&path).ok()?;
    let meta = file.metadata().ok()?;
    meta.is_file().then_some((file, meta.len()))
}

fn content_type(name: &str) -> &'static str {
    if name.ends_with(".json") {
        "application/json"
    } else if name.ends_with(".sig") || name.ends_with(".pub") {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

fn answer_error(
    output: &mut impl Write,
    request: String,
    status: u16,
    why: &str,
    with_body: bool,
) -> io::Result<Exchange> {
    let body = format!("{status} {}: {why}\n", reason(status));
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    write!(
        output,
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         {allow}Connection: close\r\n\r\n",
        reason(status),
        body.len()
    )?;
    let mut bytes = 0;
    if with_body {
        output.write_all(body.as_bytes())?;
        bytes = body.len() as u64;
    }
    Ok(Exchange {
        request,
        status,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(dir: &Path, request: &str) -> (Exchange, String) {
        let mut out = Vec::new();
        let e = respond(dir, &mut io::Cursor::new(request.as_bytes()), &mut out).unwrap();
        (e, String::from_utf8_lossy(&out).into_owned())
    }

    #[test]
    fn targets() {
        for (t, names) in [
            ("/index.json", vec!["index.json"]),
            ("/a-1.0+b1.warp?x=1", vec!["a-1.0+b1.warp"]),
            ("/sub/x.warp", vec!["sub", "x.warp"]),
            ("/hello-1%3A2.warp", vec!["hello-1:2.warp"]),
            ("http://10.0.2.100/index.json", vec!["index.json"]),
        ] {
            assert_eq!(target_names(t).unwrap(), names, "{t}");
        }
        for t in [
            "/",
            "",
            "index.json",
            "/../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/.hidden",
            "/a/b/c",
            "/a//b",
            "/a\\..\\b",
            "/%zz",
            "/%",
            "/a%00b",
            "//etc/passwd",
        ] {
            assert!(target_names(t).is_err(), "{t:?} accepted");
        }
    }

    #[test]
    fn answers() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("index.json"), "{}\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", tmp.path().join("passwd")).unwrap();
        let (e, text) = ask(tmp.path(), "GET /index.json HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(e.status, 200);
        assert!(
            text.starts_with("HTTP/1.1 200 OK\r\n")
                && text.contains("Content-Length: 3\r\n")
                && text.contains("Connection: close\r\n")
                && text.ends_with("\r\n\r\n{}\n"),
            "{text}"
        );
        let (e, text) = ask(tmp.path(), "HEAD /index.json HTTP/1.0\r\n\r\n");
        assert_eq!((e.status, e.bytes), (200, 0));
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        assert_eq!(
            ask(tmp.path(), "GET /passwd HTTP/1.1\r\n\r\n").0.status,
            404
        );
        assert_eq!(ask(tmp.path(), "GET /nope HTTP/1.1\r\n\r\n").0.status, 404);
        assert_eq!(ask(tmp.path(), "GET /../x HTTP/1.1\r\n\r\n").0.status, 400);
        assert_eq!(
            ask(tmp.path(), "POST /index.json HTTP/1.1\r\n\r\n")
                .0
                .status,
            405
        );
        assert_eq!(ask(tmp.path(), "GET /index.json\r\n\r\n").0.status, 400);
        assert_eq!(
            ask(tmp.path(), "GET /index.json HTTP/2\r\n\r\n").0.status,
            400
        );
        assert_eq!(
            ask(tmp.path(), "GET /index.json HTTP/1.1\r\n").0.status,
            400
        );
        assert_eq!(ask(tmp.path(), "").0.status, 0);
        let long = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(10_000));
        assert_eq!(ask(tmp.path(), &long).0.status, 431);
    }
}
