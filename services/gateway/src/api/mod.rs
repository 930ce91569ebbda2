//! The REST/JSON admin API over binding (`/api/v1/…`), for integrators'
//! scripts and the portal. Every call is made to binding with the caller's
//! own credential, so tenant isolation is binding's, enforced once; the
//! gateway adds sessions, rate limits, request ids, JSON errors and the
//! OpenAPI document (`/api/v1/openapi.json`), generated from the handlers
//! and the types they read and write.

mod app_passwords;
mod extract;
mod handlers;
pub mod limit;
mod openapi;
mod outbound;
mod params;
mod phones;
pub mod session;
mod tenancy;
mod wire;

use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, on};
use pushmail_common::grpc::TracedChannel;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::session::v1::session_service_client::SessionServiceClient;

/// Largest request body, bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Shared by the API's handlers.
pub struct Api {
    pub(crate) admin: AdminServiceClient<TracedChannel>,
    pub(crate) session: SessionServiceClient<TracedChannel>,
    pub(crate) sessions: session::Sessions,
    pub(crate) limiter: limit::Limiter,
}

/// One route: the router is built from these and the OpenAPI document
/// lists exactly these (a test holds the two together).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    /// Callable without credentials.
    pub public: bool,
}

const fn route(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        public: false,
    }
}

const T: &str = "/api/v1/tenants/{tenant}";

/// Every route, in the order the document lists them.
pub const ROUTES: &[Route] = &[
    Route {
        public: true,
        ..route("GET", "/api/v1/openapi.json")
    },
    Route {
        public: true,
        ..route("POST", "/api/v1/session")
    },
    Route {
        public: true,
        ..route("DELETE", "/api/v1/session")
    },
    route("GET", "/api/v1/me"),
    route("POST", "/api/v1/tenants"),
    route("GET", "/api/v1/tenants/{tenant}/accounts"),
    route("POST", "/api/v1/tenants/{tenant}/accounts"),
    route("GET", "/api/v1/tenants/{tenant}/accounts/{account}"),
    route("PATCH", "/api/v1/tenants/{tenant}/accounts/{account}"),
    route("DELETE", "/api/v1/tenants/{tenant}/accounts/{account}"),
    route(
        "GET",
        "/api/v1/tenants/{tenant}/accounts/{account}/bindings",
    ),
    route(
        "POST",
        "/api/v1/tenants/{tenant}/accounts/{account}/bindings",
    ),
    route("POST", "/api/v1/tenants/{tenant}/bindings/{binding}/verify"),
    route("POST", "/api/v1/tenants/{tenant}/bindings/{binding}/revoke"),
    route(
        "GET",
        "/api/v1/tenants/{tenant}/bindings/{binding}/preferences",
    ),
    route(
        "PUT",
        "/api/v1/tenants/{tenant}/bindings/{binding}/preferences",
    ),
    route("GET", "/api/v1/tenants/{tenant}/devices"),
    route("POST", "/api/v1/tenants/{tenant}/devices"),
    route("POST", "/api/v1/tenants/{tenant}/devices/{device}/token"),
    route("POST", "/api/v1/tenants/{tenant}/devices/{device}/revoke"),
    route(
        "GET",
        "/api/v1/tenants/{tenant}/accounts/{account}/deliveries",
    ),
    route("GET", "/api/v1/tenants/{tenant}/traffic"),
    route("GET", "/api/v1/tenants/{tenant}/keys"),
    route("POST", "/api/v1/tenants/{tenant}/keys"),
    route("POST", "/api/v1/tenants/{tenant}/keys/{key}/revoke"),
    route("GET", "/api/v1/tenants/{tenant}/domains"),
    route("PUT", "/api/v1/tenants/{tenant}/domains"),
    route(
        "GET",
        "/api/v1/tenants/{tenant}/accounts/{account}/app-passwords",
    ),
    route(
        "POST",
        "/api/v1/tenants/{tenant}/accounts/{account}/app-passwords",
    ),
    route(
        "POST",
        "/api/v1/tenants/{tenant}/app-passwords/{app_password}/revoke",
    ),
    route(
        "POST",
        "/api/v1/tenants/{tenant}/app-passwords/{app_password}/wipe",
    ),
    route("GET", "/api/v1/tenants/{tenant}/relay/credentials"),
    route("POST", "/api/v1/tenants/{tenant}/relay/credentials"),
    route(
        "POST",
        "/api/v1/tenants/{tenant}/relay/credentials/{credential}/revoke",
    ),
    route("GET", "/api/v1/tenants/{tenant}/relay/policy"),
    route("PUT", "/api/v1/tenants/{tenant}/relay/policy"),
    route("GET", "/api/v1/tenants/{tenant}/relay/submission"),
    route("PUT", "/api/v1/tenants/{tenant}/relay/submission"),
    route("DELETE", "/api/v1/tenants/{tenant}/relay/submission"),
    route("GET", "/api/v1/tenants/{tenant}/sms"),
    route("GET", "/api/v1/sms"),
];

/// The API's router (its state applied).
pub fn router(api: Arc<Api>) -> Router {
    let mut router = Router::new();
    for r in ROUTES {
        router = router.route(r.path, method_router(r));
    }
    router
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

fn method_router(r: &Route) -> MethodRouter<Arc<Api>> {
    use handlers as h;
    let method = |m: &str| Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET);
    let filter = axum::routing::MethodFilter::try_from(method(r.method))
        .unwrap_or(axum::routing::MethodFilter::GET);
    match (r.method, r.path.strip_prefix(T).unwrap_or(r.path)) {
        ("GET", "/api/v1/openapi.json") => on(filter, h::openapi),
        ("POST", "/api/v1/session") => on(filter, h::sign_in),
        ("DELETE", "/api/v1/session") => on(filter, h::sign_out),
        ("GET", "/api/v1/me") => on(filter, h::me),
        ("POST", "/api/v1/tenants") => on(filter, h::create_tenant),
        ("GET", "/accounts") => on(filter, h::list_accounts),
        ("POST", "/accounts") => on(filter, h::create_account),
        ("GET", "/accounts/{account}") => on(filter, h::get_account),
        ("PATCH", "/accounts/{account}") => on(filter, phones::update_account),
        ("DELETE", "/accounts/{account}") => on(filter, h::delete_account),
        ("GET", "/accounts/{account}/bindings") => on(filter, h::list_bindings),
        ("POST", "/accounts/{account}/bindings") => on(filter, h::start_binding),
        ("POST", "/bindings/{binding}/verify") => on(filter, h::verify_binding),
        ("POST", "/bindings/{binding}/revoke") => on(filter, h::revoke_binding),
        ("GET", "/bindings/{binding}/preferences") => on(filter, h::get_preferences),
        ("PUT", "/bindings/{binding}/preferences") => on(filter, h::put_preferences),
        ("GET", "/devices") => on(filter, h::list_devices),
        ("POST", "/devices") => on(filter, phones::register_device),
        ("POST", "/devices/{device}/token") => on(filter, phones::issue_token),
        ("POST", "/devices/{device}/revoke") => on(filter, h::revoke_device),
        ("GET", "/traffic") => on(filter, h::traffic),
        ("GET", "/accounts/{account}/deliveries") => on(filter, h::deliveries),
        ("GET", "/keys") => on(filter, tenancy::list_keys),
        ("POST", "/keys") => on(filter, tenancy::create_key),
        ("POST", "/keys/{key}/revoke") => on(filter, tenancy::revoke_key),
        ("GET", "/domains") => on(filter, tenancy::get_domains),
        ("PUT", "/domains") => on(filter, tenancy::put_domains),
        ("GET", "/accounts/{account}/app-passwords") => on(filter, app_passwords::list),
        ("POST", "/accounts/{account}/app-passwords") => on(filter, app_passwords::create),
        ("POST", "/app-passwords/{app_password}/revoke") => on(filter, app_passwords::revoke),
        ("POST", "/app-passwords/{app_password}/wipe") => on(filter, app_passwords::wipe),
        ("GET", "/relay/credentials") => on(filter, tenancy::list_credentials),
        ("POST", "/relay/credentials") => on(filter, tenancy::create_credential),
        ("POST", "/relay/credentials/{credential}/revoke") => {
            on(filter, tenancy::revoke_credential)
        }
        ("GET", "/relay/policy") => on(filter, tenancy::get_policy),
        ("PUT", "/relay/policy") => on(filter, tenancy::put_policy),
        ("GET", "/relay/submission") => on(filter, outbound::get),
        ("PUT", "/relay/submission") => on(filter, outbound::put),
        ("DELETE", "/relay/submission") => on(filter, outbound::delete),
        ("GET", "/sms") => on(filter, phones::tenant_sms),
        ("GET", "/api/v1/sms") => on(filter, phones::all_sms),
        // A documented route without a handler is a build-time mistake the
        // route test catches (it answers 501 rather than pretending).
        _ => on(filter, h::not_built),
    }
}
