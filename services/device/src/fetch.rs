//! Fetching what a notification points at from the gateway: the
//! message's summary and an attachment's preview, with the device token.
//! Plain HTTP only (the demo and tests talk to a local gateway; a phone
//! on the internet reaches it through TLS at the ingress).

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A fetched body.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

/// GETs `url` with the device token.
pub async fn get(url: &str, token: &str) -> anyhow::Result<Fetched> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let request = http::Request::get(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Empty::new())?;
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

/// POSTs JSON `body` to `url` with the device token; the answer within `wait`.
pub async fn post_json(
    url: &str,
    token: &str,
    body: &serde_json::Value,
    wait: std::time::Duration,
) -> anyhow::Result<Fetched> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(url)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = tokio::time::timeout(wait, async {
        let response = client.request(request).await?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(Fetched {
            status,
            content_type,
            body,
        })
    })
    .await
    .map_err(|_| TimedOut)??;
    Ok(response)
}

/// No answer within the wait.
#[derive(Debug, thiserror::Error)]
#[error("no answer in time")]
pub struct TimedOut;
