//! The session's own WebSocket framing against a real client (tungstenite)
//! and against hand-made bytes: the handshake, frames split or pipelined,
//! control frames, fragments, and the close codes of RFC 6455.

use futures::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};

use super::*;

/// RFC 6455's example key and the accept it must get.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A device speaking raw bytes: the handshake written by hand, frames
/// built here, so the server sees exactly what a test means.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// A masked client frame (`first` is FIN, RSV and opcode).
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0xA1, 0x07, 0x5C, 0xE3];
    let mut out = vec![first];
    if payload.len() < 126 {
        out.push(0x80 | payload.len() as u8);
    } else {
        out.push(0x80 | 126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, k)| b ^ k));
    out
}

fn text(payload: &str) -> Vec<u8> {
    masked(0x81, payload.as_bytes())
}

const HELLO: &str = r#"{"t":"hello","last_ack":0,"hb":60,"net":"46000-lte"}"#;
const HB: &str = r#"{"t":"hb"}"#;

/// The status line and headers of the answer to a raw request.
async fn http(node: &SessionNode, request: &[u8]) -> (Raw, String) {
    let mut raw = Raw {
        stream: TcpStream::connect(node.devices).await.unwrap(),
        buf: Vec::new(),
    };
    raw.stream.write_all(request).await.unwrap();
    let end = loop {
        if let Some(end) = raw.buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        assert!(raw.fill().await, "the server closed during the handshake");
    };
    let head = String::from_utf8(raw.buf.drain(..end).collect()).unwrap();
    (raw, head)
}

fn upgrade_request(token: &str, version: &str, key: &str) -> String {
    format!(
        "GET /v1/connect HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: {version}\r\nSec-WebSocket-Key: {key}\r\n\
         Authorization: Bearer {token}\r\n\r\n"
    )
}

impl Raw {
    /// Upgrades, with `first` written in the same write as the request.
    async fn open(node: &SessionNode, device: &Device, first: &[u8]) -> Self {
        let mut request = upgrade_request(&device.token, "13", KEY).into_bytes();
        request.extend_from_slice(first);
        let (raw, head) = http(node, &request).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(head.contains(ACCEPT), "{head}");
        raw
    }

    /// Upgraded and said hello (pipelined behind the handshake).
    async fn hello(node: &SessionNode) -> Self {
        let mut raw = Self::open(node, &Device::new(), &text(HELLO)).await;
        let (opcode, welcome) = raw.frame().await.expect("welcome");
        assert_eq!(opcode, 0x81);
        assert!(welcome.starts_with(br#"{"t":"welcome""#));
        raw
    }

    /// Reads more; false at the end of the stream.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0; 4_096];
        let read = tokio::time::timeout(Duration::from_secs(15), self.stream.read(&mut chunk))
            .await
            .expect("bytes within 15 s");
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Whether the stream ends with the server's FIN rather than a reset
    /// (nothing may come after the close frame).
    async fn ends_cleanly(&mut self) -> bool {
        assert!(self.buf.is_empty(), "bytes after the close frame");
        let mut chunk = [0; 64];
        let read = tokio::time::timeout(Duration::from_secs(15), self.stream.read(&mut chunk));
        match read.await.expect("the end within 15 s") {
            Ok(0) => true,
            Ok(n) => panic!("{n} bytes after the close frame"),
            Err(_) => false,
        }
    }

    /// The next server frame (first byte and payload), `None` at the end.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if self.buf.len() >= 2 {
                assert_eq!(self.buf[1] & 0x80, 0, "server frames are not masked");
                let (len, at) = match self.buf[1] {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    126 => (usize::MAX, 4),
                    len => (usize::from(len), 2),
                };
                if len != usize::MAX && self.buf.len() >= at + len {
                    let first = self.buf[0];
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return Some((first, payload));
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }
}

#[tokio::test]
async fn frames_pipelined_split_or_packed_together_are_all_read() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    // The hello arrived with the handshake: hyper hands those bytes over.
    let mut raw = Raw::hello(&node).await;
    // A heartbeat a byte at a time.
    for byte in text(HB) {
        raw.send(&[byte]).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(raw.frame().await, Some((0x81, HB.as_bytes().to_vec())));
    // Three frames in one write: three answers.
    raw.send(&[text(HB), text(HB), masked(0x89, b"ping")].concat())
        .await;
    assert_eq!(raw.frame().await, Some((0x81, HB.as_bytes().to_vec())));
    assert_eq!(raw.frame().await, Some((0x81, HB.as_bytes().to_vec())));
    assert_eq!(raw.frame().await, Some((0x8A, b"ping".to_vec())), "pong");
    // A fragmented heartbeat with a ping between its fragments.
    raw.send(
        &[
            masked(0x01, br#"{"t""#),
            masked(0x89, b"mid"),
            masked(0x80, br#":"hb"}"#),
        ]
        .concat(),
    )
    .await;
    assert_eq!(raw.frame().await, Some((0x8A, b"mid".to_vec())));
    assert_eq!(raw.frame().await, Some((0x81, HB.as_bytes().to_vec())));
    // The device closes: the server echoes its code and ends the stream.
    raw.send(&masked(0x88, &4000u16.to_be_bytes())).await;
    assert_eq!(
        raw.frame().await,
        Some((0x88, 4000u16.to_be_bytes().to_vec()))
    );
    assert_eq!(raw.frame().await, None);
    node.stop().await;
}

#[tokio::test]
async fn broken_frames_get_an_error_and_the_rfc_close_code() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let mut unmasked = vec![0x81, HB.len() as u8];
    unmasked.extend_from_slice(HB.as_bytes());
    // Only the header of an oversized frame: refused before its payload.
    let oversized = masked(0x81, &[b' '; 2_000])[..8].to_vec();
    let cases = [
        ("unmasked", unmasked, "malformed", 1002u16),
        (
            "reserved bit",
            masked(0xC1, HB.as_bytes()),
            "malformed",
            1002,
        ),
        ("unknown opcode", masked(0x83, b"x"), "malformed", 1002),
        ("fragmented ping", masked(0x09, b"x"), "malformed", 1002),
        ("continuation first", masked(0x80, b"x"), "malformed", 1002),
        ("not UTF-8", masked(0x81, &[0xC3, 0x28]), "malformed", 1007),
        (
            "bad close code",
            masked(0x88, &1005u16.to_be_bytes()),
            "malformed",
            1002,
        ),
        ("oversized", oversized, "too_large", 1009),
        // The whole of it: the server reads off the rest before it closes,
        // else the unread bytes would reset the connection, and a reset
        // may take the error and close with it (Linux keeps what was
        // queued; other stacks and a lossy path need not).
        (
            "oversized, payload and all",
            masked(0x81, &[b' '; 60_000]),
            "too_large",
            1009,
        ),
    ];
    for (what, bytes, code, status) in cases {
        let mut raw = Raw::hello(&node).await;
        raw.send(&bytes).await;
        let (opcode, error) = raw
            .frame()
            .await
            .unwrap_or_else(|| panic!("{what}: closed"));
        assert_eq!(opcode, 0x81, "{what}");
        let error: Value = serde_json::from_slice(&error).unwrap();
        assert_eq!(
            (error["t"].as_str(), error["code"].as_str()),
            (Some("error"), Some(code)),
            "{what}: {error}"
        );
        let (opcode, close) = raw
            .frame()
            .await
            .unwrap_or_else(|| panic!("{what}: no close"));
        assert_eq!(opcode, 0x88, "{what}");
        assert_eq!(close[..2], status.to_be_bytes(), "{what}");
        // The device answers the close, as RFC 6455 asks: a server that
        // had reset the connection would refuse it (the pause lets a reset
        // arrive; a server that lingers takes the answer whenever it comes).
        tokio::time::sleep(Duration::from_millis(200)).await;
        raw.stream
            .write_all(&masked(0x88, &status.to_be_bytes()))
            .await
            .unwrap_or_else(|e| panic!("{what}: the device's close refused: {e}"));
        assert!(raw.ends_cleanly().await, "{what}: a FIN, not a reset");
    }
    node.stop().await;
}

/// The next message of any kind.
async fn message(ws: &mut Ws) -> Message {
    let next = tokio::time::timeout(Duration::from_secs(15), ws.next());
    next.await
        .expect("a message within 15 s")
        .expect("open")
        .expect("read")
}

#[tokio::test]
async fn a_websocket_client_gets_pongs_fragments_and_a_clean_close() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let (mut ws, _) = hello(&node, &Device::new(), 0, 60).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = message(&mut ws).await;
    assert_eq!(pong, Message::Pong(b"are you there".to_vec().into()));
    // The client library masks and fragments as it sees fit; here, in two.
    ws.send(Message::Frame(Frame::message(
        br#"{"t":"#.to_vec(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await
    .unwrap();
    ws.send(Message::Frame(Frame::message(
        br#""hb"}"#.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await.unwrap()["t"], "hb");
    ws.close(Some(CloseFrame {
        code: CloseCode::Normal,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let echoed = message(&mut ws).await;
    match echoed {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected the close echoed, got {other:?}"),
    }
    node.stop().await;
}

#[tokio::test]
async fn requests_that_are_no_websocket_handshake_are_refused() {
    let redis = pushmail_integration_tests::redis_config();
    let node = SessionNode::start(config(&redis)).await;
    let device = Device::new();
    let (_, head) = http(
        &node,
        &format!(
            "GET /v1/connect HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            device.token
        )
        .into_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    let (_, head) = http(&node, upgrade_request(&device.token, "8", KEY).as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 426"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-version: 13"),
        "{head}"
    );
    let (_, head) = http(
        &node,
        upgrade_request(&device.token, "13", "c2hvcnQ=").as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    // A valid handshake with a bad token: 401, no upgrade.
    let (_, head) = http(&node, upgrade_request("pmd1.nope", "13", KEY).as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    node.stop().await;
}
