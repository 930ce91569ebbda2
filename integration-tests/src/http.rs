//! A small HTTP/1.1 client over raw TCP, binary-safe, that can also cut a
//! download off mid-body the way a phone losing its signal does.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// A response, or as much of one as was read.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<TcpStream> {
    let mut stream = TcpStream::connect(addr).await?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || !matches!(method, "GET" | "HEAD") {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    // The server may answer (413) and close before reading a large body.
    let _ = stream.write_all(body).await;
    Ok(stream)
}

fn parse(raw: &[u8]) -> std::io::Result<(Response, usize)> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no complete response head"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head}")))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok((
        Response {
            status,
            headers,
            body: Vec::new(),
        },
        end + 4,
    ))
}

/// One request; the whole response (the server closes the connection).
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    call(addr, method, path, headers, b"").await
}

/// One request with a body; the whole response.
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = send(addr, method, path, headers, body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let (mut response, start) = parse(&raw)?;
    response.body = raw[start..].to_vec();
    if response.header("transfer-encoding") == Some("chunked") {
        response.body = dechunk(&response.body)?;
    }
    Ok(response)
}

/// `GET path`.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    request(addr, "GET", path, headers).await
}

/// `GET path`, reading the head and then at least `keep` body bytes before
/// dropping the connection; returns what was read of the body.
pub async fn get_cut(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    keep: usize,
) -> std::io::Result<Response> {
    let mut stream = send(addr, "GET", path, headers, b"").await?;
    let mut raw = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::other("the server closed before the cut"));
        }
        raw.extend_from_slice(&buf[..n]);
        if let Ok((mut response, start)) = parse(&raw)
            && raw.len() - start >= keep
        {
            response.body = raw[start..].to_vec();
            return Ok(response);
        }
    }
}

fn dechunk(mut body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| std::io::Error::other("truncated chunk size"))?;
        let size = usize::from_str_radix(String::from_utf8_lossy(&body[..line_end]).trim(), 16)
            .map_err(std::io::Error::other)?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size + 2 {
            return Err(std::io::Error::other("truncated chunk"));
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}
