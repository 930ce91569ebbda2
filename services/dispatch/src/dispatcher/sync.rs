//! A mailbox sync (`MailArrived.mailbox_sync`): ingest lost track of a
//! mailbox (its marks were gone, so it took the server's list as the
//! baseline and announced nothing), and the account's devices are told to
//! sync it instead.
//!
//! Not a mail, so none of a mail's policy applies: no sender to black-list,
//! nothing to hold for quiet hours or to count against the tenant's push
//! rate, no content to shape. It goes to each device with a push client
//! through the outbox and the held connection like any notification
//! (ACKED, or QUEUED and replayed when the device connects), but it never
//! causes an SMS: no wake-up for a device that is away, no notice for a
//! number without a push client (those get nothing). An acked sync counts
//! as a push in the account's traffic (it is one, bytes to the phone); it
//! is never charged as an SMS.

use pushmail_proto::events::v1 as events;
use pushmail_proto::session::v1 as session;

use super::{Dispatcher, Failure, Target};

impl Dispatcher {
    /// Every push client's sync notification for `event`.
    pub(super) async fn sync(
        &self,
        tenant: &str,
        event: &events::MailArrived,
    ) -> Result<(), Failure> {
        let targets = self.targets(tenant, &event.account_id).await?;
        let outcomes = futures::future::join_all(
            targets
                .iter()
                .filter(|target| target.push_client && !target.device.is_empty())
                // Queued or acked, it is settled: a device away syncs
                // when it connects and gets the replay.
                .map(|target| async {
                    self.push(target, notification(event, target))
                        .await
                        .map(drop)
                }),
        )
        .await;
        outcomes.into_iter().collect()
    }
}

/// The sync notification of `event` for `target`: the account and mailbox,
/// no mail fields.
fn notification(event: &events::MailArrived, target: &Target) -> session::Notification {
    session::Notification {
        tenant_id: target.tenant.clone(),
        device_id: target.device.clone(),
        collapse_key: collapse_key(&event.account_id, &event.mailbox),
        idempotency_key: event.idempotency_key.clone(),
        account_id: event.account_id.clone(),
        mailbox: event.mailbox.clone(),
        received_at: event.received_at,
        traceparent: super::traceparent(event),
        sync: true,
        ..Default::default()
    }
}

/// Syncs of one mailbox merge with each other (unacked, within the outbox's
/// coalescing window) but never with a mail, whose key is
/// `<account>/<mailbox>`. A prefix, not a suffix: a mailbox may be named
/// `INBOX/sync`, and account ids are UUIDs, which never start `sync:`.
fn collapse_key(account: &str, mailbox: &str) -> String {
    format!("sync:{account}/{mailbox}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use pushmail_common::bus::EventContext;

    use super::*;
    use crate::policy::Policy;

    fn target(push_client: bool) -> Target {
        Target {
            tenant: "t1".to_owned(),
            account: "a1".to_owned(),
            device: "d1".to_owned(),
            msisdn: "8613800000000".to_owned(),
            push_client,
            policy: Arc::new(Policy::new(None)),
        }
    }

    fn sync_event() -> events::MailArrived {
        let mut meta = EventContext::new("t1".to_owned()).meta(1_000);
        meta.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".to_owned();
        events::MailArrived {
            meta: Some(meta),
            account_id: "a1".to_owned(),
            mailbox: "INBOX".to_owned(),
            idempotency_key: "sync:a1:1764160496789".to_owned(),
            received_at: Some(pushmail_common::clock::timestamp(1_764_160_496_789)),
            source: events::IngestSource::Pop3.into(),
            mailbox_sync: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_sync_names_the_mailbox_and_carries_no_mail() {
        let n = notification(&sync_event(), &target(true));
        assert!(n.sync);
        assert_eq!(
            (
                n.tenant_id.as_str(),
                n.device_id.as_str(),
                n.account_id.as_str(),
                n.mailbox.as_str(),
                n.idempotency_key.as_str(),
                n.collapse_key.as_str(),
            ),
            (
                "t1",
                "d1",
                "a1",
                "INBOX",
                "sync:a1:1764160496789",
                "sync:a1/INBOX"
            )
        );
        assert_eq!(
            n.received_at,
            Some(pushmail_common::clock::timestamp(1_764_160_496_789))
        );
        assert!(n.traceparent.starts_with("00-0af7"), "{n:?}");
        assert_eq!(
            (
                n.from,
                n.subject.as_str(),
                n.snippet.as_str(),
                n.message_url.as_str()
            ),
            (None, "", "", "")
        );
        assert!(n.attachments.is_empty());
        assert_eq!((n.sequence, n.digest_count, n.outbox_generation), (0, 0, 0));
    }

    #[test]
    fn a_sync_never_merges_into_a_mail_of_its_mailbox() {
        let sync = collapse_key("a1", "INBOX");
        let mail_key = |mailbox: &str| format!("a1/{mailbox}");
        for mailbox in ["INBOX", "INBOX/sync", "sync", "sync:a1/INBOX", ""] {
            assert_ne!(sync, mail_key(mailbox), "{mailbox}");
        }
        assert_eq!(
            sync,
            collapse_key("a1", "INBOX"),
            "syncs of a mailbox merge"
        );
        assert_ne!(sync, collapse_key("a1", "Sent"));
        assert_ne!(sync, collapse_key("a2", "INBOX"));
    }

    #[test]
    fn a_sync_without_tenant_account_or_key_is_a_dead_letter() {
        assert_eq!(super::super::tenant_of(&sync_event()), Ok("t1".to_owned()));
        let unusable = [
            events::MailArrived {
                meta: None,
                ..sync_event()
            },
            events::MailArrived {
                account_id: String::new(),
                ..sync_event()
            },
            events::MailArrived {
                idempotency_key: String::new(),
                ..sync_event()
            },
        ];
        for event in &unusable {
            assert!(
                matches!(super::super::tenant_of(event), Err(Failure::Permanent(_))),
                "{event:?}"
            );
        }
    }
}
