//! The HTTP edge of MS-ASHTTP: `OPTIONS` says which versions and commands
//! are served; `POST` reads the request line, logs the phone in, decodes
//! the WBXML body within bounds and hands it to its command. Every refusal
//! is an HTTP status a phone acts on (400, 401, 403, 501, 503 with
//! `Retry-After`), with a short text reason for whoever reads the logs.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::options;
use pushmail_wbxml::{Element, Limits, WbxmlError};
use tracing::Instrument as _;

use crate::login::{Basic, LoginError, Logins};
use crate::policy::PolicyConfig;
use crate::protocol::query::{self, QueryError};
use crate::protocol::{Command, Version};
use crate::provision::{self, ProvisionFailure};

/// Where phones post.
pub const PATH: &str = "/Microsoft-Server-ActiveSync";

/// The WBXML media type.
const WBXML: &str = "application/vnd.ms-sync.wbxml";

/// Commands served so far; the rest are answered 501 (and not listed in
/// OPTIONS, so a phone does not try them).
const SERVED: &[Command] = &[
    Command::Provision,
    Command::Settings,
    Command::FolderSync,
    Command::FolderCreate,
    Command::FolderUpdate,
    Command::FolderDelete,
    Command::Sync,
    Command::GetItemEstimate,
    Command::ItemOperations,
    Command::MoveItems,
    Command::SendMail,
    Command::SmartReply,
    Command::SmartForward,
    Command::Ping,
    Command::Search,
    Command::Find,
    Command::ResolveRecipients,
];

/// Commands that carry a message the phone composed, read up to the
/// listener's body limit.
const CARRY_MESSAGES: &[Command] = &[
    Command::SendMail,
    Command::SmartReply,
    Command::SmartForward,
];

/// Largest body of the commands served so far (a Sync of a hundred
/// collections, or with a few hundred changes, is tens of KB); read only
/// once the phone has logged in, so a stranger cannot make the service
/// hold more.
const MAX_COMMAND_BODY: usize = 1024 * 1024;

/// Largest Autodiscover request read (it is a few hundred bytes).
const MAX_AUTODISCOVER_BODY: usize = 16 * 1024;

/// What every request is served with.
pub struct Front {
    /// Logins and provisioning (binding).
    pub logins: Arc<dyn Logins>,
    /// The phone's account's mail.
    pub mail: crate::mail::Mail,
    /// Held Pings (the session service).
    pub push: crate::push::Push,
    /// Cancelled when the service stops: held Pings are answered so
    /// their phones ping another replica.
    pub stop: tokio_util::sync::CancellationToken,
    /// The device policy.
    pub policy: PolicyConfig,
    /// Bounds of a request body's WBXML.
    pub limits: Limits,
    /// The ActiveSync URL Autodiscover hands out; `None`: not served.
    pub public_url: Option<String>,
    /// Proxies whose `X-Forwarded-For` names the phone.
    pub proxies: crate::peer::TrustedProxies,
    /// The digest of `policy`: a phone that applied another provisions
    /// again.
    pub policy_digest: String,
}

impl std::fmt::Debug for Front {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Front")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// The routes.
pub fn router(front: Arc<Front>) -> Router {
    Router::new()
        .route(PATH, options(discover).post(post))
        .fallback(other)
        .with_state(front)
}

/// Why a request was not served.
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("HTTP Basic credentials are required")]
    NoCredentials,
    #[error(transparent)]
    Login(#[from] LoginError),
    #[error("the body is not WBXML this server reads: {0}")]
    Body(#[from] WbxmlError),
    #[error("the body is empty")]
    EmptyBody,
    #[error(
        "the body is not a MoveItems of 1 to {} moves",
        crate::move_items::MAX_MOVES
    )]
    NotMoveItems,
    #[error("the body is over {0} bytes")]
    TooLarge(usize),
    #[error("{0} is not served yet")]
    NotServed(&'static str),
    #[error(transparent)]
    Provision(#[from] ProvisionFailure),
    #[error(transparent)]
    Mail(#[from] crate::mail::MailError),
    #[error(transparent)]
    Push(#[from] crate::push::PushError),
    #[error("the answer could not be encoded: {0}")]
    Encode(WbxmlError),
    #[error(
        "an account-only wipe is ordered for this phone, which speaks {0}: only 16.1 phones \
         can be told one; order a full wipe or revoke the password"
    )]
    WipeNotSpoken(Version),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let (status, retry_after) = match &self {
            Self::Query(_) | Self::Body(_) | Self::EmptyBody | Self::NotMoveItems => {
                (StatusCode::BAD_REQUEST, None)
            }
            Self::NoCredentials
            | Self::Login(LoginError::Refused)
            | Self::Push(crate::push::PushError::Revoked) => (StatusCode::UNAUTHORIZED, None),
            Self::Login(LoginError::OtherPhone(_)) | Self::WipeNotSpoken(_) => {
                (StatusCode::FORBIDDEN, None)
            }
            // Phones back off on 503 with Retry-After; 429 is not in
            // MS-ASHTTP and some treat it as a hard failure.
            Self::Login(LoginError::LockedOut(seconds)) => {
                (StatusCode::SERVICE_UNAVAILABLE, Some(*seconds))
            }
            Self::Login(LoginError::Unavailable(_))
            | Self::Provision(_)
            | Self::Mail(_)
            | Self::Push(_) => (StatusCode::SERVICE_UNAVAILABLE, Some(30)),
            Self::NotServed(_) => (StatusCode::NOT_IMPLEMENTED, None),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, None),
            Self::Encode(_) => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        if status.is_server_error() {
            tracing::warn!(error = %pushmail_common::report::Report(&self), "request failed");
        } else {
            tracing::info!(%status, reason = %self, "request refused");
        }
        if let Self::TooLarge(_) = &self {
            // In the platform's error shape, as the listener's own 413 is
            // (which would otherwise replace this one, naming its limit).
            return pushmail_common::http_error::error(status, "body_too_large", &self.to_string());
        }
        let mut response = (status, self.to_string()).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"pushmail\", charset=\"UTF-8\""),
            );
        }
        if let Some(seconds) = retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        server_headers(headers);
        response
    }
}

fn server_headers(headers: &mut HeaderMap) {
    headers.insert(
        "MS-Server-ActiveSync",
        HeaderValue::from_static(Version::V16_1.as_str()),
    );
}

/// OPTIONS: the versions and commands served. Unauthenticated: it says
/// nothing a phone could not learn from the protocol, and some phones ask
/// before they have a password.
async fn discover() -> Response {
    let commands = SERVED
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(",");
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    server_headers(headers);
    for (name, value) in [
        ("MS-ASProtocolVersions", Version::header()),
        ("MS-ASProtocolCommands", commands),
        ("Allow", "OPTIONS,POST".to_owned()),
        ("Public", "OPTIONS,POST".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

/// The ActiveSync path and Autodiscover's, which phones send in any
/// casing; anything else is 404. The path is checked before any body is
/// read.
async fn other(
    State(front): State<Arc<Front>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().to_ascii_lowercase();
    if path == PATH.to_ascii_lowercase() {
        return match method {
            axum::http::Method::OPTIONS => discover().await,
            axum::http::Method::POST => {
                answer(&front, peer, uri.query().unwrap_or(""), &headers, body).await
            }
            _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
        };
    }
    let Some(url) = front.public_url.as_deref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let json = path == "/autodiscover/autodiscover.json"
        || path.starts_with("/autodiscover/autodiscover.json/v1.0/");
    match (method, path.as_str()) {
        (axum::http::Method::POST, "/autodiscover/autodiscover.xml") => {
            match axum::body::to_bytes(body, MAX_AUTODISCOVER_BODY).await {
                Ok(body) => crate::autodiscover::answer_xml(url, &body),
                Err(_) => Refusal::TooLarge(MAX_AUTODISCOVER_BODY).into_response(),
            }
        }
        (axum::http::Method::GET, _) if json => {
            let protocol = query::pairs(uri.query().unwrap_or(""))
                .find(|(key, _)| key.eq_ignore_ascii_case("Protocol"))
                .map(|(_, value)| value);
            crate::autodiscover::answer_json(url, protocol.as_deref())
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn post(
    State(front): State<Arc<Front>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&front, peer, raw.as_deref().unwrap_or(""), &headers, body).await
}

async fn answer(
    front: &Front,
    peer: SocketAddr,
    raw: &str,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    match serve(front, peer, raw, headers, body).await {
        Ok(response) => response,
        Err(refusal) => refusal.into_response(),
    }
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn serve(
    front: &Front,
    peer: SocketAddr,
    raw: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Refusal> {
    let request = query::parse(
        raw,
        query::Headers {
            version: header_text(headers, "MS-ASProtocolVersion"),
            policy_key: header_text(headers, "X-MS-PolicyKey"),
            accept_multipart: header_text(headers, "MS-ASAcceptMultiPart"),
        },
    )?;
    let basic =
        Basic::parse(header_text(headers, "Authorization")).ok_or(Refusal::NoCredentials)?;
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok());
    let client = front.proxies.client(peer.ip(), forwarded);
    let login = front
        .logins
        .login(&basic, client, &request.device_id, &request.device_type)
        .await?;
    let span = tracing::info_span!(
        "activesync",
        command = request.command.name(),
        version = %request.version,
        tenant = %login.tenant,
        device = %login.device,
    );
    // Instrumented, never entered: a guard held across an await stays
    // entered on the worker thread while other tasks run there, so every
    // request served after it nested inside it (a chain that grew with
    // each request until the process overflowed its stack under load).
    logged_in(front, &request, &login, body)
        .instrument(span)
        .await
}

/// The rest of a request once its phone is known.
async fn logged_in(
    front: &Front,
    request: &query::Request,
    login: &crate::login::Login,
    body: Body,
) -> Result<Response, Refusal> {
    if !SERVED.contains(&request.command) {
        return Err(Refusal::NotServed(request.command.name()));
    }
    let max_body = if CARRY_MESSAGES.contains(&request.command) {
        front.limits.max_value
    } else {
        MAX_COMMAND_BODY
    };
    let body = axum::body::to_bytes(body, max_body)
        .await
        .map_err(|_| Refusal::TooLarge(max_body))?;
    if let Some(told) = wipe_pending(request, login)? {
        return wbxml_response(&told);
    }
    if let Some(refused) = unprovisioned(request, login, &front.policy_digest) {
        return wbxml_response(&refused);
    }
    if body.is_empty() {
        // An empty Sync asks to repeat the last one, which is not kept.
        if request.command == Command::Sync {
            return wbxml_response(&crate::sync::incomplete());
        }
        if request.command == Command::Ping {
            return wbxml_response(&crate::ping::empty());
        }
        return Err(Refusal::EmptyBody);
    }
    let tree = pushmail_wbxml::decode_with(&body, front.limits)?;
    command(front, login, request, &tree).await
}

/// A served command's answer to the phone of `login`. Each command's
/// future is boxed: a held Ping (or a waiting Sync) lives for up to an
/// hour, and an unboxed match would reserve in it the largest of every
/// command's state.
async fn command(
    front: &Front,
    login: &crate::login::Login,
    request: &query::Request,
    tree: &Element,
) -> Result<Response, Refusal> {
    let (logins, mail) = (&*front.logins, &front.mail);
    let answer = match request.command {
        Command::Provision => {
            Box::pin(provision::answer(
                logins,
                login,
                request.version,
                tree,
                &front.policy,
            ))
            .await?
        }
        Command::Settings => Box::pin(crate::settings::answer(logins, login, tree)).await,
        Command::FolderSync => Box::pin(crate::folder_sync::answer(mail, login, tree)).await,
        Command::FolderCreate | Command::FolderUpdate | Command::FolderDelete => {
            Box::pin(crate::folder_edit::answer(
                mail,
                login,
                request.command,
                tree,
            ))
            .await
        }
        Command::Sync => {
            Box::pin(crate::sync_wait::answer(
                mail,
                &front.push,
                login,
                tree,
                &front.stop,
            ))
            .await?
        }
        Command::GetItemEstimate => Box::pin(crate::estimate::answer(mail, login, tree)).await?,
        Command::ItemOperations => {
            Box::pin(crate::item_operations::answer(mail, login, tree)).await
        }
        Command::MoveItems => Box::pin(crate::move_items::answer(mail, login, tree))
            .await
            .ok_or(Refusal::NotMoveItems)?,
        Command::SendMail | Command::SmartReply | Command::SmartForward => {
            let failed = Box::pin(crate::compose_mail::answer(
                mail,
                login,
                request.command,
                tree,
            ))
            .await;
            return match failed {
                Some(failed) => wbxml_response(&failed),
                // Sent: an empty answer (MS-ASCMD §2.2.1.17).
                None => {
                    let mut response = StatusCode::OK.into_response();
                    server_headers(response.headers_mut());
                    Ok(response)
                }
            };
        }
        Command::Ping => {
            Box::pin(crate::ping::answer(&front.push, login, tree, &front.stop)).await?
        }
        Command::Search => Box::pin(crate::search::answer(logins, mail, login, tree)).await,
        Command::Find => Box::pin(crate::find::answer(logins, mail, login, tree)).await?,
        Command::ResolveRecipients => Box::pin(crate::resolve::answer(logins, login, tree)).await,
        other => return Err(Refusal::NotServed(other.name())),
    };
    wbxml_response(&answer)
}

/// MS-ASCMD §2.2.2: a phone with a wipe waiting is answered 140
/// (RemoteWipeRequested) by every command but Provision, which hands it
/// the wipe. An account-only wipe exists in 16.1 alone: an older phone is
/// refused instead (403), never wiped whole on a guess.
fn wipe_pending(
    request: &query::Request,
    login: &crate::login::Login,
) -> Result<Option<Element>, Refusal> {
    match login.wipe {
        None => Ok(None),
        Some(crate::login::Wipe::Account) if request.version != Version::V16_1 => {
            Err(Refusal::WipeNotSpoken(request.version))
        }
        Some(_) if request.command == Command::Provision => Ok(None),
        Some(_) => {
            tracing::warn!("remote wipe pending: the phone is told to provision");
            Ok(status_only(request.command, "140"))
        }
    }
}

/// MS-ASPROV §3.2.5.1: every command but Provision carries the phone's
/// current policy key, given with the current policy; 14.0 and later are
/// told in the command's own status (142: provision first; 144: that key
/// is not the phone's, or the policy changed since).
fn unprovisioned(
    request: &query::Request,
    login: &crate::login::Login,
    policy_digest: &str,
) -> Option<Element> {
    if request.command.skips_policy() {
        return None;
    }
    let code = match request.policy_key {
        None => "142",
        Some(key) if login.policy_key == Some(key) && login.policy_digest == policy_digest => {
            return None;
        }
        Some(_) => "144",
    };
    tracing::info!(code, "phone not provisioned");
    status_only(request.command, code)
}

/// A served command's answer that is only its top-level status `code`.
fn status_only(command: Command, code: &str) -> Option<Element> {
    use pushmail_wbxml::tag;
    let (root, status) = match command {
        Command::Settings => (tag("Settings", "Settings"), tag("Settings", "Status")),
        Command::FolderSync => (
            tag("FolderHierarchy", "FolderSync"),
            tag("FolderHierarchy", "Status"),
        ),
        Command::FolderCreate => (
            tag("FolderHierarchy", "FolderCreate"),
            tag("FolderHierarchy", "Status"),
        ),
        Command::FolderUpdate => (
            tag("FolderHierarchy", "FolderUpdate"),
            tag("FolderHierarchy", "Status"),
        ),
        Command::FolderDelete => (
            tag("FolderHierarchy", "FolderDelete"),
            tag("FolderHierarchy", "Status"),
        ),
        Command::Sync => (tag("AirSync", "Sync"), tag("AirSync", "Status")),
        Command::GetItemEstimate => (
            tag("GetItemEstimate", "GetItemEstimate"),
            tag("GetItemEstimate", "Status"),
        ),
        Command::ItemOperations => (
            tag("ItemOperations", "ItemOperations"),
            tag("ItemOperations", "Status"),
        ),
        Command::MoveItems => (tag("Move", "MoveItems"), tag("Move", "Status")),
        Command::Ping => (tag("Ping", "Ping"), tag("Ping", "Status")),
        Command::Search => (tag("Search", "Search"), tag("Search", "Status")),
        Command::Find => (tag("Find", "Find"), tag("Find", "Status")),
        Command::ResolveRecipients => (
            tag("ResolveRecipients", "ResolveRecipients"),
            tag("ResolveRecipients", "Status"),
        ),
        Command::SendMail => (tag("ComposeMail", "SendMail"), tag("ComposeMail", "Status")),
        Command::SmartReply => (
            tag("ComposeMail", "SmartReply"),
            tag("ComposeMail", "Status"),
        ),
        Command::SmartForward => (
            tag("ComposeMail", "SmartForward"),
            tag("ComposeMail", "Status"),
        ),
        // Commands not served never get this far.
        _ => return None,
    };
    Some(Element::of(root).with(Element::text_of(status, code)))
}

fn wbxml_response(answer: &Element) -> Result<Response, Refusal> {
    let bytes = pushmail_wbxml::encode(answer).map_err(Refusal::Encode)?;
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(WBXML));
    server_headers(headers);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_reserves_little_for_a_held_request() {
        // What the dispatch of a command keeps on top of the command's own
        // (boxed) state while a Ping is held. The function item names the
        // future's type; nothing runs.
        fn of<'a, F: std::future::Future>(
            _: fn(&'a Front, &'a crate::login::Login, &'a query::Request, &'a Element) -> F,
        ) -> usize {
            std::mem::size_of::<F>()
        }
        let bytes = of(command);
        assert!(bytes <= 256, "{bytes} bytes");
    }

    #[test]
    fn every_served_command_but_provision_can_be_told_a_status_alone() {
        // A wipe or a missing key must stop every command before it runs:
        // a command with no status-only answer would run instead.
        for command in SERVED {
            let told = status_only(*command, "140");
            assert_eq!(
                told.is_none(),
                *command == Command::Provision,
                "{}",
                command.name()
            );
        }
    }
}
