//! The device mailbox API's JSON, to and from the mailbox service's
//! messages: field names are the device protocol's
//! (`docs/device-protocol.md`, "Mailbox"), never the proto's.

use pushmail_proto::common::v1 as common;
use pushmail_proto::mailbox::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::reply::ApiError;

fn ms(timestamp: Option<&prost_types::Timestamp>) -> Option<i64> {
    timestamp.map(|t| t.seconds * 1_000 + i64::from(t.nanos / 1_000_000))
}

fn address(a: &common::Address) -> Value {
    json!({"name": a.name, "address": a.address})
}

fn role(role: pb::FolderRole) -> &'static str {
    match role {
        pb::FolderRole::Inbox => "inbox",
        pb::FolderRole::Sent => "sent",
        pb::FolderRole::Drafts => "drafts",
        pb::FolderRole::Trash => "trash",
        pb::FolderRole::Junk => "junk",
        pb::FolderRole::Archive => "archive",
        pb::FolderRole::User | pb::FolderRole::Unspecified => "user",
    }
}

fn flags(f: Option<&pb::Flags>) -> Value {
    let f = f.cloned().unwrap_or_default();
    json!({
        "seen": f.seen,
        "flagged": f.flagged,
        "answered": f.answered,
        "forwarded": f.forwarded,
        "draft": f.draft,
    })
}

pub(super) fn folders(response: &pb::ListFoldersResponse) -> Value {
    let folders: Vec<Value> = response
        .folders
        .iter()
        .map(|f| {
            json!({
                "id": f.folder_id,
                "name": f.name,
                "parent": (!f.parent_id.is_empty()).then_some(&f.parent_id),
                "role": role(f.role()),
                "total": f.total,
                "unread": f.unread,
                "version": f.version,
            })
        })
        .collect();
    json!({ "folders": folders })
}

pub(super) fn summary(s: &pb::Summary) -> Value {
    let attachments: Vec<Value> = s
        .attachments
        .iter()
        .map(|a| {
            json!({
                "part": a.part_id,
                "name": a.file_name,
                "type": a.content_type,
                "size": a.size_bytes,
            })
        })
        .collect();
    json!({
        "id": s.message_id,
        "folder": s.folder_id,
        "from": s.from.as_ref().map(address),
        "to": s.to.iter().map(address).collect::<Vec<_>>(),
        "cc": s.cc.iter().map(address).collect::<Vec<_>>(),
        "subject": s.subject,
        "date": ms(s.date.as_ref()),
        "received": ms(s.received.as_ref()),
        "size": s.size_bytes,
        "flags": flags(s.flags.as_ref()),
        "snippet": s.snippet,
        "attachments": attachments,
        "message_id": s.rfc_message_id,
        "in_reply_to": s.in_reply_to,
        "references": s.references,
    })
}

pub(super) fn changes(r: &pb::SyncResponse) -> Value {
    let changed: Vec<Value> = r
        .changed
        .iter()
        .map(|c| json!({"id": c.message_id, "flags": flags(c.flags.as_ref())}))
        .collect();
    json!({
        "added": r.added.iter().map(summary).collect::<Vec<_>>(),
        "changed": changed,
        "removed": r.removed,
        "next": r.next_token,
        "more": r.more_available,
    })
}

pub(super) fn message(m: &pb::Message) -> Value {
    let mut body = m.summary.as_ref().map_or_else(|| json!({}), summary);
    let parts: Vec<Value> = m
        .parts
        .iter()
        .map(|p| {
            json!({
                "part": p.part_id,
                "type": p.content_type,
                "name": p.file_name,
                "size": p.size_bytes,
                "content_id": p.content_id,
                "attachment": p.attachment,
            })
        })
        .collect();
    body["parts"] = Value::Array(parts);
    body
}

pub(super) fn moved(moved: &[pb::Moved]) -> Value {
    let moved: Vec<Value> = moved
        .iter()
        .map(|m| json!({"id": m.message_id, "new_id": m.new_message_id}))
        .collect();
    json!({ "moved": moved })
}

pub(super) fn upload(u: &pb::Upload) -> Value {
    json!({
        "id": u.upload_id,
        "size": u.total_bytes,
        "received": u.received_bytes,
        "complete": u.complete,
        "expires": ms(u.expires_at.as_ref()),
    })
}

/// `?since=&window=` of a folder's changes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangesQuery {
    /// The `next` of the previous answer; absent: from the start.
    #[serde(default)]
    pub(super) since: String,
    /// Entries wanted (0 or absent: the service's default).
    #[serde(default)]
    pub(super) window: u32,
}

/// Messages named by id.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FlagsBody {
    ids: Vec<String>,
    seen: Option<bool>,
    flagged: Option<bool>,
    answered: Option<bool>,
    forwarded: Option<bool>,
}

impl FlagsBody {
    pub(super) fn request(
        self,
        tenant: String,
        account: String,
        device: String,
    ) -> pb::SetFlagsRequest {
        pb::SetFlagsRequest {
            tenant_id: tenant,
            account_id: account,
            device_id: device,
            message_ids: self.ids,
            update: Some(pb::FlagUpdate {
                seen: self.seen,
                flagged: self.flagged,
                answered: self.answered,
                forwarded: self.forwarded,
            }),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MoveBody {
    pub(super) ids: Vec<String>,
    /// The destination folder's id.
    pub(super) to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteBody {
    pub(super) ids: Vec<String>,
    #[serde(default)]
    pub(super) permanent: bool,
}

/// A recipient: `"a@b"` or `{"name": …, "address": …}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Recipient {
    Bare(String),
    Named {
        #[serde(default)]
        name: String,
        address: String,
    },
}

impl From<Recipient> for common::Address {
    fn from(r: Recipient) -> Self {
        match r {
            Recipient::Bare(address) => Self {
                name: String::new(),
                address,
            },
            Recipient::Named { name, address } => Self { name, address },
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendBody {
    /// new, reply, reply_all, forward, forward_attached.
    kind: String,
    #[serde(default)]
    reference: String,
    #[serde(default)]
    to: Vec<Recipient>,
    #[serde(default)]
    cc: Vec<Recipient>,
    #[serde(default)]
    bcc: Vec<Recipient>,
    #[serde(default)]
    subject: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    html: String,
    #[serde(default)]
    uploads: Vec<String>,
    #[serde(default)]
    language: String,
    #[serde(default)]
    client_send_id: String,
}

impl SendBody {
    /// The Send from `device`, with its signature and (when the body
    /// names none) the language of its `Accept-Language`.
    pub(super) fn request(
        self,
        tenant: String,
        account: String,
        device: String,
        signature: &str,
        accept_language: Option<&str>,
    ) -> Result<pb::SendRequest, ApiError> {
        let kind = match self.kind.as_str() {
            "new" => pb::SendKind::New,
            "reply" => pb::SendKind::Reply,
            "reply_all" => pb::SendKind::ReplyAll,
            "forward" => pb::SendKind::ForwardInline,
            "forward_attached" => pb::SendKind::ForwardAttached,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "kind {other:?}: use new, reply, reply_all, forward or forward_attached"
                )));
            }
        };
        let language = if self.language.is_empty() {
            accept_language
                .and_then(|h| h.split(',').next())
                .map(|tag| tag.split(';').next().unwrap_or_default().trim().to_owned())
                .unwrap_or_default()
        } else {
            self.language
        };
        let addresses = |list: Vec<Recipient>| list.into_iter().map(Into::into).collect();
        Ok(pb::SendRequest {
            tenant_id: tenant,
            account_id: account,
            kind: kind.into(),
            reference_message_id: self.reference,
            to: addresses(self.to),
            cc: addresses(self.cc),
            bcc: addresses(self.bcc),
            subject: self.subject,
            text_body: self.text,
            html_body: self.html,
            upload_ids: self.uploads,
            language,
            client_send_id: self.client_send_id,
            signature: (!signature.is_empty()).then(|| pb::Signature {
                text: signature.to_owned(),
                html: String::new(),
            }),
            device_id: device,
            // The device API sends fields, never a composed message.
            mime: Vec::new(),
            // Our own device keeps no Sent folder of its own.
            no_sent_copy: false,
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BeginUploadBody {
    #[serde(default)]
    pub(super) file_name: String,
    #[serde(default)]
    pub(super) content_type: String,
    pub(super) size: u64,
}
