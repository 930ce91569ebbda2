//! Every listener is bounded: request heads dribbled a line at a time are
//! cut off at the head deadline, a connection flood from one address is
//! refused past its per-address cap while another address is served, a
//! body larger than the limit is refused before authentication, a flood
//! of made-up API keys resets no real key's rate, hostile `Range` headers
//! are answered 416 (never a cut connection), and SMTP/LMTP bound idle
//! connections and endless lines. The platform runs with the bounds of
//! `platform::tight` (short deadlines, small caps).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use pushmail_integration_tests::platform::tight;
use pushmail_integration_tests::unique;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

use crate::Target;

/// Where attacks come from; the honest relay and other peers use others.
const ATTACKER: [u8; 4] = [127, 0, 0, 1];
const OTHER: [u8; 4] = [127, 0, 0, 2];

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: [u8; 4], to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::from(from), 0))?;
    socket.connect(to).await
}

/// What the server sends until it closes, or `None` if it is still open
/// after `wait`. A reset counts as closed.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status of the answer to `request` (a whole raw HTTP request) sent
/// from `from`.
async fn status_from(from: [u8; 4], to: SocketAddr, request: &str) -> u16 {
    let mut stream = connect_from(from, to).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let got = closed_within(&mut stream, Duration::from_secs(10))
        .await
        .expect("answered and closed");
    status(&got)
}

fn status(answer: &[u8]) -> u16 {
    String::from_utf8_lossy(answer)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

fn get(path: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: pushmail\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request + "\r\n"
}

fn http_ports(target: &Target) -> [(&'static str, SocketAddr); 3] {
    [
        ("gateway", target.platform.gateway_http),
        ("webhook", target.platform.webhook),
        ("session", target.platform.devices),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_dribbled_a_line_at_a_time_are_cut_off_on_every_http_port() {
    let mut target = Target::start_tight().await;
    let deadline = Duration::from_secs(tight::HEADER_SECONDS);
    let mut slow = Vec::new();
    for (name, port) in http_ports(&target) {
        for _ in 0..20 {
            let stream = connect_from(ATTACKER, port).await.unwrap();
            slow.push((name, stream));
        }
    }
    let started = Instant::now();
    let dribblers = slow.into_iter().map(|(name, mut stream)| async move {
        let _ = stream.write_all(b"GET / HTTP/1.1\r\n").await;
        // A header line every 300 ms, each in time, never the end.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if stream.write_all(b"X-Slow: 1\r\n").await.is_err() {
                break;
            }
            if let Some(answer) = closed_within(&mut stream, Duration::from_millis(1)).await {
                return (name, started.elapsed(), answer);
            }
        }
        let answer = closed_within(&mut stream, Duration::from_secs(5)).await;
        (name, started.elapsed(), answer.expect("never closed"))
    });
    for (name, after, answer) in futures::future::join_all(dribblers).await {
        assert!(
            after < deadline + Duration::from_secs(2),
            "{name}: a dribbled head was read for {after:?} (deadline {deadline:?})"
        );
        // hyper closes without an answer, or with a 408.
        assert!(
            answer.is_empty() || status(&answer) == 408,
            "{name}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    target.still_serves().await;
    target.stop().await;
}

/// Opens `count` connections from the attacker to `port` at once and
/// sorts them by what happened within a moment: closed (with what they
/// were told), or still open (what they were sent so far is dropped).
async fn flood(port: SocketAddr, count: usize) -> (Vec<TcpStream>, Vec<Vec<u8>>) {
    let mut sockets = Vec::new();
    for _ in 0..count {
        sockets.push(connect_from(ATTACKER, port).await.unwrap());
    }
    let outcomes = futures::future::join_all(sockets.into_iter().map(|mut stream| async move {
        let closed = closed_within(&mut stream, Duration::from_millis(500)).await;
        (stream, closed)
    }))
    .await;
    let mut open = Vec::new();
    let mut closed = Vec::new();
    for (stream, outcome) in outcomes {
        match outcome {
            Some(told) => closed.push(told),
            None => open.push(stream),
        }
    }
    (open, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_one_address_is_capped_and_others_are_served() {
    let mut target = Target::start_tight().await;
    const SOCKETS: usize = 300;

    for (name, port) in http_ports(&target) {
        let (open, closed) = flood(port, SOCKETS).await;
        let refused = closed.iter().filter(|told| status(told) == 429).count();
        assert!(
            SOCKETS - refused <= tight::HTTP_PER_PEER,
            "{name}: {} connections held from one address ({} open)",
            SOCKETS - refused,
            open.len()
        );
        // Another address is served while the flood holds its sockets.
        let answer = status_from(OTHER, port, &get("/nothing-here", &[])).await;
        assert!(
            (200..600).contains(&answer) && answer != 429 && answer != 503,
            "{name}: another address got {answer}"
        );
        drop(open);
    }

    for (name, port) in [
        ("smtp", target.platform.smtp),
        ("lmtp", target.platform.lmtp),
    ] {
        let (open, closed) = flood(port, 100).await;
        // The admitted ones have their greeting; the others a 421 and EOF.
        let refused = closed
            .iter()
            .filter(|told| told.starts_with(b"421 4.7.0"))
            .count();
        assert!(
            100 - refused <= tight::SMTP_PER_PEER,
            "{name}: {refused} refused"
        );
        let (conversation, greeting) =
            pushmail_integration_tests::smtp::Conversation::open(port, Some(IpAddr::from(OTHER)))
                .await
                .unwrap();
        assert_eq!(greeting.0, 220, "{name}: {greeting:?}");
        drop(conversation);
        drop(open);
    }

    // gRPC: connections past the cap are closed before any HTTP/2.
    for (name, port) in [
        ("binding", target.platform.grpc.binding),
        ("session", target.platform.grpc.session),
    ] {
        let (open, closed) = flood(port, SOCKETS).await;
        assert!(open.len() <= tight::GRPC_PER_PEER, "{name}: {}", open.len());
        assert!(closed.len() >= SOCKETS - tight::GRPC_PER_PEER, "{name}");
        drop(open);
    }

    // The flood's sockets closed, everything works as before.
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_before_authentication() {
    let mut target = Target::start_tight().await;
    let tenant = target.tenant.tenant_id.clone();
    let cases = [
        (
            "gateway",
            target.platform.gateway_http,
            format!("POST /api/v1/tenants/{tenant}/accounts HTTP/1.1"),
            "Authorization: Bearer pmk_made_up\r\n",
        ),
        (
            "gateway",
            target.platform.gateway_http,
            "POST /api/v1/session HTTP/1.1".to_owned(),
            "",
        ),
        (
            "webhook",
            target.platform.webhook,
            "POST /v1/webhook/dovecot HTTP/1.1".to_owned(),
            "Authorization: Basic dDprZXk=\r\n",
        ),
        (
            "session",
            target.platform.devices,
            "POST /v1/ping HTTP/1.1".to_owned(),
            "",
        ),
    ];
    for (name, port, line, auth) in cases {
        // 100 MB declared, none sent: the answer must not wait for it.
        let request = format!(
            "{line}\r\nHost: pushmail\r\n{auth}Content-Type: application/json\r\n\
             Content-Length: 100000000\r\nConnection: close\r\n\r\n{{"
        );
        let started = Instant::now();
        let answer = status_from(ATTACKER, port, &request).await;
        assert_eq!(answer, 413, "{name} {line}");
        assert!(started.elapsed() < Duration::from_secs(2), "{name}");
    }
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_made_up_api_keys_resets_no_real_key() {
    let mut target = Target::start_tight().await;
    let gateway = target.platform.gateway_http;
    let real = format!("Bearer {}", target.tenant.api_key);
    let me = get("/api/v1/me", &[("Authorization", &real)]);

    // The real key spends its burst.
    let mut answers = Vec::new();
    for _ in 0..tight::API_BURST + 1 {
        answers.push(status_from(OTHER, gateway, &me).await);
    }
    let spent = Instant::now();
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        tight::API_BURST as usize
    );
    assert_eq!(answers.last(), Some(&429));

    // Made-up keys from ten addresses at once, far more than the gateway
    // tracks: each address gets its few new keys checked, then 429.
    let flood = (0..10u8).flat_map(|peer| {
        (0..40).map(move |i| async move {
            let key = format!("Bearer pmk_{}", unique(&format!("bogus{peer}-{i}")));
            status_from(
                [127, 0, 1, peer + 1],
                gateway,
                &get("/api/v1/me", &[("Authorization", &key)]),
            )
            .await
        })
    });
    let statuses = futures::future::join_all(flood).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + limited, statuses.len(), "{statuses:?}");
    assert!(
        checked <= 10 * (tight::NEW_CREDENTIALS_BURST as usize + 2),
        "{checked} made-up keys were passed on to binding"
    );
    assert!(limited >= 100, "{limited}");

    // The real key's state survived: no fresh burst (the old limiter
    // cleared its table, and every key's state with it, once it held
    // `TRACKED_CREDENTIALS`).
    let mut again = Vec::new();
    for _ in 0..tight::API_BURST {
        again.push(status_from(OTHER, gateway, &me).await);
    }
    let refilled = spent.elapsed().as_secs() as usize + 1;
    let served = again.iter().filter(|s| **s == 200).count();
    assert!(
        served <= refilled && served < tight::API_BURST as usize,
        "the real key got {served} of {again:?} {:?} after it was spent",
        spent.elapsed()
    );
    // And it works again at its rate.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(status_from(OTHER, gateway, &me).await, 200);
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_range_headers_are_416_or_clamped_never_a_cut_connection() {
    let mut target = Target::start_tight().await;
    let attachment = vec![b'a'; 10_000];
    let url = target.attachment_url("report.bin", &attachment).await;
    let (host, path) = split_url(&url);
    let auth = format!("Bearer {}", target.device.device_token);
    let fetch = |range: &str| {
        let request = get(&path, &[("Authorization", &auth), ("Range", range)]);
        let range = range.to_owned();
        async move {
            let mut stream = TcpStream::connect(host).await.unwrap();
            stream.write_all(request.as_bytes()).await.unwrap();
            let got = closed_within(&mut stream, Duration::from_secs(20))
                .await
                .expect("answered");
            let text = String::from_utf8_lossy(&got).into_owned();
            let head_end = text.find("\r\n\r\n").unwrap_or_else(|| {
                panic!("{range}: the connection was cut without an answer: {text:?}")
            });
            (
                status(&got),
                text[..head_end].to_ascii_lowercase(),
                got.len() - head_end - 4,
            )
        }
    };
    let max = u64::MAX;
    for (range, want, length) in [
        (format!("bytes=0-{max}"), 206, Some(10_000)),
        (
            "bytes=0-99999999999999999999999999".to_owned(),
            206,
            Some(10_000),
        ),
        (format!("bytes=9990-{max}"), 206, Some(10)),
        (format!("bytes=-{max}"), 206, Some(10_000)),
        ("bytes=-10".to_owned(), 206, Some(10)),
        (format!("bytes={max}-"), 416, None),
        (format!("bytes={max}-{max}"), 416, None),
        ("bytes=10000-".to_owned(), 416, None),
        ("bytes=5-1".to_owned(), 416, None),
        ("bytes=-0".to_owned(), 416, None),
        ("bytes=--1".to_owned(), 416, None),
        ("bytes=1-2-3".to_owned(), 416, None),
        ("bytes=0-0,-1".to_owned(), 200, Some(10_000)),
        ("pages=1-2".to_owned(), 200, Some(10_000)),
    ] {
        let (got, head, body) = fetch(&range).await;
        assert_eq!(got, want, "{range}: {head}");
        if let Some(length) = length {
            assert_eq!(body, length, "{range}: {head}");
        } else {
            assert!(
                head.contains("content-range: bytes */10000"),
                "{range}: {head}"
            );
        }
    }
    target.still_serves().await;
    target.stop().await;
}

fn split_url(url: &str) -> (SocketAddr, String) {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (host, path) = rest.split_once('/').expect("a path");
    (host.parse().expect("host:port"), format!("/{path}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_bounds_idle_connections_and_endless_lines() {
    let mut target = Target::start_tight().await;
    for port in [target.platform.smtp, target.platform.lmtp] {
        // Idle after the greeting: told and closed at the command deadline.
        let started = Instant::now();
        let mut idle = connect_from(OTHER, port).await.unwrap();
        let told = closed_within(
            &mut idle,
            Duration::from_secs(tight::SMTP_TIMEOUT_SECONDS + 5),
        )
        .await
        .expect("an idle connection is closed");
        let told = String::from_utf8_lossy(&told);
        assert!(told.contains("421 4.4.2"), "{told}");
        assert!(started.elapsed() >= Duration::from_secs(tight::SMTP_TIMEOUT_SECONDS - 1));

        // An endless line: read up to a bound, then answered and closed.
        let mut endless = connect_from(ATTACKER, port).await.unwrap();
        let chunk = vec![b'x'; 16 * 1024];
        let mut sent = 0usize;
        let mut closed = false;
        while sent < 64 * 1024 * 1024 {
            if endless.write_all(&chunk).await.is_err() {
                closed = true;
                break;
            }
            sent += chunk.len();
            if sent.is_multiple_of(1024 * 1024)
                && closed_within(&mut endless, Duration::from_millis(1))
                    .await
                    .is_some()
            {
                closed = true;
                break;
            }
        }
        assert!(closed, "{sent} bytes of one line were read");
        assert!(
            sent < 32 * 1024 * 1024,
            "{sent} bytes of one line were read"
        );
    }
    target.still_serves().await;
    target.stop().await;
}
