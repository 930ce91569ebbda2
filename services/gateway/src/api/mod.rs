//! The REST/JSON admin API over binding (`/api/v1/…`), for integrators'
//! scripts and the portal. Every call is made to binding with the caller's
//! own credential, so tenant isolation is binding's, enforced once; the
//! gateway adds sessions, rate limits, request ids, JSON errors and the
//! OpenAPI document (`/api/v1/openapi.json`), which is built from the
//! same route table the router is, so the two cannot drift.

mod extract;
mod handlers;
pub mod limit;
mod openapi;
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

/// One documented route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Request body schema (components/schemas).
    pub request: Option<&'static str>,
    /// Response schema; `None`: no content.
    pub response: Option<&'static str>,
    /// Query parameters.
    pub query: &'static [&'static str],
    /// Callable without credentials.
    pub public: bool,
}

const fn route(method: &'static str, path: &'static str, summary: &'static str) -> Route {
    Route {
        method,
        path,
        summary,
        request: None,
        response: None,
        query: &[],
        public: false,
    }
}

const T: &str = "/api/v1/tenants/{tenant}";

/// Every route, in the order the document lists them.
pub const ROUTES: &[Route] = &[
    Route {
        public: true,
        response: Some("OpenApi"),
        ..route("GET", "/api/v1/openapi.json", "This document")
    },
    Route {
        public: true,
        request: Some("SignIn"),
        response: Some("Me"),
        ..route(
            "POST",
            "/api/v1/session",
            "Sign in to the portal with an API key or operator token (sets the session cookie)",
        )
    },
    Route {
        public: true,
        ..route(
            "DELETE",
            "/api/v1/session",
            "Sign out (clears the session cookie)",
        )
    },
    Route {
        response: Some("Me"),
        ..route(
            "GET",
            "/api/v1/me",
            "Who the credential is: an operator, or which tenant",
        )
    },
    Route {
        request: Some("NewTenant"),
        response: Some("CreatedTenant"),
        ..route(
            "POST",
            "/api/v1/tenants",
            "Create a tenant (operators); its API key is shown once",
        )
    },
    Route {
        response: Some("AccountPage"),
        query: &["query", "page_size", "cursor"],
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/accounts",
            "List or search the tenant's accounts",
        )
    },
    Route {
        request: Some("NewAccount"),
        response: Some("Account"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/accounts",
            "Add an account",
        )
    },
    Route {
        response: Some("Account"),
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/accounts/{account}",
            "One account",
        )
    },
    Route {
        request: Some("AccountChange"),
        response: Some("Account"),
        ..route(
            "PATCH",
            "/api/v1/tenants/{tenant}/accounts/{account}",
            "Change an IMAP/POP3 account's server settings and/or password",
        )
    },
    Route {
        ..route(
            "DELETE",
            "/api/v1/tenants/{tenant}/accounts/{account}",
            "Delete an account and its bindings",
        )
    },
    Route {
        response: Some("BindingPage"),
        query: &["page_size", "cursor"],
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/accounts/{account}/bindings",
            "The account's phone numbers",
        )
    },
    Route {
        request: Some("NewBinding"),
        response: Some("Binding"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/accounts/{account}/bindings",
            "Bind a number: a code goes to it by SMS",
        )
    },
    Route {
        request: Some("Code"),
        response: Some("Binding"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/bindings/{binding}/verify",
            "Enter the code the number received",
        )
    },
    Route {
        response: Some("Binding"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/bindings/{binding}/revoke",
            "Unbind a number",
        )
    },
    Route {
        response: Some("Preferences"),
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/bindings/{binding}/preferences",
            "A binding's push preferences",
        )
    },
    Route {
        request: Some("NewPreferences"),
        response: Some("Preferences"),
        ..route(
            "PUT",
            "/api/v1/tenants/{tenant}/bindings/{binding}/preferences",
            "Replace a binding's push preferences",
        )
    },
    Route {
        response: Some("DevicePage"),
        query: &["msisdn", "page_size", "cursor"],
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/devices",
            "The devices on a number, with whether each is connected now",
        )
    },
    Route {
        request: Some("NewDevice"),
        response: Some("RegisteredDevice"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/devices",
            "Register a phone on a number verified in the tenant; its token is shown once",
        )
    },
    Route {
        response: Some("RegisteredDevice"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/devices/{device}/token",
            "A fresh token for a registered, unrevoked device (shown once)",
        )
    },
    Route {
        response: Some("Device"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/devices/{device}/revoke",
            "Revoke a device (its tokens stop working)",
        )
    },
    Route {
        response: Some("DeliveryPage"),
        query: &["page_size", "cursor"],
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/accounts/{account}/deliveries",
            "The account's delivery log, newest first",
        )
    },
    Route {
        response: Some("Traffic"),
        query: &["account", "from", "to"],
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/traffic",
            "An account's pushes, fetches and SMS per day (UTC)",
        )
    },
    Route {
        response: Some("ApiKeyList"),
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/keys",
            "The tenant's API keys (never the keys themselves)",
        )
    },
    Route {
        request: Some("NewApiKey"),
        response: Some("CreatedApiKey"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/keys",
            "Create an API key (shown once): rotate by creating one, then revoking the old with a grace",
        )
    },
    Route {
        request: Some("RevokeApiKey"),
        response: Some("ApiKey"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/keys/{key}/revoke",
            "Revoke an API key, at once or after a grace period (the last working key needs confirm_last_key)",
        )
    },
    Route {
        response: Some("Domains"),
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/domains",
            "The mail domains the tenant owns",
        )
    },
    Route {
        request: Some("Domains"),
        response: Some("Domains"),
        ..route(
            "PUT",
            "/api/v1/tenants/{tenant}/domains",
            "Assign the tenant's mail domains (operators): only it may forward addresses in them",
        )
    },
    Route {
        response: Some("RelayCredentialList"),
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/relay/credentials",
            "The tenant's SMTP relay credentials (never their passwords)",
        )
    },
    Route {
        request: Some("NewRelayCredential"),
        response: Some("CreatedRelayCredential"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/relay/credentials",
            "Create an SMTP relay credential (its password is shown once)",
        )
    },
    Route {
        response: Some("RelayCredential"),
        ..route(
            "POST",
            "/api/v1/tenants/{tenant}/relay/credentials/{credential}/revoke",
            "Revoke an SMTP relay credential",
        )
    },
    Route {
        response: Some("RelayPolicy"),
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/relay/policy",
            "Where the tenant's inbound mail may come from",
        )
    },
    Route {
        request: Some("RelayPolicy"),
        response: Some("RelayPolicy"),
        ..route(
            "PUT",
            "/api/v1/tenants/{tenant}/relay/policy",
            "Replace the relay policy: source networks and client-certificate fingerprints",
        )
    },
    Route {
        response: Some("SmsPage"),
        query: &["page_size", "cursor"],
        ..route(
            "GET",
            "/api/v1/tenants/{tenant}/sms",
            "The SMS outbox: the tenant's SMS, newest first (only where the platform keeps one: no SMS centre)",
        )
    },
    Route {
        response: Some("SmsPage"),
        query: &["page_size", "cursor"],
        ..route(
            "GET",
            "/api/v1/sms",
            "The SMS outbox: every SMS the credential may see (an operator: every tenant's), newest first",
        )
    },
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
        ("GET", "/relay/credentials") => on(filter, tenancy::list_credentials),
        ("POST", "/relay/credentials") => on(filter, tenancy::create_credential),
        ("POST", "/relay/credentials/{credential}/revoke") => {
            on(filter, tenancy::revoke_credential)
        }
        ("GET", "/relay/policy") => on(filter, tenancy::get_policy),
        ("PUT", "/relay/policy") => on(filter, tenancy::put_policy),
        ("GET", "/sms") => on(filter, phones::tenant_sms),
        ("GET", "/api/v1/sms") => on(filter, phones::all_sms),
        // A documented route without a handler is a build-time mistake the
        // route test catches (it answers 501 rather than pretending).
        _ => on(filter, h::not_built),
    }
}
