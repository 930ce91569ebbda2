//! The session service as Ping uses it: a held Ping is a hold on a
//! session node, so dispatch reaches the phone through the directory as it
//! reaches any held connection (see `docs/architecture.md`).

use std::time::Duration;

use pushmail_common::grpc::TracedChannel;
use pushmail_proto::session::v1 as pb;
use pushmail_proto::session::v1::session_service_client::SessionServiceClient;

use crate::login::Login;

/// Slack past the interval before a hold whose node never answers is
/// given up as lost (the node ends it itself at the interval).
const SLACK: Duration = Duration::from_secs(30);

/// How a hold ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Woken {
    /// Something came for these watched mailboxes (raw names); all of them
    /// when `resync`.
    Changed {
        /// The mailboxes.
        mailboxes: Vec<String>,
        /// Every watched mailbox is to be synced.
        resync: bool,
    },
    /// The interval ended with nothing, or the node let the phone go
    /// (draining, or a newer Ping holds it): the phone pings again.
    Expired,
}

/// Why a Ping could not be held.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The session service refused or could not be reached.
    #[error("the session service is unavailable")]
    Unavailable(#[from] tonic::Status),
    /// The hold's stream ended without saying how.
    #[error("the hold ended without an answer")]
    Lost,
    /// The device was revoked while it was held.
    #[error("the device was revoked")]
    Revoked,
}

/// The session service, with activesync's credential.
#[derive(Debug, Clone)]
pub struct Push(SessionServiceClient<TracedChannel>);

impl Push {
    /// Over `channel`.
    pub fn new(channel: TracedChannel) -> Self {
        Self(SessionServiceClient::new(channel))
    }

    /// Holds the phone of `login` for `interval`, watching `mailboxes`
    /// (raw names), until something comes for one of them or the
    /// interval ends.
    pub async fn hold(
        &self,
        login: &Login,
        interval: Duration,
        mailboxes: Vec<String>,
    ) -> Result<Woken, PushError> {
        let request = pb::HoldRequest {
            tenant_id: login.tenant.clone(),
            device_id: login.device.clone(),
            heartbeat_seconds: u32::try_from(interval.as_secs()).unwrap_or(u32::MAX),
            mailboxes,
        };
        let mut stream = self.0.clone().hold(request).await?.into_inner();
        let end = match tokio::time::timeout(interval + SLACK, stream.message()).await {
            Ok(Ok(Some(end))) => end,
            Ok(Err(status)) => return Err(status.into()),
            Ok(Ok(None)) | Err(_) => return Err(PushError::Lost),
        };
        Ok(match end.reason() {
            pb::HoldReason::Changed => Woken::Changed {
                mailboxes: end.mailboxes,
                resync: end.resync,
            },
            pb::HoldReason::Revoked => return Err(PushError::Revoked),
            pb::HoldReason::Expired
            | pb::HoldReason::Draining
            | pb::HoldReason::TakenOver
            | pb::HoldReason::Unspecified => Woken::Expired,
        })
    }
}
