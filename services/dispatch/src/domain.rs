//! Dispatch's own types: what a `MailArrived` and a binding target mean
//! here, converted from proto once, at the edge (`TryFrom`), so the ladder
//! and the sends below it never see an empty id or a half-filled event.

use std::fmt;
use std::sync::Arc;

use pushmail_proto::binding::v1 as binding;
use pushmail_proto::common::v1::{Address, Attachment};
use pushmail_proto::events::v1 as events;

use crate::policy::Policy;

/// A required field of an event or target was empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} is missing")]
pub(crate) struct Missing(pub(crate) &'static str);

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub(crate) struct $name(String);

        impl $name {
            /// The id, refused when empty.
            pub(crate) fn new(value: impl Into<String>) -> Result<Self, Missing> {
                let value = value.into();
                if value.is_empty() {
                    return Err(Missing($what));
                }
                Ok(Self(value))
            }

            /// The id as the wire carries it.
            pub(crate) fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id!(
    /// A tenant (an enterprise or the carrier's consumer brand).
    TenantId,
    "tenant"
);
id!(
    /// A mail account.
    AccountId,
    "account"
);
id!(
    /// A registered phone with our push client.
    DeviceId,
    "device"
);
id!(
    /// A phone number (MSISDN) bound to an account.
    Msisdn,
    "msisdn"
);
id!(
    /// What makes a mail one mail across redeliveries.
    IdempotencyKey,
    "idempotency key"
);

/// One `MailArrived`, usable: it names a tenant, an account and a key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Arrival {
    /// Whose mail.
    pub(crate) tenant: TenantId,
    /// The account it reached.
    pub(crate) account: AccountId,
    /// Same mail, same key.
    pub(crate) key: IdempotencyKey,
    /// The mailbox (folder) it reached.
    pub(crate) mailbox: String,
    /// When the mailbox got it.
    pub(crate) received_at: Option<prost_types::Timestamp>,
    /// The W3C traceparent of the event, for the device's support reports.
    pub(crate) traceparent: String,
    /// A mail, or a mailbox to re-sync (no one mail).
    pub(crate) kind: Kind,
}

/// What arrived.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    /// One mail.
    Mail(Mail),
    /// The devices re-sync the mailbox, for `Resync`'s reason.
    Sync(Resync),
}

/// Why the devices re-sync a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resync {
    /// Ingest lost track of it (`MailArrived.mailbox_sync`).
    Lost,
    /// One of the account's phones changed it through the platform
    /// (`MailboxChanged`); that phone is not told.
    Changed {
        /// What it did.
        change: Change,
        /// The phone, when the event names it.
        origin: Option<DeviceId>,
    },
}

/// What a phone did to its mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Flags.
    Flags,
    /// A move.
    Moved,
    /// A delete.
    Deleted,
    /// A send.
    Sent,
}

/// The arrivals of one `MailboxChanged`: a sync of each folder it names.
pub(crate) fn changed(event: &events::MailboxChanged) -> Result<Vec<Arrival>, Missing> {
    use pushmail_proto::common::v1::MailboxChange;
    let meta = event.meta.as_ref();
    let tenant = TenantId::new(meta.map(|m| m.tenant_id.clone()).unwrap_or_default())?;
    let account = AccountId::new(event.account_id.clone())?;
    let id = meta.map(|m| m.event_id.clone()).unwrap_or_default();
    if id.is_empty() {
        return Err(Missing("event id"));
    }
    let change = match event.change() {
        MailboxChange::Flags => Change::Flags,
        MailboxChange::Moved => Change::Moved,
        MailboxChange::Deleted => Change::Deleted,
        MailboxChange::Sent => Change::Sent,
        MailboxChange::Unspecified => return Err(Missing("change")),
    };
    let origin = DeviceId::new(event.origin_device_id.clone()).ok();
    if event.folders.is_empty() {
        return Err(Missing("folders"));
    }
    event
        .folders
        .iter()
        .map(|folder| {
            Ok(Arrival {
                tenant: tenant.clone(),
                account: account.clone(),
                // One event, one sync per folder, each its own key.
                key: IdempotencyKey::new(format!("{id}/{folder}"))?,
                mailbox: folder.clone(),
                received_at: meta.and_then(|m| m.occurred_at),
                traceparent: meta.map(|m| m.traceparent.clone()).unwrap_or_default(),
                kind: Kind::Sync(Resync::Changed {
                    change,
                    origin: origin.clone(),
                }),
            })
        })
        .collect()
}

/// What a notification shows of one mail.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Mail {
    /// The sender, when the mail names one.
    pub(crate) from: Option<Address>,
    /// Subject.
    pub(crate) subject: String,
    /// The first words of the text.
    pub(crate) snippet: String,
    /// Where the message is kept (the fetch URL names it).
    pub(crate) blob_ref: String,
    /// Its attachments.
    pub(crate) attachments: Vec<Attachment>,
}

impl Mail {
    /// The sender's address, for the black and white lists ("" when none).
    pub(crate) fn sender(&self) -> &str {
        self.from.as_ref().map_or("", |a| a.address.as_str())
    }
}

impl TryFrom<&events::MailArrived> for Arrival {
    type Error = Missing;

    fn try_from(event: &events::MailArrived) -> Result<Self, Missing> {
        let meta = event.meta.as_ref();
        let tenant = TenantId::new(meta.map(|m| m.tenant_id.clone()).unwrap_or_default())?;
        let account = AccountId::new(event.account_id.clone())?;
        let key = IdempotencyKey::new(event.idempotency_key.clone())?;
        let kind = if event.mailbox_sync {
            Kind::Sync(Resync::Lost)
        } else {
            let summary = event.summary.clone().unwrap_or_default();
            Kind::Mail(Mail {
                from: summary.from,
                subject: summary.subject,
                snippet: summary.snippet,
                blob_ref: event.blob_ref.clone(),
                attachments: event.attachments.clone(),
            })
        };
        Ok(Self {
            tenant,
            account,
            key,
            mailbox: event.mailbox.clone(),
            received_at: event.received_at,
            traceparent: meta.map(|m| m.traceparent.clone()).unwrap_or_default(),
            kind,
        })
    }
}

/// What starts the held-mail key of a bare number (device ids are UUIDs,
/// so none starts so).
pub(crate) const HELD_NUMBER: &str = "msisdn:";

/// How a notification can reach one of the account's phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// A phone with our push client: its outbox and held connection, then
    /// an SMS wake-up to its number, when it has one.
    Device {
        /// The device.
        device: DeviceId,
        /// Its number, for wake-ups.
        msisdn: Option<Msisdn>,
    },
    /// A number without a push client (a registered phone that has none,
    /// or a bare number): a text notice per mail.
    Number {
        /// The number.
        msisdn: Msisdn,
        /// The registered phone, when it is one.
        device: Option<DeviceId>,
    },
}

impl Reach {
    /// The device the outbox and the held-mail store key it by ("" for a
    /// bare number, as the wire has it).
    pub(crate) fn device(&self) -> &str {
        match self {
            Self::Device { device, .. }
            | Self::Number {
                device: Some(device),
                ..
            } => device.as_str(),
            Self::Number { device: None, .. } => "",
        }
    }

    /// The number SMS go to, when there is one.
    pub(crate) fn msisdn(&self) -> Option<&Msisdn> {
        match self {
            Self::Device { msisdn, .. } => msisdn.as_ref(),
            Self::Number { msisdn, .. } => Some(msisdn),
        }
    }

    /// The key its held mail waits under for the digest: the device, or
    /// for a bare number `msisdn:<number>`, so two numbers of a tenant
    /// never share one digest.
    pub(crate) fn held_key(&self) -> String {
        match self {
            Self::Number {
                msisdn,
                device: None,
            } => format!("{HELD_NUMBER}{msisdn}"),
            _ => self.device().to_owned(),
        }
    }

    /// The key of its receipts on the delivery topic: the device, or the
    /// number.
    pub(crate) fn receipt_key(&self) -> &str {
        match self {
            Self::Number {
                msisdn,
                device: None,
            } => msisdn.as_str(),
            _ => self.device(),
        }
    }
}

impl TryFrom<&binding::DeliveryTarget> for Reach {
    type Error = Missing;

    /// A target with neither a push client nor a number reaches nothing.
    fn try_from(target: &binding::DeliveryTarget) -> Result<Self, Missing> {
        let msisdn = Msisdn::new(target.msisdn.clone()).ok();
        let device = DeviceId::new(target.device_id.clone()).ok();
        match (target.has_push_client, device, msisdn) {
            (true, Some(device), msisdn) => Ok(Self::Device { device, msisdn }),
            (_, device, Some(msisdn)) => Ok(Self::Number { msisdn, device }),
            (_, _, None) => Err(Missing("device and msisdn")),
        }
    }
}

/// One phone (or bare number) a mail goes to, with its owner's policy.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The tenant.
    pub(crate) tenant: TenantId,
    /// The account.
    pub(crate) account: AccountId,
    /// How to reach it.
    pub(crate) reach: Reach,
    /// The owner's preferences, parsed.
    pub(crate) policy: Arc<Policy>,
}

#[cfg(test)]
mod tests {
    use pushmail_common::bus::EventContext;

    use super::*;

    fn event() -> events::MailArrived {
        events::MailArrived {
            meta: Some(EventContext::new("t1".to_owned()).meta(1_000)),
            account_id: "a1".to_owned(),
            mailbox: "INBOX".to_owned(),
            idempotency_key: "k1".to_owned(),
            blob_ref: "sha256:00".to_owned(),
            summary: Some(events::MailSummary {
                from: Some(Address {
                    name: "Ann".to_owned(),
                    address: "ann@example.com".to_owned(),
                }),
                subject: "Hi".to_owned(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_arrival_needs_tenant_account_and_key() {
        let arrival = Arrival::try_from(&event()).unwrap();
        assert_eq!(
            (
                arrival.tenant.as_str(),
                arrival.account.as_str(),
                arrival.key.as_str()
            ),
            ("t1", "a1", "k1")
        );
        let Kind::Mail(mail) = &arrival.kind else {
            panic!("a mail: {arrival:?}");
        };
        assert_eq!(
            (mail.sender(), mail.blob_ref.as_str()),
            ("ann@example.com", "sha256:00")
        );
        let cases = [
            (
                events::MailArrived {
                    meta: None,
                    ..event()
                },
                "tenant",
            ),
            (
                events::MailArrived {
                    account_id: String::new(),
                    ..event()
                },
                "account",
            ),
            (
                events::MailArrived {
                    idempotency_key: String::new(),
                    ..event()
                },
                "idempotency key",
            ),
        ];
        for (event, missing) in cases {
            assert_eq!(Arrival::try_from(&event), Err(Missing(missing)));
        }
        let sync = events::MailArrived {
            mailbox_sync: true,
            ..event()
        };
        assert_eq!(
            Arrival::try_from(&sync).unwrap().kind,
            Kind::Sync(Resync::Lost)
        );
    }

    #[test]
    fn a_target_reaches_a_push_client_or_a_number() {
        let target = |device: &str, msisdn: &str, push: bool| binding::DeliveryTarget {
            device_id: device.to_owned(),
            msisdn: msisdn.to_owned(),
            has_push_client: push,
            ..Default::default()
        };
        let id = |s: &str| DeviceId::new(s).unwrap();
        let number = |s: &str| Msisdn::new(s).unwrap();
        let cases = [
            (
                target("d1", "861", true),
                Ok(Reach::Device {
                    device: id("d1"),
                    msisdn: Some(number("861")),
                }),
            ),
            (
                target("d1", "", true),
                Ok(Reach::Device {
                    device: id("d1"),
                    msisdn: None,
                }),
            ),
            // A device without a push client is reached by text.
            (
                target("d1", "861", false),
                Ok(Reach::Number {
                    msisdn: number("861"),
                    device: Some(id("d1")),
                }),
            ),
            (
                target("", "861", true),
                Ok(Reach::Number {
                    msisdn: number("861"),
                    device: None,
                }),
            ),
            (target("", "", true), Err(Missing("device and msisdn"))),
            (target("d1", "", false), Err(Missing("device and msisdn"))),
        ];
        for (target, reach) in cases {
            assert_eq!(Reach::try_from(&target), reach, "{target:?}");
        }
        // Held mail of two bare numbers never shares a digest; a phone's
        // waits under its device, whatever its number.
        let bare = |n: &str| Reach::try_from(&target("", n, false)).unwrap();
        assert_ne!(bare("861").held_key(), bare("862").held_key());
        assert_eq!(bare("861").held_key(), "msisdn:861");
        assert_eq!(
            Reach::try_from(&target("d1", "861", true))
                .unwrap()
                .held_key(),
            "d1"
        );
        assert_eq!(
            Reach::try_from(&target("d1", "861", false))
                .unwrap()
                .held_key(),
            "d1"
        );
    }
}
