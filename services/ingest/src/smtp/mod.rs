//! The SMTP and LMTP receivers for enterprise mail servers that forward to
//! us: recipients map to accounts through binding, and a message is
//! acknowledged only once its `MailArrived` events are durable, so the
//! forwarding server keeps (and retries) anything we could not publish.
//!
//! No `Received:` header is added: the stored message must stay
//! byte-identical across a sender's retries, since its content hash is the
//! idempotency key of a mail without a Message-ID.

mod auth;
mod command;
mod conn;
mod lines;
mod recipients;

use std::sync::Arc;
use std::time::Duration;

use pushmail_common::listen::{self, ConnectionLimits, Gate, Refused};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use auth::RelayPolicy;
pub(crate) use auth::{BindingRelayAuth, RelayAuth};
pub(crate) use recipients::BindingRecipients;
pub use recipients::{Recipients, ResolveError, Resolved};

use crate::arrival::Announcer;

/// Which dialect a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// RFC 5321: one reply per message.
    Smtp,
    /// RFC 2033: one reply per recipient after DATA.
    Lmtp,
}

/// Limits and names of a receiver.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Our name in the greeting and EHLO.
    pub hostname: String,
    /// Largest message accepted (announced as `SIZE`).
    pub max_message_bytes: usize,
    /// Recipients per message.
    pub max_recipients: usize,
    /// Connections served at once; more are told to come back later.
    pub max_connections: usize,
    /// Connections served at once from one address (IPv6: one /64).
    pub max_connections_per_peer: usize,
    /// Deadline of each read and write.
    pub timeout: Duration,
    /// Refuse MAIL before STARTTLS.
    pub require_tls: bool,
    /// Accept a recipient only from a connection its tenant authorised
    /// (relay login, client certificate or source network).
    pub require_auth: bool,
}

struct Shared {
    mode: Mode,
    settings: Settings,
    recipients: Arc<dyn Recipients>,
    /// Relay logins (`AUTH`), offered over TLS when set.
    relay_auth: Option<Arc<dyn RelayAuth>>,
    announcer: Announcer,
    tls: Option<TlsAcceptor>,
}

/// A listening receiver.
pub struct Receiver {
    shared: Arc<Shared>,
    listener: TcpListener,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("mode", &self.shared.mode)
            .field("settings", &self.shared.settings)
            .field("tls", &self.shared.tls.is_some())
            .finish()
    }
}

impl Receiver {
    /// A receiver on a bound listener.
    pub fn new(
        mode: Mode,
        listener: TcpListener,
        settings: Settings,
        recipients: Arc<dyn Recipients>,
        announcer: Announcer,
        tls: Option<TlsAcceptor>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                mode,
                settings,
                recipients,
                relay_auth: None,
                announcer,
                tls,
            }),
            listener,
        }
    }

    /// Offers `AUTH` (over TLS), checked by `relay_auth`.
    pub(crate) fn with_relay_auth(mut self, relay_auth: Arc<dyn RelayAuth>) -> Self {
        if let Some(shared) = Arc::get_mut(&mut self.shared) {
            shared.relay_auth = Some(relay_auth);
        }
        self
    }

    /// Accepts until `shutdown`, then waits for the conversations (each
    /// closes at its next command, with a 421).
    pub async fn run(self, shutdown: CancellationToken) {
        let settings = &self.shared.settings;
        let gate = Gate::new(
            match self.shared.mode {
                Mode::Smtp => "smtp",
                Mode::Lmtp => "lmtp",
            },
            ConnectionLimits {
                max_connections: settings.max_connections,
                max_connections_per_peer: settings.max_connections_per_peer,
            },
        );
        let conversations = TaskTracker::new();
        loop {
            let (tcp, slot, peer) = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listen::accept(&self.listener, &gate, refusal) => accepted,
            };
            let shared = self.shared.clone();
            let shutdown = shutdown.clone();
            conversations.spawn(async move {
                conn::serve(shared, tcp, peer, shutdown).await;
                drop(slot);
            });
        }
        conversations.close();
        conversations.wait().await;
    }
}

/// What a connection past a cap is told before it is closed (written
/// without waiting, so a flood costs no task per refused socket).
fn refusal(why: Refused) -> &'static [u8] {
    match why {
        Refused::Full => b"421 4.3.2 Too many connections, try again later\r\n",
        Refused::PeerFull => b"421 4.7.0 Too many connections from your address\r\n",
    }
}
