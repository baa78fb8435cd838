//! warp's own small HTTP/1.1 client (GET only, no TLS) and `file://` reader.
//!
//! Why our own: it is about 40 KiB of static binary against 124 KiB for
//! minreq (research §4), and warp needs very little of HTTP — a GET, a
//! status line, `Content-Length` or `Transfer-Encoding: chunked`, and a hard
//! cap on the body. Redirects are not followed: the repository list holds
//! the final URL. Plain HTTP is safe for integrity because every byte warp
//! uses is pinned by the signed index (the index by its signature, archives
//! by their sha256 and size in it).
//!
//! Every error names the URL.
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long to wait for a connection, and for each read or write.
const TIMEOUT: Duration = Duration::from_secs(30);
/// One header line (status line, header, chunk size line).
const MAX_LINE: u64 = 8 << 10;
/// How many header lines (a guard against an endless header section).
const MAX_HEADERS: usize = 100;

/// A repository URL, or a file in one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Url {
    /// `http://host[:port]/path`.
    Http {
        /// A DNS name, an IPv4 address, or an IPv6 address without brackets.
        host: String,
        port: u16,
        /// Starts with `/`.
        path: String,
    },
    /// `file:///path`: a path on this machine (not under `--root`).
    File { path: String },
}

impl Url {
    /// Parses an `http://` or `file://` URL. The path may only hold
    /// characters that need no escaping (warp does not percent-encode).
    pub fn parse(s: &str) -> std::result::Result<Url, String> {
        if s.starts_with("https://") {
            return Err(format!(
                "`{s}`: HTTPS is not supported yet: warp trusts the signed index, so plain http is \
                 safe for integrity; use http:// or file://"
            ));
        }
        let path_ok = |p: &str| {
            p.starts_with('/')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-._~!$&'()*+,;=:@%".contains(&b))
        };
        if let Some(path) = s.strip_prefix("file://") {
            if !path_ok(path) {
                return Err(format!(
                    "`{s}`: a file URL is `file:///absolute/path` (letters, digits and `/-._~` only)"
                ));
            }
            return Ok(Url::File { path: path.into() });
        }
        let Some(rest) = s.strip_prefix("http://") else {
            return Err(format!(
                "`{s}`: not a repository URL (only http://host[:port]/path/ and file:///path/)"
            ));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if !path_ok(path) {
            return Err(format!(
                "`{s}`: the path `{path}` has characters warp does not send (no query, fragment, \
                 spaces or non-ASCII)"
            ));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let Some((host, after)) = v6.split_once(']') else {
                return Err(format!("`{s}`: an IPv6 address without its closing `]`"));
            };
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| {
                    format!("`{s}`: `{p}` after the IPv6 address, where `:port` was expected")
                })?),
            };
            if host.is_empty() || !host.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return Err(format!("`{s}`: `{host}` is not an IPv6 address"));
            }
            (host, port)
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            {
                return Err(format!(
                    "`{s}`: `{authority}` is not a host name or address (no user name or password)"
                ));
            }
            (host, port)
        };
        let port = match port {
            None => 80,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("`{s}`: `{p}` is not a port number"))?,
        };
        Ok(Url::Http {
            host: host.to_ascii_lowercase(),
            port,
            path: path.into(),
        })
    }

    /// The URL of `file` in the directory this URL names (a missing final
    /// `/` is added: `http://h/repo` and `http://h/repo/` are the same
    /// repository).
    pub fn join(&self, file: &str) -> Url {
        let join = |p: &str| {
            if p.ends_with('/') {
                format!("{p}{file}")
            } else {
                format!("{p}/{file}")
            }
        };
        match self {
            Url::Http { host, port, path } => Url::Http {
                host: host.clone(),
                port: *port,
                path: join(path),
            },
            Url::File { path } => Url::File { path: join(path) },
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Url::Http { host, port, path } => {
                if host.contains(':') {
                    write!(f, "http://[{host}]")?;
                } else {
                    write!(f, "http://{host}")?;
                }
                if *port != 80 {
                    write!(f, ":{port}")?;
                }
                f.write_str(path)
            }
            Url::File { path } => write!(f, "file://{path}"),
        }
    }
}

/// What a GET found.
pub enum Got {
    /// The body was passed to the sink; this many bytes.
    Body(u64),
    /// HTTP 404 or 410, or no such file: the caller says what was missing
    /// (a missing signature is an integrity error, a missing index a
    /// network one).
    NotFound,
}

/// GETs `url` and passes its body to `sink`, piece by piece. A body longer
/// than `cap` bytes is an integrity error (the signed index says how long
/// an archive is; an index has a maximum size): nothing past `cap + 1`
/// bytes is read. A status other than 200 (404 and 410 aside: [`Got::NotFound`])
/// is a network error naming the URL and the status.
pub fn get(url: &Url, cap: u64, sink: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<Got> {
    let (mut body, length): (Box<dyn Read>, Option<u64>) = match url {
        Url::File { path } => match std::fs::File::open(PathBuf::from(path)) {
            Ok(f) => {
                let len = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                (Box::new(f), len)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Got::NotFound),
            Err(e) => return Err(Error::network(format!("{url}: {e}"))),
        },
        Url::Http { host, port, path } => {
            let stream = connect(url, host, *port)?;
            match request(url, stream, host, *port, path)? {
                Response::Ok(body, length) => (body, length),
                Response::NotFound => return Ok(Got::NotFound),
            }
        }
    };
    if let Some(n) = length.filter(|&n| n > cap) {
        return Err(too_long(url, cap, Some(n)));
    }
    let mut buf = vec![0; 64 << 10];
    let mut total: u64 = 0;
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Error::network(format!(
                    "{url}: reading the body after {total} bytes: {e}"
                )));
            }
        };
        total += n as u64;
        if total > cap {
            return Err(too_long(url, cap, None));
        }
        sink(&buf[..n])?;
    }
    if let Some(want) = length.filter(|&want| want != total) {
        return Err(Error::network(format!(
            "{url}: the connection closed after {total} of {want} bytes"
        )));
    }
    Ok(Got::Body(total))
}

/// [`get`] into memory.
pub fn get_bytes(url: &Url, cap: u64) -> Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    match get(url, cap, &mut |piece| {
        out.extend_from_slice(piece);
        Ok(())
    })? {
        Got::Body(_) => Ok(Some(out)),
        Got::NotFound => Ok(None),
    }
}

fn too_long(url: &Url, cap: u64, announced: Option<u64>) -> Error {
    let what = match announced {
        Some(n) => format!("{n} bytes announced"),
        None => "the body goes on".into(),
    };
    Error::integrity(format!(
        "{url}: longer than the {cap} bytes expected ({what}); refused"
    ))
}

fn connect(url: &Url, host: &str, port: u16) -> Result<TcpStream> {
    let addrs = (host, port).to_socket_addrs().map_err(|e| {
        Error::network(format!(
            "cannot reach {url}: cannot resolve `{host}` ({e}) — no network, or no DNS server \
             in /etc/resolv.conf?"
        ))
    })?;
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, TIMEOUT) {
            Ok(s) => {
                let timeouts = s
                    .set_read_timeout(Some(TIMEOUT))
                    .and_then(|_| s.set_write_timeout(Some(TIMEOUT)));
                timeouts.map_err(|e| Error::network(format!("{url}: {e}")))?;
                return Ok(s);
            }
            Err(e) => last = Some(unreachable_reason(&addr, &e)),
        }
    }
    Err(Error::network(match last {
        Some(why) => format!("cannot reach {url}: {why}"),
        None => format!("cannot reach {url}: `{host}` has no address"),
    }))
}

/// Why a connection to `addr` failed, in words a user can act on: the
/// errno that means "no network here" says so, instead of only
/// `Network is unreachable (os error 101)`.
fn unreachable_reason(addr: &std::net::SocketAddr, e: &io::Error) -> String {
    const ENETUNREACH: i32 = 101;
    const EHOSTUNREACH: i32 = 113;
    const ECONNREFUSED: i32 = 111;
    let ip = addr.ip();
    match (e.raw_os_error(), e.kind()) {
        (Some(ENETUNREACH), _) => format!(
            "network unreachable — no network? (no route to {ip}: see `ip addr` and `ip route`)"
        ),
        (Some(EHOSTUNREACH), _) => {
            format!("host {ip} unreachable (nothing answers at that address on the network)")
        }
        (Some(ECONNREFUSED), _) => format!(
            "connection refused by {addr} (the host is up, but no server listens on port {})",
            addr.port()
        ),
        (_, io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock) => format!(
            "no answer from {addr} within {} s (a firewall, or the host is down)",
            TIMEOUT.as_secs()
        ),
        _ => format!("{addr}: {e}"),
    }
}

enum Response {
    Ok(Box<dyn Read>, Option<u64>),
    NotFound,
}

/// Sends the GET and reads the status line and headers; returns the body
/// as a reader that ends where the body ends.
fn request<S: Read + Write + 'static>(
    url: &Url,
    mut stream: S,
    host: &str,
    port: u16,
    path: &str,
) -> Result<Response> {
    let host_header = match (host.contains(':'), port) {
        (false, 80) => host.to_string(),
        (false, p) => format!("{host}:{p}"),
        (true, 80) => format!("[{host}]"),
        (true, p) => format!("[{host}]:{p}"),
    };
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: warp/{}\r\n\
         Accept-Encoding: identity\r\nConnection: close\r\n\r\n",
        env!("CARGO_PKG_VERSION")
    );
    let net = |e: io::Error| Error::network(format!("{url}: {e}"));
    stream.write_all(head.as_bytes()).map_err(net)?;
    stream.flush().map_err(net)?;
    let mut r = BufReader::new(stream);

    let status_line = read_line(url, &mut r)?;
    let (code, reason) = parse_status(&status_line)
        .ok_or_else(|| Error::network(format!("{url}: not an HTTP response: {status_line:?}")))?;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut location = String::new();
    for n in 0.. {
        let line = read_line(url, &mut r)?;
        if line.is_empty() {
            break;
        }
        if n == MAX_HEADERS {
            return Err(Error::network(format!(
                "{url}: more than {MAX_HEADERS} header lines"
            )));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Error::network(format!(
                "{url}: a header line without `:`: {line:?}"
            )));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| {
                Error::network(format!("{url}: Content-Length `{value}` is not a number"))
            })?;
            if length.is_some_and(|old| old != n) {
                return Err(Error::network(format!(
                    "{url}: two different Content-Length headers"
                )));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            if value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if !value.eq_ignore_ascii_case("identity") {
                return Err(Error::network(format!(
                    "{url}: Transfer-Encoding `{value}` (warp reads chunked only)"
                )));
            }
        } else if name.eq_ignore_ascii_case("location") {
            location = value.to_string();
        }
    }
    match code {
        200 => {}
        404 | 410 => return Ok(Response::NotFound),
        300..=399 => {
            return Err(Error::network(format!(
                "{url}: HTTP {code} {reason}, a redirect to `{location}`; warp does not follow \
                 redirects: put the final URL in the repository list"
            )));
        }
        _ => return Err(Error::network(format!("{url}: HTTP {code} {reason}"))),
    }
    // RFC 9112 §6.3: chunked wins over Content-Length.
    if chunked {
        return Ok(Response::Ok(
            Box::new(Chunked {
                inner: r,
                url: url.to_string(),
                left: 0,
                state: ChunkState::Size,
            }),
            None,
        ));
    }
    match length {
        Some(n) => Ok(Response::Ok(Box::new(r.take(n)), Some(n))),
        // Connection: close: the body ends when the server closes.
        None => Ok(Response::Ok(Box::new(r), None)),
    }
}

/// `HTTP/1.1 200 OK` → (200, "OK").
fn parse_status(line: &str) -> Option<(u16, &str)> {
    let rest = line
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| line.strip_prefix("HTTP/1.0 "))?;
    let (code, reason) = match rest.split_once(' ') {
        Some((c, r)) => (c, r),
        None => (rest, ""),
    };
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((code.parse().ok()?, reason.trim()))
}

/// One CRLF- (or LF-) terminated line, at most [`MAX_LINE`] bytes, without
/// its line end.
fn read_line<R: BufRead>(url: &Url, r: &mut R) -> Result<String> {
    let mut buf = Vec::new();
    let n = r
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .map_err(|e| Error::network(format!("{url}: {e}")))?;
    if n == 0 {
        return Err(Error::network(format!(
            "{url}: the server closed the connection before a complete response"
        )));
    }
    if buf.last() != Some(&b'\n') {
        return Err(Error::network(format!(
            "{url}: a header line longer than {MAX_LINE} bytes, or cut short"
        )));
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| Error::network(format!("{url}: a header that is not UTF-8")))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Next comes a chunk-size line.
    Size,
    /// Inside a chunk (`left` bytes to go).
    Data,
    /// The last chunk and the trailers were read.
    Done,
}

/// The body of a `Transfer-Encoding: chunked` response.
struct Chunked<R> {
    inner: R,
    url: String,
    left: u64,
    state: ChunkState,
}

impl<R: BufRead> Chunked<R> {
    fn line(&mut self) -> io::Result<String> {
        let mut buf = Vec::new();
        (&mut self.inner)
            .take(MAX_LINE)
            .read_until(b'\n', &mut buf)?;
        if buf.last() != Some(&b'\n') {
            return Err(self.bad("a chunk line cut short or too long"));
        }
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        String::from_utf8(buf).map_err(|_| self.bad("a chunk line that is not UTF-8"))
    }

    fn bad(&self, why: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: bad chunked encoding: {why}", self.url),
        )
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.state {
                ChunkState::Done => return Ok(0),
                ChunkState::Size => {
                    let line = self.line()?;
                    // Chunk extensions (`;name=value`) are allowed and ignored.
                    let hex = line.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(hex, 16)
                        .ok()
                        .filter(|_| !hex.is_empty() && hex.len() <= 16 && !hex.starts_with('+'))
                        .ok_or_else(|| self.bad(&format!("chunk size {hex:?}")))?;
                    if size == 0 {
                        // Trailers, up to the empty line that ends the message.
                        for _ in 0..=MAX_HEADERS {
                            if self.line()?.is_empty() {
                                self.state = ChunkState::Done;
                                return Ok(0);
                            }
                        }
                        return Err(self.bad("too many trailer lines"));
                    }
                    self.left = size;
                    self.state = ChunkState::Data;
                }
                ChunkState::Data => {
                    if buf.is_empty() {
                        return Ok(0);
                    }
                    let want = buf
                        .len()
                        .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                    let n = self.inner.read(&mut buf[..want])?;
                    if n == 0 {
                        return Err(self.bad("the connection closed inside a chunk"));
                    }
                    self.left -= n as u64;
                    if self.left == 0 {
                        if !self.line()?.is_empty() {
                            return Err(self.bad("no line end after a chunk"));
                        }
                        self.state = ChunkState::Size;
                    }
                    return Ok(n);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Code;
    use std::net::TcpListener;
    use std::thread;

    /// Serves `response` once on 127.0.0.1 and returns the URL of `path`
    /// and a handle giving the request head the client sent.
    fn serve(response: Vec<u8>, path: &str) -> (Url, thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let handle = thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                head.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            let _ = s.write_all(&response);
            head
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}{path}")).unwrap();
        (url, handle)
    }

    fn fetch(response: &[u8], cap: u64) -> (Result<Option<Vec<u8>>>, String) {
        let (url, h) = serve(response.to_vec(), "/repo/index.json");
        let got = get_bytes(&url, cap);
        (got, h.join().unwrap())
    }

    #[test]
    fn content_length_and_request() {
        let (got, head) = fetch(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Other: y\r\n\r\nhello",
            100,
        );
        assert_eq!(got.unwrap().unwrap(), b"hello");
        assert!(
            head.starts_with("GET /repo/index.json HTTP/1.1\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nHost: 127.0.0.1:"), "{head}");
        assert!(head.contains("\r\nConnection: close\r\n"), "{head}");
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let (got, _) = fetch(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n",
            100,
        );
        assert_eq!(got.unwrap().unwrap(), b"hello, world");
    }

    #[test]
    fn until_close_and_http10() {
        let (got, _) = fetch(b"HTTP/1.0 200 OK\r\n\r\nall of it", 100);
        assert_eq!(got.unwrap().unwrap(), b"all of it");
    }

    #[test]
    fn cap() {
        // Announced too long: refused before the body is read.
        let (got, _) = fetch(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world",
            10,
        );
        let e = got.unwrap_err();
        assert_eq!(e.code, Code::Integrity);
        assert!(
            e.msg.contains("/repo/index.json") && e.msg.contains("11 bytes"),
            "{}",
            e.msg
        );
        // Not announced: the body goes past the cap.
        let (got, _) = fetch(b"HTTP/1.1 200 OK\r\n\r\nhello world", 10);
        assert_eq!(got.unwrap_err().code, Code::Integrity);
        let (got, _) = fetch(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n",
            10,
        );
        assert_eq!(got.unwrap_err().code, Code::Integrity);
        // Exactly the cap is fine.
        let (got, _) = fetch(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhelloworld",
            10,
        );
        assert_eq!(got.unwrap().unwrap(), b"helloworld");
    }

    #[test]
    fn bad_responses() {
        let (got, _) = fetch(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 10);
        assert!(got.unwrap().is_none());
        for (response, what) in [
            (
                &b"HTTP/1.1 500 Internal Server Error\r\n\r\n"[..],
                "HTTP 500",
            ),
            (
                b"HTTP/1.1 301 Moved Permanently\r\nLocation: http://x/\r\n\r\n",
                "does not follow redirects",
            ),
            (b"SSH-2.0-OpenSSH\r\n", "not an HTTP response"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
                "closed after 5 of 9",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
                "not a number",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nshort",
                "inside a chunk",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                "gzip",
            ),
            (b"", "closed the connection"),
        ] {
            let (got, _) = fetch(response, 100);
            let e = got.expect_err(what);
            assert_eq!(e.code, Code::Network, "{what}: {}", e.msg);
            assert!(e.msg.contains("/repo/index.json"), "{}", e.msg);
            assert!(e.msg.contains(what), "{what}: {}", e.msg);
        }
    }

    #[test]
    fn refused_connection_names_the_url() {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let url = Url::parse(&format!("http://127.0.0.1:{port}/r/")).unwrap();
        let e = get_bytes(&url.join("index.json"), 10).unwrap_err();
        assert_eq!(e.code, Code::Network);
        assert_eq!(
            e.msg,
            format!(
                "cannot reach http://127.0.0.1:{port}/r/index.json: connection refused by \
                 127.0.0.1:{port} (the host is up, but no server listens on port {port})"
            )
        );
    }

    #[test]
    fn unreachable_reasons_say_what_to_check() {
        let addr: std::net::SocketAddr = "10.0.2.100:80".parse().unwrap();
        let reason = |errno| unreachable_reason(&addr, &io::Error::from_raw_os_error(errno));
        assert_eq!(
            reason(101),
            "network unreachable — no network? (no route to 10.0.2.100: see `ip addr` and `ip \
             route`)"
        );
        assert!(reason(113).starts_with("host 10.0.2.100 unreachable"));
        assert!(reason(110).starts_with("no answer from 10.0.2.100:80 within 30 s"));
        assert!(reason(13).starts_with("10.0.2.100:80: "), "{}", reason(13));
    }

    #[test]
    fn files() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("index.json"), "hello").unwrap();
        let base = Url::parse(&format!("file://{}/", d.path().display())).unwrap();
        assert_eq!(
            get_bytes(&base.join("index.json"), 5).unwrap().unwrap(),
            b"hello"
        );
        assert_eq!(
            get_bytes(&base.join("index.json"), 4).unwrap_err().code,
            Code::Integrity
        );
        assert!(get_bytes(&base.join("nothing"), 4).unwrap().is_none());
    }

    #[test]
    fn urls() {
        let u = Url::parse("http://Example.org:8080/k1os/repo").unwrap();
        assert_eq!(
            u,
            Url::Http {
                host: "example.org".into(),
                port: 8080,
                path: "/k1os/repo".into()
            }
        );
        assert_eq!(
            u.join("index.json").to_string(),
            "http://example.org:8080/k1os/repo/index.json"
        );
        let u = Url::parse("http://10.0.2.100").unwrap();
        assert_eq!(u.join("a.warp").to_string(), "http://10.0.2.100/a.warp");
        let u = Url::parse("http://[::1]:81/r/").unwrap();
        assert_eq!(u.join("x").to_string(), "http://[::1]:81/r/x");
        assert_eq!(
            Url::parse("file:///run/k1os/media/repo/")
                .unwrap()
                .join("index.json"),
            Url::File {
                path: "/run/k1os/media/repo/index.json".into()
            }
        );
        let e = Url::parse("https://example.org/").unwrap_err();
        assert!(e.contains("HTTPS is not supported yet"), "{e}");
        for bad in [
            "ftp://x/",
            "http://",
            "http://user@host/",
            "http://host:0/",
            "http://host:99999/",
            "http://host/a b",
            "http://host/?q=1",
            "http://host/#f",
            "file://relative",
            "http://[::1/",
            "example.org/repo",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("HTTP/1.1 200 OK"), Some((200, "OK")));
        assert_eq!(parse_status("HTTP/1.0 404"), Some((404, "")));
        assert_eq!(parse_status("HTTP/2 200 OK"), None);
        assert_eq!(parse_status("HTTP/1.1 20 OK"), None);
    }
}
