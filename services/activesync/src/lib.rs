//! The ActiveSync service: Exchange ActiveSync (MS-ASHTTP, MS-ASCMD) for
//! the mail app a phone already has. `protocol` is the protocol's own
//! vocabulary (versions, commands, the request line); `login` asks
//! binding who a phone is; `http` is the edge every request passes;
//! each command has its module (`provision`, `settings`, `folder_sync`,
//! `sync`, `estimate`, `item_operations`, `move_items`, `compose_mail`),
//! `mail` is the mailbox service they read and
//! change, `ping` holds a phone's Ping through `push` (the session
//! service), as `sync_wait` holds a Sync that asks to wait, `email` the Email class's items, `sync_key` the keys phones
//! hold; `policy` is the device policy phones are given, and
//! `autodiscover` tells a phone where all this is.

pub mod autodiscover;
pub mod compose_mail;
pub mod config;
pub mod email;
mod error;
pub mod estimate;
pub mod find;
pub mod folder_edit;
pub mod folder_sync;
pub mod http;
pub mod item_operations;
pub mod login;
pub mod mail;
pub mod move_items;
pub mod peer;
pub mod ping;
pub mod policy;
pub mod protocol;
pub mod provision;
pub mod push;
pub mod resolve;
pub mod search;
pub mod search_mailbox;
pub mod settings;
pub mod sync;
pub mod sync_key;
pub mod sync_wait;

use std::sync::Arc;

use pushmail_common::health::Readiness;
use pushmail_common::host::{self, Host};
use pushmail_common::listen::tls::PlainOrTls;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

use login::{BindingLogins, Logins};

/// Service name, for telemetry and health.
pub const NAME: &str = "activesync";

/// What the service needs from outside.
pub struct Deps {
    /// Logins and provisioning.
    pub logins: Arc<dyn Logins>,
    /// Binding's channel, for readiness.
    pub binding: pushmail_common::grpc::TracedChannel,
    /// The mailbox service. Not a readiness check: with it down, logins
    /// and Provision still work and each command tells the phone to
    /// retry.
    pub mail: mail::Mail,
    /// The session service, which holds Pings. Not a readiness check
    /// either: with it down, Pings are told to retry and the rest works.
    pub push: push::Push,
}

impl Deps {
    /// Binding and the mailbox service over gRPC, with the service's
    /// credential.
    pub fn connect(config: &Config) -> Result<Self, Error> {
        let binding = config.binding.channel()?;
        Ok(Self {
            logins: Arc::new(BindingLogins(binding.clone())),
            binding,
            mail: mail::Mail::new(config.mailbox.channel()?),
            push: push::Push::new(config.session.channel()?),
        })
    }
}

/// Bound listeners (port 0 in tests).
pub struct Listeners {
    /// The phones' port.
    pub http: TcpListener,
    /// Admin HTTP.
    pub admin: TcpListener,
}

impl Listeners {
    /// Binds the configured addresses.
    pub async fn bind(config: &Config) -> Result<Self, Error> {
        Ok(Self {
            http: host::bind("http", config.server.http_addr).await?,
            admin: host::bind("admin", config.server.admin_addr).await?,
        })
    }
}

/// Production entry point.
pub async fn start(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let deps = Deps::connect(&config)?;
    let listeners = Listeners::bind(&config).await?;
    run(config, deps, listeners, Readiness::new(NAME), shutdown).await
}

/// Serves until `shutdown`.
pub async fn run(
    config: Config,
    deps: Deps,
    listeners: Listeners,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    use pushmail_common::config::ServiceConfig as _;
    config.validate()?;
    let tls = if config.tls.enabled {
        Some(config.tls.acceptor("tls.")?)
    } else {
        None
    };
    let mut host = Host::new(readiness, shutdown);
    host.readiness().add_upstream_check("binding", deps.binding);
    let front = Arc::new(http::Front {
        logins: deps.logins,
        mail: deps.mail,
        push: deps.push,
        stop: host.shutdown(),
        policy: config.policy.clone(),
        public_url: Some(config.public_url.trim().to_owned()).filter(|u| !u.is_empty()),
        policy_digest: config.policy.digest(),
        proxies: peer::TrustedProxies::parse(&config.trusted_proxies).map_err(|e| {
            pushmail_common::config::ConfigError::invalid("trusted_proxies", e.to_string())
        })?,
        limits: pushmail_wbxml::Limits {
            max_depth: config.wbxml.max_depth,
            max_nodes: config.wbxml.max_nodes,
            max_value: config.listeners.http.max_body_bytes,
        },
    });
    let limits = config.listeners.http;
    let phones = PlainOrTls::new("activesync", listeners.http, tls, &limits)?;
    let stop = host.shutdown();
    host.spawn("phones", async move {
        pushmail_common::listen::http::serve(phones, http::router(front), &limits, stop).await
    });
    host.serve_admin(listeners.admin, axum::Router::new());
    Ok(host.run().await?)
}
