//! The webhook for mail servers that push their own events (Dovecot's
//! push_notification OX driver): `PUT` or `POST /v1/webhook/dovecot` with
//! the driver's JSON. Authenticated per tenant with HTTP Basic, user = the
//! tenant id and password = one of the tenant's API keys (what the driver's
//! URL user-info sends); the key is checked by binding and the answer cached
//! briefly. The mailbox must be an account of that tenant. 204 once the
//! event is durable; 503 when it could not be published.

mod payload;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse as _, Response};
use axum::routing::post;
use base64::Engine as _;
use pushmail_common::grpc::TracedChannel;
use pushmail_common::http_error::error;
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::common::v1::PageRequest;
use sha2::Digest as _;
use tokio::time::Instant;

pub(crate) use payload::{MESSAGE_NEW, OxEvent};

use crate::arrival::{Announcer, Arrival, Source};
use crate::smtp::{Recipients, Resolved};

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Checks a tenant's API key with binding, remembering good answers.
pub(crate) struct TenantKeys {
    binding: TracedChannel,
    good: quick_cache::sync::Cache<[u8; 32], Instant>,
    ttl: Duration,
}

/// Why a key was not accepted.
#[derive(Debug)]
pub(crate) enum KeyCheck {
    /// The key is the tenant's.
    Valid,
    /// It is not.
    Invalid,
    /// Binding could not tell.
    Unavailable(Box<tonic::Status>),
}

impl TenantKeys {
    /// Over binding; a checked key is trusted for `ttl`.
    pub(crate) fn new(binding: TracedChannel, ttl: Duration) -> Self {
        Self {
            binding,
            good: quick_cache::sync::Cache::new(10_000),
            ttl,
        }
    }

    /// Whether `key` is an API key of `tenant`.
    pub(crate) async fn check(&self, tenant: &str, key: &str) -> KeyCheck {
        let digest: [u8; 32] = sha2::Sha256::digest(format!("{tenant}\0{key}")).into();
        if self
            .good
            .get(&digest)
            .is_some_and(|until| Instant::now() < until)
        {
            return KeyCheck::Valid;
        }
        let Ok(bearer) = format!("Bearer {key}").parse() else {
            return KeyCheck::Invalid;
        };
        let mut request = tonic::Request::new(pb::ListAccountsRequest {
            tenant_id: tenant.to_owned(),
            query: String::new(),
            page: Some(PageRequest {
                page_size: 1,
                cursor: String::new(),
            }),
        });
        request.metadata_mut().insert("authorization", bearer);
        match AdminServiceClient::new(self.binding.clone())
            .list_accounts(request)
            .await
        {
            Ok(_) => {
                self.good.insert(digest, Instant::now() + self.ttl);
                KeyCheck::Valid
            }
            Err(status)
                if matches!(
                    status.code(),
                    tonic::Code::Unauthenticated
                        | tonic::Code::PermissionDenied
                        | tonic::Code::InvalidArgument
                        | tonic::Code::NotFound
                ) =>
            {
                KeyCheck::Invalid
            }
            Err(status) => KeyCheck::Unavailable(Box::new(status)),
        }
    }
}

/// What the handler needs.
#[derive(Clone)]
pub(crate) struct Webhook {
    /// Key checks.
    pub keys: Arc<TenantKeys>,
    /// Address → account.
    pub recipients: Arc<dyn Recipients>,
    /// Stores and publishes.
    pub announcer: Announcer,
}

impl Webhook {
    /// The routes, with the body limit.
    pub(crate) fn router(self) -> Router {
        Router::new()
            .route("/v1/webhook/dovecot", post(notify).put(notify))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(self)
    }
}

/// `Basic tenant:key` → (tenant, key).
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (tenant, key) = decoded.split_once(':')?;
    (!tenant.is_empty() && !key.is_empty()).then(|| (tenant.to_owned(), key.to_owned()))
}

fn unauthorized(message: &str) -> Response {
    let mut response = error(StatusCode::UNAUTHORIZED, "unauthenticated", message);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Basic realm=\"pushmail\""),
    );
    response
}

fn unavailable(message: &str) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    response
}

/// The webhook account of `tenant` that `user` names, or the answer that
/// refuses it. Asked within the tenant: addresses of watched mailboxes are
/// unique per tenant only, so another tenant's row must not answer.
async fn account_of(hook: &Webhook, tenant: &str, user: &str) -> Result<String, Response> {
    match hook.recipients.resolve_in(user, Some(tenant)).await {
        // IMAP accounts too: the notification's key (IMAP coordinates) is
        // the one their watcher would use, so the two dedupe.
        Ok(Resolved::Account {
            tenant: owner,
            account,
            kind: pb::AccountKind::Webhook | pb::AccountKind::ExternalImap,
            ..
        }) if owner == tenant => Ok(account),
        // Another tenant's mailbox is as unknown as none.
        Ok(Resolved::Account { tenant: owner, .. }) if owner == tenant => Err(error(
            StatusCode::CONFLICT,
            "not_a_webhook_account",
            "this account's mail reaches pushmail another way",
        )),
        Ok(Resolved::Account { .. } | Resolved::Unknown) => Err(error(
            StatusCode::NOT_FOUND,
            "unknown_mailbox",
            "no account of this tenant has that address",
        )),
        Ok(Resolved::BadAddress) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_user",
            "user is not a mail address",
        )),
        Err(err) => {
            tracing::warn!(error = %pushmail_common::report::Report(&err), "recipient lookup unavailable");
            Err(unavailable("cannot look up the mailbox now"))
        }
    }
}

async fn notify(State(hook): State<Webhook>, headers: HeaderMap, body: Bytes) -> Response {
    let Some((tenant, key)) = credentials(&headers) else {
        return unauthorized("HTTP Basic credentials required: the tenant id and an API key");
    };
    match hook.keys.check(&tenant, &key).await {
        KeyCheck::Valid => {}
        KeyCheck::Invalid => return unauthorized("not an API key of this tenant"),
        KeyCheck::Unavailable(status) => {
            tracing::warn!(error = %pushmail_common::report::Report(&*status), "tenant key check unavailable");
            return unavailable("cannot check credentials now");
        }
    }
    let event: OxEvent = match serde_json::from_slice(&body) {
        Ok(event) => event,
        Err(err) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                &format!("not a push_notification payload: {err}"),
            );
        }
    };
    if event.event != MESSAGE_NEW {
        return StatusCode::NO_CONTENT.into_response();
    }
    let account = match account_of(&hook, &tenant, &event.user).await {
        Ok(account) => account,
        Err(refused) => return refused,
    };
    let (uid_validity, uid) = match (event.uid_validity, event.uid) {
        (Some(v), Some(u)) if v != 0 && u != 0 => (v, u),
        _ => (0, 0),
    };
    let arrival = Arrival {
        tenant,
        account,
        mailbox: event.folder.clone().unwrap_or_else(|| "INBOX".to_owned()),
        uid_validity,
        uid,
        source: Source::Webhook,
        received_at_ms: pushmail_common::clock::now_ms(),
        full_size: None,
        origin: None,
    };
    match hook.announcer.announce(&arrival, &event.to_message()).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(err) if err.is_transient() => {
            tracing::warn!(error = %pushmail_common::report::Report(&err), "webhook event not published");
            unavailable("the event could not be published; retry")
        }
        Err(err) => error(StatusCode::BAD_REQUEST, "invalid_event", &err.to_string()),
    }
}
