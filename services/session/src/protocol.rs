//! The device protocol's frames: compact JSON text frames, one object each,
//! tagged by `t` (see `docs/device-protocol.md`). The same frames travel over
//! the WebSocket and, batched, in long-poll answers.

use serde::{Deserialize, Serialize};

/// Largest frame a device may send; anything longer is refused unread.
pub(crate) const MAX_CLIENT_FRAME: usize = 1_024;

/// A heartbeat, either way, in its compact form.
pub(crate) const HB_FRAME: &str = r#"{"t":"hb"}"#;

/// What a device sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ClientFrame {
    /// First frame: where the device's cursor is and what it proposes.
    Hello {
        /// Highest sequence the device has acked (0: none yet).
        #[serde(default)]
        last_ack: u64,
        /// The outbox generation `last_ack` counts in (0: none named, as a
        /// fresh device or one from before generations).
        #[serde(default, rename = "gen")]
        generation: u64,
        /// Proposed heartbeat interval, seconds.
        hb: u32,
        /// The network the device is on (e.g. `46000-lte`), for heartbeat statistics.
        #[serde(default)]
        net: String,
    },
    /// "Still here."
    Hb,
    /// Everything up to and including `seq` is received.
    Ack {
        /// Highest received sequence.
        seq: u64,
        /// The generation it counts in (0: the connection's).
        #[serde(default, rename = "gen")]
        generation: u64,
    },
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum ServerFrame {
    /// Answer to hello: the heartbeat interval the server will hold the device to.
    Welcome {
        /// Heartbeat interval in seconds, after clamping.
        hb: u32,
        /// The session id, for support.
        session: String,
        /// The outbox generation the device's cursor counts in from now on
        /// (absent when the outbox could not be read: a reconnect follows).
        #[serde(rename = "gen", default, skip_serializing_if = "is_zero_u64")]
        generation: u64,
    },
    /// Answer to a heartbeat.
    Hb,
    /// New mail.
    N(Box<WireNotification>),
    /// Sync the mailboxes rather than trust the replay: the device's cursor
    /// belongs to an outbox that is gone (or ahead of this one), or
    /// notifications after it were dropped (it fell too far behind). The
    /// replay that follows continues after `from` in `generation`.
    Resync {
        /// The outbox generation the device's cursor counts in from now on.
        #[serde(rename = "gen")]
        generation: u64,
        /// The device's cursor from now on.
        from: u64,
    },
    /// Reconnect after `after_ms` (drain, take-over).
    Reconnect {
        /// Wait this long first (jittered by the server).
        after_ms: u64,
        /// Why.
        reason: String,
    },
    /// Something the device sent was refused.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// Human-readable detail.
        message: String,
    },
}

/// Stable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorCode {
    /// Not a frame of this protocol.
    Malformed,
    /// Longer than [`MAX_CLIENT_FRAME`], or binary.
    TooLarge,
    /// The first frame must be hello (and only the first).
    ExpectedHello,
    /// An ack for a sequence never sent.
    UnknownSequence,
    /// Frames faster than the protocol allows.
    Flood,
    /// No heartbeat within the interval and its grace.
    HeartbeatMissed,
    /// Another connection of this device took over.
    TakenOver,
    /// The device could not keep up with what was sent to it.
    SlowReader,
    /// The device was revoked.
    Revoked,
    /// The node is draining (close reason after a reconnect hint).
    Draining,
}

/// A notification on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireNotification {
    /// Per-device sequence.
    pub(crate) seq: u64,
    /// Account the mail is in.
    pub(crate) account: String,
    /// Mailbox.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) mailbox: String,
    /// A newer notification with the same key replaces an unseen older one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) collapse: String,
    /// Sender, when the content level allows.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) from: String,
    /// Subject, when the content level allows.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) subject: String,
    /// Snippet, when the content level allows.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) snippet: String,
    /// Where to fetch the message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) url: String,
    /// Received at, ms since the epoch.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub(crate) at: i64,
    /// Attachments, when the device's preferences list them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) attachments: Vec<WireAttachment>,
    /// Mails this notification stands for (coalesced, or a quiet-hours digest).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub(crate) digest: u32,
    /// W3C traceparent of the mail's trace, for support reports.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) trace: String,
    /// No one mail: the server lost track of the mailbox and the device
    /// syncs it. Such a notification carries no mail fields.
    #[serde(default, skip_serializing_if = "is_false")]
    pub(crate) sync: bool,
    /// On a sync: what another of the account's phones did to the
    /// mailbox (`flags`, `moved`, `deleted`, `sent`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) changed: String,
}

/// An attachment entry of a notification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct WireAttachment {
    /// File name.
    pub(crate) name: String,
    /// MIME type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub r#type: String,
    /// Size of the original, bytes.
    #[serde(default)]
    pub(crate) size: u64,
    /// Where to fetch the original.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) url: String,
    /// Where to fetch a preview for small screens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) preview: String,
}

impl WireNotification {
    /// At least the size of this notification's frame: every string byte
    /// escaped at worst as `\u00XX` (6 bytes), plus room for the field
    /// names and numbers. Lets a small notification skip being encoded
    /// once just to be measured.
    pub(crate) fn frame_bound(&self) -> usize {
        let text = [
            &self.account,
            &self.mailbox,
            &self.collapse,
            &self.from,
            &self.subject,
            &self.snippet,
            &self.url,
            &self.trace,
            &self.changed,
        ]
        .iter()
        .map(|s| s.len())
        .sum::<usize>()
            + self
                .attachments
                .iter()
                .map(|a| a.name.len() + a.r#type.len() + a.url.len() + a.preview.len())
                .sum::<usize>();
        256 + 6 * text + 96 * self.attachments.len()
    }

    /// The device's view of a notification from dispatch (or the outbox).
    pub(crate) fn from_proto(n: pushmail_proto::session::v1::Notification) -> Self {
        if n.sync {
            let change = changed(n.change());
            // Stands for no mail: nothing to show, and however many syncs
            // it merged, one sync of the mailbox answers them all.
            return Self {
                seq: n.sequence,
                account: n.account_id,
                mailbox: n.mailbox,
                collapse: n.collapse_key,
                at: n
                    .received_at
                    .as_ref()
                    .map_or(0, pushmail_common::clock::from_timestamp),
                changed: change.to_owned(),
                trace: n.traceparent,
                sync: true,
                ..Self::default()
            };
        }
        Self {
            seq: n.sequence,
            account: n.account_id,
            mailbox: n.mailbox,
            collapse: n.collapse_key,
            from: n
                .from
                .map(|a| {
                    if a.name.is_empty() {
                        a.address
                    } else {
                        format!("{} <{}>", a.name, a.address)
                    }
                })
                .unwrap_or_default(),
            subject: n.subject,
            snippet: n.snippet,
            url: n.message_url,
            at: n
                .received_at
                .as_ref()
                .map_or(0, pushmail_common::clock::from_timestamp),
            attachments: n
                .attachments
                .into_iter()
                .filter_map(|entry| {
                    let attachment = entry.attachment?;
                    Some(WireAttachment {
                        name: attachment.file_name,
                        r#type: attachment.content_type,
                        size: attachment.size_bytes,
                        url: entry.fetch_url,
                        preview: entry.preview_url,
                    })
                })
                .collect(),
            digest: n.digest_count,
            trace: n.traceparent,
            sync: false,
            changed: String::new(),
        }
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// A sync's cause as the device reads it ("" for none).
fn changed(change: pushmail_proto::common::v1::MailboxChange) -> &'static str {
    use pushmail_proto::common::v1::MailboxChange;
    match change {
        MailboxChange::Unspecified => "",
        MailboxChange::Flags => "flags",
        MailboxChange::Moved => "moved",
        MailboxChange::Deleted => "deleted",
        MailboxChange::Sent => "sent",
    }
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FrameError {
    /// Stable code.
    pub(crate) code: ErrorCode,
    /// Detail.
    pub(crate) message: String,
}

impl ClientFrame {
    /// Parses a text frame, bounded.
    pub(crate) fn parse(text: &str) -> Result<Self, FrameError> {
        if text.len() > MAX_CLIENT_FRAME {
            return Err(FrameError {
                code: ErrorCode::TooLarge,
                message: format!("frames are at most {MAX_CLIENT_FRAME} bytes"),
            });
        }
        // Heartbeats are nearly every frame an idle device sends: the
        // compact form skips the parser (any other spelling still parses).
        if text == HB_FRAME {
            return Ok(Self::Hb);
        }
        serde_json::from_str(text).map_err(|e| FrameError {
            code: ErrorCode::Malformed,
            message: format!("not a frame: {e}"),
        })
    }
}

impl ServerFrame {
    /// The text frame.
    pub(crate) fn encode(&self) -> String {
        // Serialising these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The text frame, without encoding (or allocating) the heartbeat
    /// answer every idle device gets once per interval.
    pub(crate) fn text(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Hb => std::borrow::Cow::Borrowed(HB_FRAME),
            other => std::borrow::Cow::Owned(other.encode()),
        }
    }

    /// An error frame.
    pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_bound_is_never_below_the_encoded_size() {
        let worst = WireNotification {
            seq: u64::MAX,
            account: "\u{1}".repeat(40),
            mailbox: "\"".repeat(40),
            collapse: "\\".repeat(40),
            from: "\n".repeat(40),
            subject: "主题".repeat(40),
            snippet: "\u{1f}".repeat(200),
            url: "u".repeat(80),
            at: i64::MIN,
            attachments: vec![
                WireAttachment {
                    name: "\u{7}".repeat(20),
                    r#type: "t".into(),
                    size: u64::MAX,
                    url: "\"".repeat(20),
                    preview: "p".into(),
                };
                3
            ],
            digest: u32::MAX,
            trace: "x".repeat(55),
            sync: true,
            changed: "deleted".into(),
        };
        let encoded = ServerFrame::N(Box::new(worst.clone())).encode().len();
        assert!(
            worst.frame_bound() >= encoded,
            "{} < {encoded}",
            worst.frame_bound()
        );
        let least = WireNotification::default();
        let encoded = ServerFrame::N(Box::new(least.clone())).encode().len();
        assert!(least.frame_bound() >= encoded);
    }

    #[test]
    fn frames_parse_and_encode_compactly() {
        assert_eq!(
            ClientFrame::parse(r#"{"t":"hello","last_ack":7,"hb":600,"net":"46000-lte"}"#).unwrap(),
            ClientFrame::Hello {
                last_ack: 7,
                generation: 0,
                hb: 600,
                net: "46000-lte".into()
            },
            "a device from before generations names none"
        );
        assert_eq!(
            ClientFrame::parse(r#"{"t":"hello","last_ack":7,"gen":9007199254740991,"hb":60}"#)
                .unwrap(),
            ClientFrame::Hello {
                last_ack: 7,
                generation: (1 << 53) - 1,
                hb: 60,
                net: String::new()
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"t":"hb"}"#).unwrap(),
            ClientFrame::Hb
        );
        assert_eq!(
            ClientFrame::parse(r#"{"t":"ack","seq":9}"#).unwrap(),
            ClientFrame::Ack {
                seq: 9,
                generation: 0
            }
        );
        assert_eq!(
            ClientFrame::parse(r#"{"t":"ack","seq":9,"gen":4}"#).unwrap(),
            ClientFrame::Ack {
                seq: 9,
                generation: 4
            }
        );
        assert_eq!(
            ServerFrame::Resync {
                generation: 4,
                from: 0
            }
            .encode(),
            r#"{"t":"resync","gen":4,"from":0}"#
        );
        let n = ServerFrame::N(Box::new(WireNotification {
            seq: 3,
            account: "a".into(),
            ..Default::default()
        }));
        assert_eq!(n.encode(), r#"{"t":"n","seq":3,"account":"a"}"#);
        assert_eq!(ServerFrame::Hb.encode(), r#"{"t":"hb"}"#);
        assert_eq!(ServerFrame::Hb.text(), ServerFrame::Hb.encode());
        assert_eq!(n.text(), n.encode());
        assert_eq!(
            ClientFrame::parse(r#"{ "t": "hb" }"#).unwrap(),
            ClientFrame::Hb,
            "a heartbeat with spaces is still one"
        );
        assert_eq!(
            ClientFrame::parse(r#"{"t":"hb"}{"t":"hb"}"#)
                .unwrap_err()
                .code,
            ErrorCode::Malformed,
            "only the exact heartbeat skips the parser"
        );
    }

    #[test]
    fn a_sync_is_flagged_and_carries_no_mail_fields() {
        use pushmail_proto::session::v1 as pb;
        let sync = pb::Notification {
            sequence: 7,
            account_id: "a1".into(),
            mailbox: "INBOX".into(),
            collapse_key: "sync:a1/INBOX".into(),
            idempotency_key: "sync:a1:1764160496789".into(),
            received_at: Some(pushmail_common::clock::timestamp(1_764_160_496_789)),
            traceparent: "00-t-s-01".into(),
            // Merged in the outbox: still one sync, not "3 mails".
            digest_count: 3,
            // Whatever a sender put there, a sync shows no mail.
            subject: "stray".into(),
            message_url: "https://x/v1/accounts/a1/messages/".into(),
            sync: true,
            ..Default::default()
        };
        let wire = WireNotification::from_proto(sync);
        let frame = ServerFrame::N(Box::new(wire.clone())).encode();
        assert_eq!(
            frame,
            r#"{"t":"n","seq":7,"account":"a1","mailbox":"INBOX","collapse":"sync:a1/INBOX","at":1764160496789,"trace":"00-t-s-01","sync":true}"#
        );
        // The long poll's notification objects are the same struct.
        assert_eq!(
            serde_json::to_value(&wire).unwrap(),
            serde_json::json!({"seq":7,"account":"a1","mailbox":"INBOX","collapse":"sync:a1/INBOX","at":1764160496789_i64,"trace":"00-t-s-01","sync":true})
        );
        // A mail says nothing of sync: old devices see what they always saw.
        let mail = WireNotification::from_proto(pb::Notification {
            sequence: 8,
            account_id: "a1".into(),
            subject: "Hi".into(),
            ..Default::default()
        });
        assert!(!mail.sync);
        assert_eq!(
            ServerFrame::N(Box::new(mail)).encode(),
            r#"{"t":"n","seq":8,"account":"a1","subject":"Hi"}"#
        );
        // Another phone moved mail out of Archive: a sync that says so.
        let changed = WireNotification::from_proto(pb::Notification {
            sequence: 9,
            account_id: "a1".into(),
            mailbox: "Archive".into(),
            sync: true,
            change: pushmail_proto::common::v1::MailboxChange::Moved.into(),
            ..Default::default()
        });
        assert_eq!(
            ServerFrame::N(Box::new(changed)).encode(),
            r#"{"t":"n","seq":9,"account":"a1","mailbox":"Archive","sync":true,"changed":"moved"}"#
        );
    }

    #[test]
    fn bad_frames_are_named() {
        for bad in ["", "{}", r#"{"t":"nope"}"#, r#"{"t":"ack"}"#, "[1,2]"] {
            assert_eq!(
                ClientFrame::parse(bad).unwrap_err().code,
                ErrorCode::Malformed,
                "{bad}"
            );
        }
        let long = format!(r#"{{"t":"hello","hb":60,"net":"{}"}}"#, "x".repeat(2_000));
        assert_eq!(
            ClientFrame::parse(&long).unwrap_err().code,
            ErrorCode::TooLarge
        );
    }
}
