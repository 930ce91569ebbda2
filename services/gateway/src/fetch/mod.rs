//! The device fetch API (`docs/device-protocol.md`, "Fetching"): what a
//! notification's URLs point at. A message's summary, its body for the
//! device's screen, each attachment as mailed and as a preview; downloads
//! resume with HTTP Range, and every byte sent counts in the tenant's
//! traffic statistics.

mod access;
mod download;
pub(crate) mod range;

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::transcode::v1 as transcode;
use pushmail_proto::transcode::v1::transcode_service_client::TranscodeServiceClient;
use pushmail_traffic::Traffic;
use serde::Deserialize;
use serde_json::json;

use crate::reply::ApiError;
pub(crate) use access::{Access, Gate};
use download::{Counter, Disposition};

/// Shared by the fetch routes.
pub(crate) struct Fetch {
    gate: Arc<Gate>,
    transcode: TranscodeServiceClient<TracedChannel>,
    traffic: Arc<Traffic>,
}

impl Fetch {
    pub(crate) fn new(
        gate: Arc<Gate>,
        transcode: TranscodeServiceClient<TracedChannel>,
        traffic: Arc<Traffic>,
    ) -> Self {
        Self {
            gate,
            transcode: transcode.max_decoding_message_size(2 << 20),
            traffic,
        }
    }
}

type Shared = State<Arc<Fetch>>;

/// The routes, under `/v1/accounts/{account}/messages/{message}`.
pub(crate) fn router(fetch: Arc<Fetch>) -> axum::Router {
    let base = "/v1/accounts/{account}/messages/{message}";
    axum::Router::new()
        .route(base, get(summary))
        .route(&format!("{base}/body"), get(body))
        .route(&format!("{base}/attachments/{{part}}"), get(original))
        .route(
            &format!("{base}/attachments/{{part}}/preview"),
            get(preview),
        )
        .with_state(fetch)
}

/// `?token=` for clients that cannot set a header (a download manager
/// handed a URL); any other parameter of the summary route is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenOnly {
    pub(crate) token: Option<String>,
}

/// How a body or preview is rendered. A named profile (configured on the
/// transcode service) or an explicit one; neither: the service's default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Render {
    token: Option<String>,
    profile: Option<String>,
    /// Screen width, pixels.
    width: Option<u32>,
    /// Comma-separated MIME types the device shows.
    accept: Option<String>,
    max_bytes: Option<u64>,
    /// PDF page (1-based; 0 or absent: every page's text).
    page: Option<u32>,
    /// `image` (a PDF page, a video frame) or `text`.
    rendition: Option<String>,
    /// Keep remote images in an HTML body.
    remote_images: Option<bool>,
}

impl Render {
    fn explicit(&self) -> bool {
        self.width.is_some()
            || self.accept.is_some()
            || self.max_bytes.is_some()
            || self.remote_images.is_some()
    }

    fn apply(&self, request: &mut transcode::TranscodeRequest) -> Result<(), ApiError> {
        if let Some(name) = &self.profile {
            if self.explicit() {
                return Err(ApiError::BadRequest(
                    "give either profile or width/accept/max_bytes, not both".to_owned(),
                ));
            }
            request.profile_name = name.clone();
        } else if self.explicit() {
            request.profile = Some(transcode::DeviceProfile {
                screen_width: self.width.unwrap_or(720),
                accepts: self
                    .accept
                    .as_deref()
                    .unwrap_or("image/jpeg,image/png,text/html,text/plain,application/json")
                    .split(',')
                    .map(|a| a.trim().to_owned())
                    .collect(),
                max_bytes: self.max_bytes.unwrap_or(512 * 1024),
                allow_remote_images: self.remote_images.unwrap_or(false),
            });
        }
        request.page = self.page.unwrap_or(0);
        request.rendition = match self.rendition.as_deref() {
            None => transcode::Rendition::Unspecified,
            Some("image") => transcode::Rendition::Image,
            Some("text") => transcode::Rendition::Text,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "rendition {other:?}: use image or text"
                )));
            }
        } as i32;
        Ok(())
    }
}

async fn device(
    fetch: &Fetch,
    headers: &HeaderMap,
    token: Option<&str>,
    account: &str,
) -> Result<Access, ApiError> {
    let claims = fetch.gate.authenticate(headers, token)?;
    fetch.gate.access(&claims, account).await
}

fn attachments_allowed(access: &Access) -> Result<(), ApiError> {
    if access.preferences.attachments {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "attachments are turned off in this device's preferences",
        ))
    }
}

async fn summary(
    State(fetch): Shared,
    Path((account, message)): Path<(String, String)>,
    query: Result<Query<TokenOnly>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let access = device(&fetch, &headers, query.token.as_deref(), &account).await?;
    let description = fetch
        .transcode
        .clone()
        .describe_message(transcode::DescribeMessageRequest {
            tenant_id: access.tenant.clone(),
            account_id: account.clone(),
            blob_ref: message.clone(),
        })
        .await
        .map_err(|s| ApiError::from_upstream("transcode", &s))?
        .into_inner();
    let base = format!("/v1/accounts/{account}/messages/{message}");
    let address =
        |a: &pushmail_proto::common::v1::Address| json!({"name": a.name, "address": a.address});
    let attachments: Vec<_> = if access.preferences.attachments {
        description
            .attachments
            .iter()
            .map(|a| {
                json!({
                    "part": a.part_id,
                    "name": a.file_name,
                    "type": a.content_type,
                    "size": a.size_bytes,
                    "url": format!("{base}/attachments/{}", a.part_id),
                    "preview": format!("{base}/attachments/{}/preview", a.part_id),
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let body = json!({
        "account": account,
        "message": message,
        "message_id": description.message_id,
        "from": description.from.as_ref().map(address),
        "to": description.to.iter().map(address).collect::<Vec<_>>(),
        "subject": description.subject,
        "snippet": description.snippet,
        "date": (description.date_ms != 0).then_some(description.date_ms),
        "size": description.size_bytes,
        "html_body": description.has_html_body,
        "body": format!("{base}/body"),
        "attachments": attachments,
    });
    let bytes = body.to_string();
    fetch
        .traffic
        .fetched(&access.tenant, &access.account, bytes.len() as u64);
    Ok((
        [(axum::http::header::CACHE_CONTROL, "private, no-cache")],
        Json(body),
    )
        .into_response())
}

async fn body(
    State(fetch): Shared,
    Path((account, message)): Path<(String, String)>,
    render: Result<Query<Render>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(render) = render.map_err(bad_query)?;
    converted(
        fetch,
        account,
        message,
        "body".to_owned(),
        render,
        headers,
        false,
    )
    .await
}

async fn preview(
    State(fetch): Shared,
    Path((account, message, part)): Path<(String, String, String)>,
    render: Result<Query<Render>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(render) = render.map_err(bad_query)?;
    converted(fetch, account, message, part, render, headers, true).await
}

async fn converted(
    fetch: Arc<Fetch>,
    account: String,
    message: String,
    part: String,
    render: Render,
    headers: HeaderMap,
    is_attachment: bool,
) -> Result<Response, ApiError> {
    let access = device(&fetch, &headers, render.token.as_deref(), &account).await?;
    if is_attachment {
        attachments_allowed(&access)?;
    }
    let mut request = transcode::TranscodeRequest {
        tenant_id: access.tenant.clone(),
        account_id: account,
        blob_ref: message,
        part_id: part,
        ..Default::default()
    };
    render.apply(&mut request)?;
    let client = fetch.transcode.clone();
    let open: download::Open = Box::new(move |offset, limit| {
        let mut client = client.clone();
        let request = transcode::TranscodeRequest {
            offset,
            limit,
            ..request.clone()
        };
        Box::pin(async move {
            client
                .transcode(request)
                .await
                .map(tonic::Response::into_inner)
        })
    });
    download::serve(
        open,
        &headers,
        Disposition::Inline,
        counter(&fetch, &access),
    )
    .await
}

async fn original(
    State(fetch): Shared,
    Path((account, message, part)): Path<(String, String, String)>,
    query: Result<Query<TokenOnly>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let access = device(&fetch, &headers, query.token.as_deref(), &account).await?;
    attachments_allowed(&access)?;
    let request = transcode::FetchPartRequest {
        tenant_id: access.tenant.clone(),
        account_id: account,
        blob_ref: message,
        part_id: part,
        ..Default::default()
    };
    let client = fetch.transcode.clone();
    let open: download::Open = Box::new(move |offset, limit| {
        let mut client = client.clone();
        let request = transcode::FetchPartRequest {
            offset,
            limit,
            ..request.clone()
        };
        Box::pin(async move {
            client
                .fetch_part(request)
                .await
                .map(tonic::Response::into_inner)
        })
    });
    download::serve(
        open,
        &headers,
        Disposition::Attachment,
        counter(&fetch, &access),
    )
    .await
}

pub(crate) fn bad_query(rejection: QueryRejection) -> ApiError {
    ApiError::BadRequest(rejection.body_text())
}

fn counter(fetch: &Fetch, access: &Access) -> Counter {
    Counter {
        traffic: fetch.traffic.clone(),
        tenant: access.tenant.clone(),
        account: access.account.clone(),
    }
}
