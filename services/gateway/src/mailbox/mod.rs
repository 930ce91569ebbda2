//! The device mailbox API (`docs/device-protocol.md`, "Mailbox"): a phone
//! with a device token lists its account's folders, syncs one by token,
//! reads, flags, files, deletes and sends, and uploads attachments in
//! resumable chunks. Each route checks the device as the fetch routes do
//! (the account's delivery target right now) and calls the mailbox service
//! with the gateway's credential; the tenant and account come from the
//! token and the path, never from the body.

mod wire;

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt as _;
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::mailbox::v1 as pb;
use pushmail_proto::mailbox::v1::mailbox_service_client::MailboxServiceClient;
use pushmail_traffic::Traffic;
use serde_json::Value;

use crate::fetch::{Access, Gate, TokenOnly, bad_query};
use crate::reply::ApiError;

/// JSON bodies (a Send's text) at most.
const MAX_JSON: usize = 512 * 1024;
/// The header carrying an upload chunk's offset, and the upload's end in
/// answers (as tus names it).
const UPLOAD_OFFSET: &str = "upload-offset";

/// Shared by the mailbox routes.
pub(crate) struct Mailboxes {
    gate: Arc<Gate>,
    client: MailboxServiceClient<TracedChannel>,
    traffic: Arc<Traffic>,
}

impl Mailboxes {
    pub(crate) fn new(gate: Arc<Gate>, channel: TracedChannel, traffic: Arc<Traffic>) -> Self {
        Self {
            gate,
            // A chunk of a raw message is 64 KiB; answers are summaries.
            client: MailboxServiceClient::new(channel).max_decoding_message_size(16 << 20),
            traffic,
        }
    }

    async fn device(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
        account: &str,
    ) -> Result<Access, ApiError> {
        let claims = self.gate.authenticate(headers, token)?;
        self.gate.access(&claims, account).await
    }

    /// Checks the device, then makes one call on its behalf: `call` gets a
    /// client, the device's tenant, the account and the device's id.
    async fn as_device<T, F, Fut>(
        &self,
        headers: &HeaderMap,
        token: Option<&str>,
        account: String,
        call: F,
    ) -> Result<(Access, T), ApiError>
    where
        F: FnOnce(MailboxServiceClient<TracedChannel>, String, String, String) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let access = self.device(headers, token, &account).await?;
        let answer = call(
            self.client.clone(),
            access.tenant.clone(),
            account,
            access.device.clone(),
        )
        .await
        .map_err(|s| refused(&s))?
        .into_inner();
        Ok((access, answer))
    }

    /// `value` as JSON, its bytes counted in the tenant's traffic.
    fn answer(&self, access: &Access, status: StatusCode, value: &Value) -> Response {
        let text = value.to_string();
        self.traffic
            .fetched(&access.tenant, &access.account, text.len() as u64);
        (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "private, no-cache"),
            ],
            text,
        )
            .into_response()
    }
}

type Shared = State<Arc<Mailboxes>>;

/// The routes, under `/v1/accounts/{account}/mailbox`; `max_chunk` bounds
/// an upload chunk's body.
pub(crate) fn router(mailboxes: Arc<Mailboxes>, max_chunk: usize) -> axum::Router {
    let base = "/v1/accounts/{account}/mailbox";
    let json = axum::Router::new()
        .route(&format!("{base}/folders"), get(folders))
        .route(&format!("{base}/folders/{{folder}}/changes"), get(changes))
        .route(&format!("{base}/messages/{{message}}"), get(message))
        .route(&format!("{base}/messages/{{message}}/raw"), get(raw))
        .route(&format!("{base}/flags"), post(flags))
        .route(&format!("{base}/move"), post(move_messages))
        .route(&format!("{base}/delete"), post(delete))
        .route(&format!("{base}/send"), post(send))
        .route(&format!("{base}/uploads"), post(begin_upload))
        .layer(DefaultBodyLimit::max(MAX_JSON));
    let chunks = axum::Router::new()
        .route(
            &format!("{base}/uploads/{{upload}}"),
            get(get_upload).patch(upload_chunk),
        )
        .layer(DefaultBodyLimit::max(max_chunk));
    json.merge(chunks).with_state(mailboxes)
}

/// The mailbox service's reasons a device acts on: (gRPC code, `reason`
/// metadata) and the HTTP status and error code it gets.
const REASONS: &[(tonic::Code, &str, StatusCode, &str)] = &[
    (
        tonic::Code::FailedPrecondition,
        "token-invalid",
        StatusCode::CONFLICT,
        "token_invalid",
    ),
    (
        tonic::Code::FailedPrecondition,
        "credentials",
        StatusCode::UNPROCESSABLE_ENTITY,
        "mail_credentials",
    ),
    (
        tonic::Code::FailedPrecondition,
        "upload-incomplete",
        StatusCode::CONFLICT,
        "upload_incomplete",
    ),
    (
        tonic::Code::Aborted,
        "send-in-flight",
        StatusCode::CONFLICT,
        "send_in_flight",
    ),
    (
        tonic::Code::Aborted,
        "offset",
        StatusCode::CONFLICT,
        "offset",
    ),
    (
        tonic::Code::InvalidArgument,
        "recipient",
        StatusCode::UNPROCESSABLE_ENTITY,
        "recipient_refused",
    ),
    (
        tonic::Code::FailedPrecondition,
        "upload-damaged",
        StatusCode::GONE,
        "upload_damaged",
    ),
    (
        tonic::Code::Unavailable,
        "busy",
        StatusCode::SERVICE_UNAVAILABLE,
        "busy",
    ),
    (
        tonic::Code::Unavailable,
        "outcome-unknown",
        StatusCode::BAD_GATEWAY,
        "send_outcome_unknown",
    ),
];

/// The mailbox service's refusal as the device should see it.
fn refused(status: &tonic::Status) -> ApiError {
    use tonic::Code;
    let reason = status
        .metadata()
        .get("reason")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let message = status.message().to_owned();
    if let Some((_, _, http, code)) = REASONS
        .iter()
        .find(|(c, r, ..)| *c == status.code() && *r == reason)
    {
        return ApiError::Refused {
            status: *http,
            code,
            message,
        };
    }
    match status.code() {
        Code::FailedPrecondition => ApiError::Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "refused",
            message,
        },
        Code::NotFound => ApiError::Missing(message),
        Code::ResourceExhausted => ApiError::Throttled {
            message,
            retry_after_seconds: 60,
        },
        Code::Unavailable => {
            // The phone gets no internals; the operator gets the cause (a
            // provider down, the mailbox service unreachable, its volume
            // full).
            tracing::warn!(error = %status, "mailbox call failed");
            ApiError::Upstream("the mail server or the mailbox service is unavailable".to_owned())
        }
        _ => ApiError::from_upstream("mailbox", status),
    }
}

fn bad_json(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge(MAX_JSON);
    }
    ApiError::BadRequest(rejection.body_text())
}

async fn folders(
    State(m): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (access, answer) = m
        .as_device(
            &headers,
            None,
            account,
            |mut c, tenant_id, account_id, _device| async move {
                c.list_folders(pb::ListFoldersRequest {
                    tenant_id,
                    account_id,
                })
                .await
            },
        )
        .await?;
    Ok(m.answer(&access, StatusCode::OK, &wire::folders(&answer)))
}

async fn changes(
    State(m): Shared,
    Path((account, folder)): Path<(String, String)>,
    query: Result<Query<wire::ChangesQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let (access, answer) = m
        .as_device(
            &headers,
            None,
            account,
            |mut c, tenant_id, account_id, _device| async move {
                c.sync(pb::SyncRequest {
                    tenant_id,
                    account_id,
                    folder_id: folder,
                    since_token: query.since,
                    window: query.window,
                })
                .await
            },
        )
        .await?;
    Ok(m.answer(&access, StatusCode::OK, &wire::changes(&answer)))
}

async fn message(
    State(m): Shared,
    Path((account, message)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (access, answer) = m
        .as_device(
            &headers,
            None,
            account,
            |mut c, tenant_id, account_id, _device| async move {
                c.get_message(pb::GetMessageRequest {
                    tenant_id,
                    account_id,
                    message_id: message,
                })
                .await
            },
        )
        .await?;
    Ok(m.answer(&access, StatusCode::OK, &wire::message(&answer)))
}

/// The whole message as mailed (`message/rfc822`), streamed.
async fn raw(
    State(m): Shared,
    Path((account, message)): Path<(String, String)>,
    query: Result<Query<TokenOnly>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(bad_query)?;
    let token = query.token.as_deref();
    let (access, mut stream) = m
        .as_device(
            &headers,
            token,
            account,
            |mut c, tenant_id, account_id, _device| async move {
                c.fetch_raw(pb::FetchRawRequest {
                    tenant_id,
                    account_id,
                    message_id: message,
                })
                .await
            },
        )
        .await?;
    // The first chunk says how long the message is; a failure before it
    // is still an error answer rather than a cut body.
    let first = stream
        .message()
        .await
        .map_err(|s| refused(&s))?
        .unwrap_or_default();
    let total = first.total_bytes;
    let rest = stream.map(|chunk| {
        chunk
            .map(|c| Bytes::from(c.data))
            .map_err(|s| std::io::Error::other(s.message().to_owned()))
    });
    // Counted as each chunk is handed to the connection, as fetches are:
    // a download cut short counts what was sent.
    let traffic = m.traffic.clone();
    let body = futures::stream::once(async move { Ok(Bytes::from(first.data)) })
        .chain(rest)
        .inspect(move |chunk| {
            if let Ok(bytes) = chunk {
                traffic.fetched(&access.tenant, &access.account, bytes.len() as u64);
            }
        });
    let mut response = Response::new(Body::from_stream(body));
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("message/rfc822"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(total));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache"),
    );
    Ok(response)
}

async fn flags(
    State(m): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Json<wire::FlagsBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    m.as_device(
        &headers,
        None,
        account,
        |mut c, tenant, account, device| async move {
            c.set_flags(body.request(tenant, account, device)).await
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn move_messages(
    State(m): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Json<wire::MoveBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let (access, answer) = m
        .as_device(
            &headers,
            None,
            account,
            |mut c, tenant_id, account_id, device_id| async move {
                c.r#move(pb::MoveRequest {
                    tenant_id,
                    account_id,
                    message_ids: body.ids,
                    to_folder_id: body.to,
                    device_id,
                })
                .await
            },
        )
        .await?;
    Ok(m.answer(&access, StatusCode::OK, &wire::moved(&answer.moved)))
}

async fn delete(
    State(m): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Json<wire::DeleteBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let (access, answer) = m
        .as_device(
            &headers,
            None,
            account,
            |mut c, tenant_id, account_id, device_id| async move {
                c.delete(pb::DeleteRequest {
                    tenant_id,
                    account_id,
                    message_ids: body.ids,
                    permanent: body.permanent,
                    device_id,
                })
                .await
            },
        )
        .await?;
    Ok(m.answer(&access, StatusCode::OK, &wire::moved(&answer.moved)))
}

async fn send(
    State(m): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Json<wire::SendBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let access = m.device(&headers, None, &account).await?;
    let language = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let request = body.request(
        access.tenant.clone(),
        account,
        access.device.clone(),
        &access.preferences.signature,
        language,
    )?;
    let answer = m
        .client
        .clone()
        .send(request)
        .await
        .map_err(|s| refused(&s))?
        .into_inner();
    let value = serde_json::json!({
        "message_id": answer.rfc_message_id,
        "sent_id": (!answer.sent_message_id.is_empty()).then_some(answer.sent_message_id),
    });
    Ok(m.answer(&access, StatusCode::OK, &value))
}

/// An upload's state, with its end in `Upload-Offset`.
fn upload_answer(m: &Mailboxes, access: &Access, status: StatusCode, u: &pb::Upload) -> Response {
    let mut response = m.answer(access, status, &wire::upload(u));
    response
        .headers_mut()
        .insert(UPLOAD_OFFSET, HeaderValue::from(u.received_bytes));
    response
}

async fn begin_upload(
    State(m): Shared,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Result<Json<wire::BeginUploadBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let path = account.clone();
    let (access, upload) = m
        .as_device(
            &headers,
            None,
            account,
            |mut c, tenant_id, account_id, _device| async move {
                c.begin_upload(pb::BeginUploadRequest {
                    tenant_id,
                    account_id,
                    file_name: body.file_name,
                    content_type: body.content_type,
                    total_bytes: body.size,
                })
                .await
            },
        )
        .await?;
    let mut response = upload_answer(&m, &access, StatusCode::CREATED, &upload);
    if let Ok(location) = HeaderValue::from_str(&format!(
        "/v1/accounts/{path}/mailbox/uploads/{}",
        upload.upload_id
    )) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

async fn get_upload(
    State(m): Shared,
    Path((account, upload)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (access, upload) = m
        .as_device(
            &headers,
            None,
            account,
            |mut c, tenant_id, account_id, _device| async move {
                c.get_upload(pb::GetUploadRequest {
                    tenant_id,
                    account_id,
                    upload_id: upload,
                })
                .await
            },
        )
        .await?;
    Ok(upload_answer(&m, &access, StatusCode::OK, &upload))
}

/// `PATCH` with `Upload-Offset: <where this chunk starts>` and the bytes
/// as the body. A chunk anywhere but the upload's end is 409 `offset`
/// with the end in `Upload-Offset`: the phone resumes from there.
async fn upload_chunk(
    State(m): Shared,
    Path((account, upload)): Path<(String, String)>,
    headers: HeaderMap,
    data: Bytes,
) -> Result<Response, ApiError> {
    let offset = headers
        .get(UPLOAD_OFFSET)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| {
            ApiError::BadRequest("Upload-Offset (where this chunk starts) is required".to_owned())
        })?;
    let access = m.device(&headers, None, &account).await?;
    let answer = m
        .client
        .clone()
        .upload_chunk(pb::UploadChunkRequest {
            tenant_id: access.tenant.clone(),
            account_id: account,
            upload_id: upload,
            offset,
            data: data.to_vec(),
        })
        .await;
    match answer {
        Ok(upload) => Ok(upload_answer(
            &m,
            &access,
            StatusCode::OK,
            &upload.into_inner(),
        )),
        Err(status) => {
            // An `offset` refusal carries where the upload ends: the phone
            // resumes there without asking.
            let received = status
                .metadata()
                .get("received-bytes")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let mut response = refused(&status).into_response();
            if let Some(received) = received {
                response
                    .headers_mut()
                    .insert(UPLOAD_OFFSET, HeaderValue::from(received));
            }
            Ok(response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: tonic::Code, reason: Option<&'static str>) -> tonic::Status {
        let mut status = tonic::Status::new(code, "why");
        if let Some(reason) = reason {
            status.metadata_mut().insert(
                "reason",
                tonic::metadata::MetadataValue::from_static(reason),
            );
        }
        status
    }

    fn answered(error: ApiError) -> (StatusCode, Option<&'static str>) {
        match error {
            ApiError::Refused { status, code, .. } => (status, Some(code)),
            other => (other.into_response().status(), None),
        }
    }

    #[test]
    fn too_many_sends_at_once_is_503_busy() {
        assert_eq!(
            answered(refused(&status(tonic::Code::Unavailable, Some("busy")))),
            (StatusCode::SERVICE_UNAVAILABLE, Some("busy"))
        );
    }

    #[test]
    fn each_reason_a_phone_acts_on_has_its_status_and_code() {
        use tonic::Code;
        let cases = [
            (
                Code::FailedPrecondition,
                Some("token-invalid"),
                StatusCode::CONFLICT,
                Some("token_invalid"),
            ),
            (
                Code::FailedPrecondition,
                Some("credentials"),
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("mail_credentials"),
            ),
            (
                Code::FailedPrecondition,
                Some("upload-incomplete"),
                StatusCode::CONFLICT,
                Some("upload_incomplete"),
            ),
            (
                Code::Aborted,
                Some("send-in-flight"),
                StatusCode::CONFLICT,
                Some("send_in_flight"),
            ),
            (
                Code::Aborted,
                Some("offset"),
                StatusCode::CONFLICT,
                Some("offset"),
            ),
            (
                Code::InvalidArgument,
                Some("recipient"),
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("recipient_refused"),
            ),
            (
                Code::FailedPrecondition,
                None,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some("refused"),
            ),
            (Code::InvalidArgument, None, StatusCode::BAD_REQUEST, None),
            (Code::NotFound, None, StatusCode::NOT_FOUND, None),
            (
                Code::ResourceExhausted,
                None,
                StatusCode::TOO_MANY_REQUESTS,
                None,
            ),
            (Code::Unavailable, None, StatusCode::BAD_GATEWAY, None),
            (
                Code::FailedPrecondition,
                Some("upload-damaged"),
                StatusCode::GONE,
                Some("upload_damaged"),
            ),
            (
                Code::Unavailable,
                Some("outcome-unknown"),
                StatusCode::BAD_GATEWAY,
                Some("send_outcome_unknown"),
            ),
            // A reason under another code is not that reason.
            (
                Code::Aborted,
                Some("token-invalid"),
                StatusCode::CONFLICT,
                None,
            ),
        ];
        for (code, reason, http, error_code) in cases {
            assert_eq!(
                answered(refused(&status(code, reason))),
                (http, error_code),
                "{code:?} {reason:?}"
            );
        }
    }
}
