//! Each ActiveSync request is traced in a span of its own. A request's
//! span once stayed entered on its worker thread while the request waited
//! (a guard held across an await), so every request served on that thread
//! meanwhile opened its span inside it: under the load generator's 1,000
//! phones the chain grew with each request, each log line carried the
//! whole chain, and the process overflowed its stack. Here one request
//! waits for its body while another is served on the same thread (a
//! current-thread runtime, so every task shares the one the watcher sees).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pushmail_integration_tests::activesync::{Front, basic, phone, post, provision_request};
use pushmail_integration_tests::nodes::BindingNode;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracing::span::{Attributes, Id};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

/// Counts request spans, and those opened inside another request's.
#[derive(Clone, Default)]
struct Watch {
    requests: Arc<AtomicUsize>,
    nested: Arc<AtomicUsize>,
}

impl<S> Layer<S> for Watch
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != "activesync" {
            return;
        }
        self.requests.fetch_add(1, Ordering::SeqCst);
        let inside = ctx
            .span(id)
            .is_some_and(|span| span.scope().skip(1).any(|s| s.name() == "activesync"));
        if inside {
            self.nested.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn a_waiting_request_does_not_hold_the_next_ones_span() {
    let watch = Watch::default();
    let _default =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(watch.clone()));
    let mut binding = BindingNode::start().await.unwrap();
    let phone = phone(&mut binding).await;
    let front = Front::start(binding.addr, None).await;
    let auth = basic(&phone.address, &phone.password);
    let query = format!(
        "Cmd=Provision&User={}&DeviceId=spanphone01&DeviceType=iPhone",
        phone.address
    );

    // The first request: its headers now, its body later, so it waits
    // inside its span.
    let body = provision_request(None);
    let mut slow = tokio::net::TcpStream::connect(front.addr).await.unwrap();
    let head = format!(
        "POST /Microsoft-Server-ActiveSync?{query} HTTP/1.1\r\nHost: eas\r\n\
         Authorization: {auth}\r\nMS-ASProtocolVersion: 16.1\r\n\
         Content-Type: application/vnd.ms-sync.wbxml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body[..1]).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while watch.requests.load(Ordering::SeqCst) == 0 {
        assert!(std::time::Instant::now() < deadline, "never logged in");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // Two more served meanwhile, then the first one finished.
    for _ in 0..2 {
        let answer = post(front.addr, &query, &auth, None, &body).await;
        assert_eq!(answer.status, 200);
    }
    slow.write_all(&body[1..]).await.unwrap();
    let mut answer = Vec::new();
    slow.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");

    assert_eq!(watch.requests.load(Ordering::SeqCst), 3);
    assert_eq!(
        watch.nested.load(Ordering::SeqCst),
        0,
        "a request's span opened inside another's"
    );
    front.stop().await;
    binding.stop().await.unwrap();
}
