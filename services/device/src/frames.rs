//! The device protocol's frames (`docs/device-protocol.md`), as the
//! device sends and reads them.

use serde::{Deserialize, Serialize};

/// Device → server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Outgoing {
    Hello {
        last_ack: u64,
        /// The outbox generation `last_ack` counts in; none before the
        /// first welcome.
        #[serde(rename = "gen", skip_serializing_if = "is_zero")]
        generation: u64,
        hb: u32,
        net: String,
    },
    #[serde(rename = "hb")]
    Heartbeat,
    Ack {
        seq: u64,
        /// So that an ack crossing a resync is not taken for the new
        /// generation's.
        #[serde(rename = "gen", skip_serializing_if = "is_zero")]
        generation: u64,
    },
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// An attachment as a notification lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "type")]
    pub content_type: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub preview: String,
}

/// A notification; what the content level withholds is absent.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Notification {
    pub seq: u64,
    #[serde(default)]
    pub account: String,
    #[serde(default)]
    pub mailbox: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub snippet: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub at: Option<i64>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub digest: Option<u32>,
    #[serde(default)]
    pub trace: Option<String>,
    /// No one mail: the server lost track of the mailbox; sync it (list
    /// it again) rather than show a mail.
    #[serde(default)]
    pub sync: bool,
    /// On a sync: what another of the account's phones did to the
    /// mailbox.
    #[serde(default)]
    pub changed: Option<Changed>,
}

/// What another of the account's phones did to a mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Changed {
    /// Flags set or cleared.
    Flags,
    /// Mail moved.
    Moved,
    /// Mail deleted.
    Deleted,
    /// Mail sent.
    Sent,
    /// A change this client does not know yet: a sync all the same.
    #[serde(other)]
    Other,
}

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flags => "flags",
            Self::Moved => "moved",
            Self::Deleted => "deleted",
            Self::Sent => "sent",
            Self::Other => "other",
        })
    }
}

/// A long-poll answer (`POST /v1/ping`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PingAnswer {
    /// `notification`, `resync`, `expired` or `taken_over`.
    pub status: String,
    pub hb: u32,
    /// The outbox generation the device's cursor counts in from now on.
    #[serde(default, rename = "gen")]
    pub generation: u64,
    /// After a resync: the device's cursor from now on.
    #[serde(default)]
    pub from: Option<u64>,
    #[serde(default)]
    pub notifications: Vec<Notification>,
}

/// Server → device.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "t", rename_all = "lowercase")]
pub enum Incoming {
    Welcome {
        hb: u32,
        #[serde(default)]
        session: String,
        /// The outbox generation; absent when the server could not read
        /// the outbox (a reconnect follows).
        #[serde(default, rename = "gen")]
        generation: u64,
    },
    #[serde(rename = "hb")]
    Heartbeat,
    #[serde(rename = "n")]
    Notification(Notification),
    /// Sync the mailboxes; the replay that follows continues after `from`
    /// in `generation` (both absent from servers before generations: the
    /// cursor stays).
    Resync {
        #[serde(default, rename = "gen")]
        generation: u64,
        #[serde(default)]
        from: Option<u64>,
    },
    Reconnect {
        #[serde(default)]
        after_ms: u64,
        #[serde(default)]
        reason: String,
    },
    Error {
        code: String,
        #[serde(default)]
        message: String,
    },
    /// A frame of a later protocol version: ignored, not fatal.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_and_write_as_documented() {
        let hello = serde_json::to_string(&Outgoing::Hello {
            last_ack: 41,
            generation: 7,
            hb: 600,
            net: "46000-lte".into(),
        })
        .unwrap();
        assert_eq!(
            hello,
            r#"{"t":"hello","last_ack":41,"gen":7,"hb":600,"net":"46000-lte"}"#
        );
        let fresh = Outgoing::Hello {
            last_ack: 0,
            generation: 0,
            hb: 60,
            net: String::new(),
        };
        assert!(!serde_json::to_string(&fresh).unwrap().contains("gen"));
        assert_eq!(
            serde_json::to_string(&Outgoing::Ack {
                seq: 3,
                generation: 7
            })
            .unwrap(),
            r#"{"t":"ack","seq":3,"gen":7}"#
        );
        assert_eq!(
            serde_json::from_str::<Incoming>(r#"{"t":"resync","gen":7,"from":0}"#).unwrap(),
            Incoming::Resync {
                generation: 7,
                from: Some(0)
            }
        );
        assert_eq!(
            serde_json::from_str::<Incoming>(r#"{"t":"resync"}"#).unwrap(),
            Incoming::Resync {
                generation: 0,
                from: None
            },
            "a server from before generations"
        );
        assert_eq!(
            serde_json::to_string(&Outgoing::Heartbeat).unwrap(),
            r#"{"t":"hb"}"#
        );
        let n: Incoming = serde_json::from_str(
            r#"{"t":"n","seq":43,"account":"a","mailbox":"INBOX","subject":"Hi","attachments":[{"name":"q3.pdf","type":"application/pdf","size":1,"url":"u","preview":"p"}],"digest":3}"#,
        )
        .unwrap();
        let Incoming::Notification(n) = n else {
            panic!("{n:?}")
        };
        assert_eq!(
            (n.seq, n.subject.as_deref(), n.from),
            (43, Some("Hi"), None)
        );
        assert_eq!(n.attachments[0].content_type, "application/pdf");
        assert!(!n.sync, "a mail");
        let Incoming::Notification(sync) = serde_json::from_str(
            r#"{"t":"n","seq":44,"account":"a","mailbox":"INBOX","collapse":"sync:a/INBOX","at":1,"sync":true}"#,
        )
        .unwrap() else {
            panic!("a notification")
        };
        assert_eq!(
            (sync.seq, sync.sync, sync.subject, sync.url, sync.changed),
            (44, true, None, None, None)
        );
        // Another phone's change, and one this client does not know.
        for (text, changed) in [("moved", Changed::Moved), ("archived", Changed::Other)] {
            let frame = format!(
                r#"{{"t":"n","seq":45,"account":"a","mailbox":"Archive","sync":true,"changed":"{text}"}}"#
            );
            let Incoming::Notification(n) = serde_json::from_str(&frame).unwrap() else {
                panic!("a notification")
            };
            assert_eq!(n.changed, Some(changed));
        }
        let future: Incoming = serde_json::from_str(r#"{"t":"later","x":1}"#).unwrap();
        assert_eq!(future, Incoming::Unknown);
    }
}
