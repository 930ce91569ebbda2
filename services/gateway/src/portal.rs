//! The tenant admin portal: a static page and a script (plain JavaScript,
//! no build step: `services/gateway/portal/`) compiled into the binary and
//! served with a strict content security policy. All it does, it does
//! through the REST API.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const INDEX: &str = include_str!("../portal/index.html");
const SCRIPT: &str = include_str!("../portal/app.js");
const LIFECYCLE: &str = include_str!("../portal/lifecycle.js");
const STYLE: &str = include_str!("../portal/app.css");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `/portal` and its assets; `/` leads there.
pub(crate) fn router() -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { Redirect::to("/portal") }))
        .route(
            "/portal",
            get(|| async { asset("text/html; charset=utf-8", INDEX) }),
        )
        .route(
            "/portal/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/portal/lifecycle.js",
            get(|| async { asset("text/javascript; charset=utf-8", LIFECYCLE) }),
        )
        .route(
            "/portal/app.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
}
