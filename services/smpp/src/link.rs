//! A link to one SMS centre: a session kept bound (reconnecting with
//! backoff and jitter), paced by its throttle, and the verdict of each
//! submit sorted into what to retry and what to give up on.

use pushmail_common::backoff::Backoff;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::SmscConfig;
use crate::pdu::{Address, Bind, PduError, Status, Submit};
use crate::session::{Inbound, Session, SessionError, SessionSettings};
use crate::state::StateError;
use crate::throttle::Throttle;

/// Submits by SMS centre and result.
pub(crate) const METRIC_SUBMITS: &str = "pushmail_smpp_submits_total";
/// 1 while the link to an SMS centre is bound.
pub(crate) const METRIC_BOUND: &str = "pushmail_smpp_bound";

/// Why a submit did not go through.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    /// Try again later.
    #[error("SMS centre {smsc} unavailable")]
    Unavailable {
        smsc: String,
        #[source]
        why: Unavailable,
    },
    /// The SMS centre refused this message: retrying will not help.
    #[error("SMS centre {smsc} refused the message: {status}")]
    Rejected { smsc: String, status: Status },
    /// The message cannot be put in a submit_sm.
    #[error("not submittable")]
    Invalid(#[source] PduError),
}

/// Why an SMS centre could not take a submit now.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unavailable {
    /// No session bound within the bind wait.
    #[error("not bound")]
    NotBound,
    /// ESME_RTHROTTLED or ESME_RMSGQFUL: the link was paused.
    #[error("busy: {0}")]
    Busy(Status),
    /// A status after which the same submit may succeed later.
    #[error("transient refusal: {0}")]
    Transient(Status),
    /// The session timed out, closed or sent an unreadable answer.
    #[error(transparent)]
    Session(SessionError),
    /// The SMS centre took the part, but it could not be recorded.
    #[error("submit progress not recorded")]
    State(#[source] StateError),
}

/// Times a busy answer (ESME_RTHROTTLED, ESME_RMSGQFUL) is waited out in
/// place before the record goes back to the consumer's backoff.
const BUSY_RETRIES: u32 = 5;

/// One SMS centre.
#[derive(Debug)]
pub(crate) struct Link {
    name: String,
    source: Address,
    settings: SessionSettings,
    throttle: Throttle,
    throttled_pause: Duration,
    reconnect: Backoff,
    bind_wait: Duration,
    current: watch::Sender<Option<Arc<Session>>>,
}

impl Link {
    /// A link not yet connected; [`Link::run`] connects it.
    pub(crate) fn new(config: &SmscConfig, bind_wait: Duration) -> Self {
        Self {
            name: config.name.clone(),
            source: Address {
                ton: config.source_ton,
                npi: config.source_npi,
                addr: config.source_addr.clone(),
            },
            settings: SessionSettings {
                address: config.address.clone(),
                bind: Bind {
                    system_id: config.system_id.clone(),
                    password: config.password.expose().to_owned(),
                    system_type: config.system_type.clone(),
                    addr_ton: config.source_ton,
                    addr_npi: config.source_npi,
                    address_range: String::new(),
                },
                window: config.window,
                response_timeout: Duration::from_millis(config.response_timeout_ms),
                enquire_link: Duration::from_secs(config.enquire_link_seconds),
            },
            throttle: Throttle::new(config.submits_per_second, config.burst),
            throttled_pause: Duration::from_millis(config.throttled_pause_ms),
            reconnect: Backoff::new(
                Duration::from_millis(config.reconnect_initial_ms),
                Duration::from_millis(config.reconnect_max_ms),
            ),
            bind_wait,
            current: watch::Sender::new(None),
        }
    }

    /// The SMS centre's name in config.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// Our sender address at this SMS centre.
    pub(crate) fn source(&self) -> &Address {
        &self.source
    }

    /// True while a session is bound.
    pub(crate) fn is_bound(&self) -> bool {
        self.current.borrow().as_ref().is_some_and(|s| s.is_open())
    }

    /// Keeps the link bound until `shutdown`, then unbinds.
    pub(crate) async fn run(&self, inbound: mpsc::Sender<Inbound>, shutdown: CancellationToken) {
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let opened = tokio::select! {
                opened = Session::open(&self.name, &self.settings, inbound.clone()) => opened,
                () = shutdown.cancelled() => break,
            };
            match opened {
                Ok(session) => {
                    failures = 0;
                    self.current.send_replace(Some(session.clone()));
                    metrics::gauge!(METRIC_BOUND, "smsc" => self.name.clone()).set(1.0);
                    tokio::select! {
                        () = session.closed() => {}
                        () = shutdown.cancelled() => session.unbind().await,
                    }
                    self.current.send_replace(None);
                    metrics::gauge!(METRIC_BOUND, "smsc" => self.name.clone()).set(0.0);
                }
                Err(err) => {
                    // Jittered: replicas do not reconnect in step after an SMSC restart.
                    failures = failures.saturating_add(1);
                    let wait = self.reconnect.delay(failures);
                    tracing::warn!(smsc = %self.name, error = %pushmail_common::report::Report(&err), retry_in = ?wait, "SMPP bind failed");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled() => break,
                    }
                }
            }
        }
    }

    /// Submits one message: the SMS centre's message id. A throttled or
    /// full SMS centre is waited out here, the link paused, a few times
    /// before the caller is told to retry later.
    pub(crate) async fn submit(&self, message: &Submit) -> Result<String, SubmitError> {
        let mut busy = 0;
        loop {
            match self.submit_once(message).await {
                Err(SubmitError::Unavailable {
                    why: Unavailable::Busy(_),
                    ..
                }) if busy < BUSY_RETRIES => {
                    busy += 1;
                }
                result => return result,
            }
        }
    }

    async fn submit_once(&self, message: &Submit) -> Result<String, SubmitError> {
        let session = self.session().await?;
        self.throttle.acquire().await;
        let result = match session.submit(message).await {
            Ok(Ok(id)) => Ok(id),
            Ok(Err(status)) if status.is_busy() => {
                self.throttle.pause(self.throttled_pause);
                tracing::debug!(smsc = %self.name, %status, "SMS centre busy; link paused");
                Err(self.unavailable(Unavailable::Busy(status)))
            }
            Ok(Err(status)) if status.is_transient() => {
                Err(self.unavailable(Unavailable::Transient(status)))
            }
            Ok(Err(status)) => Err(SubmitError::Rejected {
                smsc: self.name.clone(),
                status,
            }),
            Err(SessionError::Pdu(err)) => Err(SubmitError::Invalid(err)),
            Err(err) => Err(self.unavailable(Unavailable::Session(err))),
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(SubmitError::Unavailable { .. }) => "retry",
            Err(_) => "rejected",
        };
        metrics::counter!(METRIC_SUBMITS, "smsc" => self.name.clone(), "result" => outcome)
            .increment(1);
        result
    }

    /// The bound session, waiting up to `bind_wait` for one.
    async fn session(&self) -> Result<Arc<Session>, SubmitError> {
        let mut watch = self.current.subscribe();
        let found = tokio::time::timeout(
            self.bind_wait,
            watch.wait_for(|s| s.as_ref().is_some_and(|s| s.is_open())),
        )
        .await;
        let session = match found {
            Ok(Ok(current)) => current.as_ref().cloned(),
            _ => None,
        };
        session.ok_or_else(|| self.unavailable(Unavailable::NotBound))
    }

    /// `why` the submit should be tried again later, from this SMS centre.
    pub(crate) fn unavailable(&self, why: Unavailable) -> SubmitError {
        SubmitError::Unavailable {
            smsc: self.name.clone(),
            why,
        }
    }
}
