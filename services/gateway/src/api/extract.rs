//! Request parts with the API's own errors: who is calling (API key,
//! operator token or portal session, within its rate), JSON bodies and
//! query strings refused with a machine-readable 4xx.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;

use super::{Api, session};
use crate::reply::ApiError;

/// The header a portal request made with the session cookie must carry
/// when it changes something (a cross-site form cannot set it).
pub(super) const PORTAL_HEADER: &str = "x-pushmail-portal";

/// The caller's credential, passed on to binding as is: binding decides
/// what it may see (its tenant's, or everything for an operator).
#[derive(Clone)]
pub(super) struct Credential(pub(super) String);

impl FromRequestParts<std::sync::Arc<Api>> for Credential {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &std::sync::Arc<Api>,
    ) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let credential = match bearer {
            Some(token) => token.to_owned(),
            None => {
                let value =
                    session::cookie_value(&parts.headers).ok_or(ApiError::Unauthenticated(
                        "an API key is required (Authorization: Bearer <key>) or a portal session",
                    ))?;
                let credential = api
                    .sessions
                    .credential(value, pushmail_common::clock::now_ms())
                    .ok_or(ApiError::Unauthenticated(
                        "the portal session has ended; sign in again",
                    ))?;
                let safe = matches!(parts.method, Method::GET | Method::HEAD);
                if !safe && !parts.headers.contains_key(PORTAL_HEADER) {
                    return Err(ApiError::Forbidden(
                        "a change made with the portal session needs the X-Pushmail-Portal header",
                    ));
                }
                credential
            }
        };
        // Defence in depth: binding refuses service credentials on its admin
        // surface too, but a leaked one is never even passed on from here.
        if pushmail_common::service_identity::is_service_credential(&credential) {
            return Err(ApiError::Unauthenticated(
                "service credentials are not accepted by the public API",
            ));
        }
        api.limiter
            .admit(&credential, Peer::of(parts).0)
            .map_err(|wait| ApiError::RateLimited {
                retry_after_seconds: wait.as_secs().max(1),
            })?;
        Ok(Self(credential))
    }
}

/// The caller's address, as the listener accepted it (`None` where the
/// router is served without one, e.g. in a unit test).
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer(pub(super) Option<std::net::IpAddr>);

impl Peer {
    fn of(parts: &Parts) -> Self {
        Self(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|info| info.0.ip()),
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

impl Credential {
    /// A binding request made with this credential.
    pub(super) fn request<T>(&self, message: T) -> Result<tonic::Request<T>, ApiError> {
        let mut request = tonic::Request::new(message);
        let mut value: tonic::metadata::MetadataValue<_> = format!("Bearer {}", self.0)
            .parse()
            .map_err(|_| ApiError::Unauthenticated("the credential is not a valid header value"))?;
        value.set_sensitive(true);
        request.metadata_mut().insert("authorization", value);
        Ok(request)
    }
}

/// A JSON body: unknown fields, wrong types, bad syntax → 400; too large → 413.
pub(super) struct Body<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(JsonRejection::BytesRejection(e))
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
            {
                Err(ApiError::TooLarge(super::MAX_BODY))
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}

/// A query string: unknown parameters and bad values → 400.
pub(super) struct Params<T>(pub(super) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| ApiError::BadRequest(e.body_text()))
    }
}

/// An optional JSON body: none (or an empty one) is `T::default()`; a
/// present one is read as [`Body`] reads it.
pub(super) struct MaybeBody<T>(pub(super) T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for MaybeBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if request
            .headers()
            .get(header::CONTENT_LENGTH)
            .is_some_and(|l| l == "0")
            || (!request.headers().contains_key(header::CONTENT_TYPE)
                && !request.headers().contains_key(header::TRANSFER_ENCODING)
                && !request.headers().contains_key(header::CONTENT_LENGTH))
        {
            return Ok(Self(T::default()));
        }
        Body::<T>::from_request(request, state)
            .await
            .map(|Body(value)| Self(value))
    }
}
