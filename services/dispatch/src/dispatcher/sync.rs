//! A mailbox sync: ingest lost track of a mailbox
//! (`MailArrived.mailbox_sync`: its marks were gone, so it took the
//! server's list as the baseline and announced nothing), or one of the
//! account's phones changed it through the platform (`MailboxChanged`: a
//! flag, move, delete or send); the account's (other) devices are told to
//! sync it.
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

use pushmail_proto::session::v1 as session;

use super::Dispatcher;
use crate::domain::{Arrival, Change, Resync, Target};
use crate::failure::Failure;
use crate::ladder::{self, Errand};
use crate::policy::Verdict;
use crate::receipts::Receipts;

impl Dispatcher {
    /// Every push client's sync notification for `arrival`, but the phone
    /// that made the change.
    pub(super) async fn sync(
        &self,
        arrival: &Arrival,
        resync: &Resync,
        targets: &[Target],
        receipts: &Receipts,
    ) -> Result<(), Failure> {
        let others = targets.iter().filter(|target| match resync {
            Resync::Changed {
                origin: Some(origin),
                ..
            } => target.reach.device() != origin.as_str(),
            _ => true,
        });
        let outcomes = futures::future::join_all(others.map(|target| {
            // Queued or acked, it is settled: a phone away syncs when it
            // connects and gets the replay.
            let plan = ladder::plan(&target.reach, Errand::Sync, Verdict::Push, None);
            self.carry_out(
                plan,
                target,
                notification(arrival, resync, target),
                receipts,
            )
        }))
        .await;
        outcomes.into_iter().collect()
    }
}

/// The sync notification of `arrival` for `target`: the account and
/// mailbox, no mail fields.
fn notification(arrival: &Arrival, resync: &Resync, target: &Target) -> session::Notification {
    use pushmail_proto::common::v1::MailboxChange;
    let change = match resync {
        Resync::Lost => MailboxChange::Unspecified,
        Resync::Changed { change, .. } => match change {
            Change::Flags => MailboxChange::Flags,
            Change::Moved => MailboxChange::Moved,
            Change::Deleted => MailboxChange::Deleted,
            Change::Sent => MailboxChange::Sent,
        },
    };
    session::Notification {
        tenant_id: arrival.tenant.as_str().to_owned(),
        device_id: target.reach.device().to_owned(),
        collapse_key: collapse_key(arrival.account.as_str(), &arrival.mailbox),
        idempotency_key: arrival.key.as_str().to_owned(),
        account_id: arrival.account.as_str().to_owned(),
        mailbox: arrival.mailbox.clone(),
        received_at: arrival.received_at,
        traceparent: arrival.traceparent.clone(),
        sync: true,
        change: change.into(),
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
    use pushmail_proto::events::v1 as events;

    use super::*;
    use crate::domain::{AccountId, DeviceId, Kind, Msisdn, Reach, TenantId};
    use crate::policy::Policy;

    fn target() -> Target {
        Target {
            tenant: TenantId::new("t1").unwrap(),
            account: AccountId::new("a1").unwrap(),
            reach: Reach::Device {
                device: DeviceId::new("d1").unwrap(),
                msisdn: Some(Msisdn::new("8613800000000").unwrap()),
            },
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
        let arrival = Arrival::try_from(&sync_event()).unwrap();
        let n = notification(&arrival, &Resync::Lost, &target());
        assert!(n.sync);
        assert_eq!(
            n.change(),
            pushmail_proto::common::v1::MailboxChange::Unspecified
        );
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
    fn a_change_on_one_phone_is_a_sync_of_each_folder_for_the_others() {
        use pushmail_proto::common::v1::MailboxChange;
        let mut meta = EventContext::new("t1".to_owned()).meta(1_000);
        meta.event_id = "e1".to_owned();
        let event = events::MailboxChanged {
            meta: Some(meta),
            account_id: "a1".to_owned(),
            change: MailboxChange::Moved.into(),
            folders: vec!["INBOX".to_owned(), "Archive".to_owned()],
            origin_device_id: "d0".to_owned(),
        };
        let arrivals = crate::domain::changed(&event).unwrap();
        assert_eq!(
            arrivals
                .iter()
                .map(|a| (a.mailbox.as_str(), a.key.as_str()))
                .collect::<Vec<_>>(),
            [("INBOX", "e1/INBOX"), ("Archive", "e1/Archive")]
        );
        let Kind::Sync(resync) = &arrivals[1].kind else {
            panic!("{:?}", arrivals[1].kind);
        };
        assert_eq!(
            resync,
            &Resync::Changed {
                change: Change::Moved,
                origin: Some(DeviceId::new("d0").unwrap()),
            }
        );
        let n = notification(&arrivals[1], resync, &target());
        assert!(n.sync);
        assert_eq!(n.change(), MailboxChange::Moved);
        assert_eq!(n.collapse_key, "sync:a1/Archive");
        assert_eq!(n.subject, "");
        // Unusable: no change, no folder, no event id.
        for broken in [
            events::MailboxChanged {
                change: MailboxChange::Unspecified.into(),
                ..event.clone()
            },
            events::MailboxChanged {
                folders: Vec::new(),
                ..event.clone()
            },
            events::MailboxChanged {
                meta: Some(EventContext::new("t1".to_owned()).meta(1_000)).map(|mut m| {
                    m.event_id.clear();
                    m
                }),
                ..event.clone()
            },
        ] {
            assert!(crate::domain::changed(&broken).is_err(), "{broken:?}");
        }
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
}
