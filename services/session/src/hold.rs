//! Holds for activesync: a phone's held EAS Ping, kept here as a device
//! connection so dispatch reaches it through the directory exactly as it
//! reaches a WebSocket. An EAS phone has no sequence to ack by: the hold
//! acks what ends it (the phone syncs the mailbox next), and a hold that
//! starts while the outbox still holds something ends at once, so a mail
//! that arrived between two Pings is told by the next one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pushmail_common::report::Report;
use pushmail_outbox::{Cursor, Replay};
use tokio::sync::oneshot;

use crate::hub::{Command, Outcome};
use crate::node::{Attachment, Node};
use crate::protocol::WireNotification;
use crate::receipts::Heard;

/// Longest hold asked for (activesync clamps a Ping's to 3,540 s).
pub(crate) const MAX_HOLD: Duration = Duration::from_secs(3_600);

/// Most mailboxes one hold watches (a Ping names at most 300 folders).
pub(crate) const MAX_WATCHED: usize = 1_000;

/// A hold as asked for.
#[derive(Debug, Clone)]
pub(crate) struct Hold {
    pub(crate) tenant: String,
    pub(crate) device: String,
    pub(crate) interval: Duration,
    /// Raw mailbox names; empty: all.
    pub(crate) watched: Vec<String>,
}

/// How a hold ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum End {
    /// Something came for these watched mailboxes (all of them: `resync`).
    Changed {
        mailboxes: Vec<String>,
        resync: bool,
    },
    Expired,
    Draining,
    TakenOver,
    Revoked,
}

/// Why a hold could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HoldError {
    /// The outbox could not be read, so what waits is unknown.
    #[error("what waits for the device cannot be read now")]
    Outbox,
}

impl Hold {
    fn watches(&self, mailbox: &str) -> bool {
        // A notification naming no mailbox could be about any of them.
        mailbox.is_empty() || self.watched.is_empty() || self.watched.iter().any(|w| w == mailbox)
    }

    /// The watched mailboxes among `mailboxes` (each once, in order).
    fn changed<'a>(&self, mailboxes: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut changed: Vec<String> = Vec::new();
        for mailbox in mailboxes {
            if self.watches(mailbox) && !changed.iter().any(|c| c == mailbox) {
                changed.push(mailbox.to_owned());
            }
        }
        changed
    }
}

/// Holds `hold` until it ends (see the module). Dropped early (the caller
/// went away), it lets the device go as an ended hold does.
///
/// This future lives as long as the hold (up to an hour, one per held
/// Ping), so the steps that talk to the outbox and the directory are
/// boxed: their state is on the heap only while they run, not reserved
/// in the hold for its whole life.
pub(crate) async fn run(node: Arc<Node>, hold: Hold) -> Result<End, HoldError> {
    if node.draining.is_cancelled() {
        return Ok(End::Draining);
    }
    let Some(replay) = Box::pin(node.waiting(&hold.tenant, &hold.device)).await else {
        return Err(HoldError::Outbox);
    };
    let generation = replay.generation;
    if let Some(end) = Box::pin(replayed(&node, &hold, replay)).await {
        return Ok(end);
    }
    let attachment = Box::pin(Attachment::attach(
        &node,
        &hold.tenant,
        &hold.device,
        hold.interval,
    ))
    .await;
    let tx = &attachment.tx;
    let expiry = tokio::time::sleep(hold.interval);
    tokio::pin!(expiry);
    loop {
        let command = tokio::select! {
            command = tx.recv() => command,
            () = &mut expiry => return Ok(End::Expired),
        };
        match command {
            Command::Deliver(g, notification, reply) => {
                let g = if g == 0 { generation } else { g };
                if let Some(end) = Box::pin(delivered(&node, &hold, g, &notification, reply)).await
                {
                    return Ok(end);
                }
            }
            Command::Drain(_) => return Ok(End::Draining),
            Command::TakenOver => return Ok(End::TakenOver),
            Command::Revoked => return Ok(End::Revoked),
        }
    }
}

/// What the outbox held when the hold started: acked (the phone is told
/// now), and the end it comes to, if any watched mailbox is among it.
async fn replayed(node: &Node, hold: &Hold, replay: Replay) -> Option<End> {
    let last = replay.notifications.last().map(|n| n.sequence);
    if let Some(last) = last {
        acknowledge(node, hold, replay.generation, last, HashMap::new()).await;
    }
    if replay.resync {
        return Some(End::Changed {
            mailboxes: hold.watched.clone(),
            resync: true,
        });
    }
    let changed = hold.changed(replay.notifications.iter().map(|n| n.mailbox.as_str()));
    (!changed.is_empty()).then_some(End::Changed {
        mailboxes: changed,
        resync: false,
    })
}

/// A delivery to the held device: acked either way (a mailbox the phone
/// does not watch is not pushed to it), ending the hold when watched.
async fn delivered(
    node: &Node,
    hold: &Hold,
    generation: u64,
    notification: &WireNotification,
    reply: oneshot::Sender<Outcome>,
) -> Option<End> {
    let heard = HashMap::from([(
        notification.seq,
        crate::receipts::heard(reply.send(Outcome::Acked)),
    )]);
    acknowledge(node, hold, generation, notification.seq, heard).await;
    hold.watches(&notification.mailbox).then(|| End::Changed {
        mailboxes: hold.changed([notification.mailbox.as_str()]),
        resync: false,
    })
}

/// Trims the outbox through `seq` of `generation` and reports the
/// receipts no one else does. A failed ack leaves the notifications to the next hold,
/// which tells them again: a spare Ping answer, never a lost one.
async fn acknowledge(
    node: &Node,
    hold: &Hold,
    generation: u64,
    seq: u64,
    heard: HashMap<u64, Heard>,
) {
    let cursor = Cursor { generation, seq };
    match node.outbox.acked(&hold.tenant, &hold.device, cursor).await {
        Ok(Some(acked)) => node
            .receipts
            .acked(&hold.device, acked.notifications, &heard),
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %Report(&err), "outbox ack of a hold failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_future_keeps_little_for_its_life() {
        // What each held Ping reserves in the session for up to an hour:
        // the loop's state, the outbox and directory steps boxed. The
        // function item names the future's type; no node is made.
        fn of<F: std::future::Future>(_: fn(Arc<Node>, Hold) -> F) -> usize {
            std::mem::size_of::<F>()
        }
        let bytes = of(run);
        assert!(bytes <= 1_024, "{bytes} bytes");
    }

    fn hold(watched: &[&str]) -> Hold {
        Hold {
            tenant: "t".to_owned(),
            device: "d".to_owned(),
            interval: Duration::from_secs(60),
            watched: watched.iter().map(|&w| w.to_owned()).collect(),
        }
    }

    #[test]
    fn only_watched_mailboxes_end_a_hold_each_named_once() {
        let inbox = hold(&["INBOX", "Work"]);
        assert!(inbox.watches("Work") && !inbox.watches("Archive"));
        // No mailbox named: it could be any.
        assert!(inbox.watches(""));
        assert_eq!(
            inbox.changed(["Archive", "Work", "INBOX", "Work"]),
            ["Work", "INBOX"]
        );
        assert!(inbox.changed(["Archive"]).is_empty());
        // Watching none named watches all.
        assert_eq!(hold(&[]).changed(["Archive"]), ["Archive"]);
    }
}
