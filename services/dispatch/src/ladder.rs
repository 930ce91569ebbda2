//! The delivery ladder, as data: what one phone gets for one errand, from
//! its reach, the owner's policy verdict and the tenant's push rate, and
//! what follows when the held connection did or did not ack. No I/O here;
//! `dispatcher` carries the steps out.

use crate::domain::Reach;
use crate::policy::Verdict;

/// Why a mail goes to the phone's digest instead of now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HoldReason {
    /// The owner's quiet hours.
    QuietHours,
    /// The tenant is over its push rate.
    PushRate,
}

impl HoldReason {
    /// The receipt's detail.
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Self::QuietHours => "quiet hours",
            Self::PushRate => "tenant push rate limit",
        }
    }
}

/// What is being delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Errand {
    /// One mail, under the owner's policy and the tenant's rate.
    Mail,
    /// A digest of held mails, due now: policy was applied when they were
    /// held.
    Digest,
    /// A mailbox to re-sync: not a mail, so no policy and never an SMS.
    Sync,
}

/// What a phone that did not ack gets next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unacked {
    /// One binary SMS per window, so the push client connects.
    WakeUp,
    /// Nothing now: the outbox replays it when the phone connects.
    Replay,
}

/// The ladder's decision for one phone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The sender is black-listed: a receipt, nothing to the phone.
    Suppress,
    /// Held for the phone's digest at `until_ms`.
    Hold {
        /// When the digest is due (ms since the epoch).
        until_ms: i64,
        /// Why.
        why: HoldReason,
    },
    /// The outbox and the held connection, then `unacked`.
    Push {
        /// What follows when the phone does not ack.
        unacked: Unacked,
    },
    /// A text SMS per mail (a number without a push client).
    Notice,
    /// Nothing reaches this phone for this errand.
    Skip,
}

/// Whether the held connection took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presence {
    /// The phone acked it.
    Acked,
    /// Not connected, no ack in time, or no session node answered.
    Away,
}

/// The rung `reach` starts on. `rate_held_until` is the end of the
/// tenant's rate window when the tenant is over its push rate.
pub(crate) fn plan(
    reach: &Reach,
    errand: Errand,
    verdict: Verdict,
    rate_held_until: Option<i64>,
) -> Plan {
    let push = |reach: &Reach| match reach {
        Reach::Device {
            msisdn: Some(_), ..
        } => Plan::Push {
            unacked: Unacked::WakeUp,
        },
        Reach::Device { msisdn: None, .. } => Plan::Push {
            unacked: Unacked::Replay,
        },
        Reach::Number { .. } => Plan::Notice,
    };
    match errand {
        Errand::Sync => match reach {
            Reach::Device { .. } => Plan::Push {
                unacked: Unacked::Replay,
            },
            Reach::Number { .. } => Plan::Skip,
        },
        Errand::Digest => push(reach),
        Errand::Mail => match (verdict, rate_held_until) {
            (Verdict::Blocked, _) => Plan::Suppress,
            (Verdict::Defer { until }, _) => Plan::Hold {
                until_ms: until.as_millisecond(),
                why: HoldReason::QuietHours,
            },
            (Verdict::Push, Some(until_ms)) => Plan::Hold {
                until_ms,
                why: HoldReason::PushRate,
            },
            (Verdict::Push, None) => push(reach),
        },
    }
}

/// Whether a push the phone did (or did not) ack is followed by the SMS
/// wake-up.
pub(crate) fn wakes_up(unacked: Unacked, presence: Presence) -> bool {
    presence == Presence::Away && unacked == Unacked::WakeUp
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::*;
    use crate::domain::{DeviceId, Msisdn};

    /// One thing done for one phone, in order.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Step {
        /// A `SUPPRESSED` receipt.
        Suppressed,
        /// Held, with a `DEFERRED` receipt.
        Held(HoldReason),
        /// Appended to the outbox and offered on the held connection.
        Pushed,
        /// The SMS wake-up.
        WakeUp,
        /// The SMS text notice.
        Notice,
    }

    /// Every step `plan` takes when the phone's presence is `presence`.
    fn steps(plan: Plan, presence: Presence) -> Vec<Step> {
        match plan {
            Plan::Suppress => vec![Step::Suppressed],
            Plan::Hold { why, .. } => vec![Step::Held(why)],
            Plan::Push { unacked } if wakes_up(unacked, presence) => {
                vec![Step::Pushed, Step::WakeUp]
            }
            Plan::Push { .. } => vec![Step::Pushed],
            Plan::Notice => vec![Step::Notice],
            Plan::Skip => vec![],
        }
    }

    /// Phone, errand, policy verdict, rate hold, presence: the steps.
    type Row<'a> = (&'a Reach, Errand, Verdict, Option<i64>, Presence, Vec<Step>);

    #[test]
    fn every_rung_of_the_ladder() {
        use Errand::{Digest, Mail, Sync};
        use Presence::{Acked, Away};
        use Step::{Held, Notice, Pushed, Suppressed, WakeUp};

        let quiet_end = Timestamp::from_millisecond(5_000).unwrap();
        let with_number = Reach::Device {
            device: DeviceId::new("d1").unwrap(),
            msisdn: Some(Msisdn::new("8613800000000").unwrap()),
        };
        let no_number = Reach::Device {
            device: DeviceId::new("d1").unwrap(),
            msisdn: None,
        };
        let number = Reach::Number {
            msisdn: Msisdn::new("8613800000000").unwrap(),
            device: None,
        };
        let push = Verdict::Push;
        let blocked = Verdict::Blocked;
        let quiet = Verdict::Defer { until: quiet_end };
        let over = Some(9_000);

        #[rustfmt::skip]
        let table: Vec<Row<'_>> = vec![
            // A mail to a push client: held connection, SMS only when away.
            (&with_number, Mail, push, None, Acked, vec![Pushed]),
            (&with_number, Mail, push, None, Away, vec![Pushed, WakeUp]),
            (&no_number, Mail, push, None, Away, vec![Pushed]),
            (&no_number, Mail, push, None, Acked, vec![Pushed]),
            // A number without a push client: a notice per mail.
            (&number, Mail, push, None, Away, vec![Notice]),
            // Policy comes first, whoever the phone is.
            (&with_number, Mail, blocked, None, Away, vec![Suppressed]),
            (&number, Mail, blocked, over, Away, vec![Suppressed]),
            (&with_number, Mail, quiet, None, Away, vec![Held(HoldReason::QuietHours)]),
            (&number, Mail, quiet, over, Away, vec![Held(HoldReason::QuietHours)]),
            // Over the tenant's rate: held, unless the owner blocked it.
            (&with_number, Mail, push, over, Away, vec![Held(HoldReason::PushRate)]),
            (&number, Mail, push, over, Away, vec![Held(HoldReason::PushRate)]),
            // A digest is past policy and rate: the plain ladder.
            (&with_number, Digest, blocked, over, Away, vec![Pushed, WakeUp]),
            (&with_number, Digest, push, None, Acked, vec![Pushed]),
            (&no_number, Digest, quiet, None, Away, vec![Pushed]),
            (&number, Digest, push, None, Away, vec![Notice]),
            // A sync is no mail: no policy, no rate, never an SMS.
            (&with_number, Sync, blocked, over, Away, vec![Pushed]),
            (&with_number, Sync, quiet, None, Acked, vec![Pushed]),
            (&no_number, Sync, push, None, Away, vec![Pushed]),
            (&number, Sync, push, None, Away, vec![]),
        ];
        for (reach, errand, verdict, rate, presence, expected) in table {
            let plan = plan(reach, errand, verdict, rate);
            assert_eq!(
                steps(plan, presence),
                expected,
                "{reach:?} {errand:?} {verdict:?} {rate:?} {presence:?}"
            );
        }
    }

    #[test]
    fn a_hold_is_due_when_its_window_ends() {
        let reach = Reach::Number {
            msisdn: Msisdn::new("1").unwrap(),
            device: None,
        };
        let until = Timestamp::from_millisecond(5_000).unwrap();
        assert_eq!(
            plan(&reach, Errand::Mail, Verdict::Defer { until }, Some(9_000)),
            Plan::Hold {
                until_ms: 5_000,
                why: HoldReason::QuietHours
            }
        );
        assert_eq!(
            plan(&reach, Errand::Mail, Verdict::Push, Some(9_000)),
            Plan::Hold {
                until_ms: 9_000,
                why: HoldReason::PushRate
            }
        );
    }
}
