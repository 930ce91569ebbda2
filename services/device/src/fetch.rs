//! Fetching what a notification points at from the gateway (the message's
//! summary and an attachment's preview) and the mailbox API's calls, with
//! the device token.
//! Plain HTTP only (the demo and tests talk to a local gateway; a phone
//! on the internet reaches it through TLS at the ingress).

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A fetched body.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

/// Sends `request` and reads the whole answer.
async fn send(request: http::Request<Full<Bytes>>) -> anyhow::Result<Fetched> {
    // A client per request: a pooled one outlives the runtime that spawned
    // its connections, which breaks callers that run several runtimes.
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = client.request(request).await?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.into_body().collect().await?.to_bytes();
    Ok(Fetched {
        status,
        content_type,
        body,
    })
}

/// GETs `url` with the device token.
pub async fn get(url: &str, token: &str) -> anyhow::Result<Fetched> {
    let request = http::Request::get(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Full::default())?;
    send(request).await
}

/// POSTs JSON `body` to `url` with the device token; the answer within `wait`.
pub async fn post_json(
    url: &str,
    token: &str,
    body: &serde_json::Value,
    wait: std::time::Duration,
) -> anyhow::Result<Fetched> {
    let request = http::Request::post(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    tokio::time::timeout(wait, send(request))
        .await
        .map_err(|_| TimedOut)?
}

/// No answer within the wait.
#[derive(Debug, thiserror::Error)]
#[error("no answer in time")]
pub struct TimedOut;

/// PATCHes `data` to an upload at `url` as the chunk starting at `offset`
/// (`Upload-Offset`, `docs/device-protocol.md` "Mailbox").
pub async fn patch_chunk(
    url: &str,
    token: &str,
    offset: u64,
    data: Bytes,
) -> anyhow::Result<Fetched> {
    let request = http::Request::patch(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(
            http::header::CONTENT_TYPE,
            "application/offset+octet-stream",
        )
        .header("upload-offset", offset)
        .body(Full::new(data))?;
    send(request).await
}
