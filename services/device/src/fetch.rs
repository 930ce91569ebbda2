//! Fetching what a notification points at from the gateway: the
//! message's summary and an attachment's preview, with the device token.
//! Plain HTTP only (the demo and tests talk to a local gateway; a phone
//! on the internet reaches it through TLS at the ingress).

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
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
