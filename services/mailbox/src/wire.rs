//! Proto types to and from the domain's, at the gRPC edge only.

use pushmail_common::clock::timestamp;
use pushmail_proto::common::v1 as common;
use pushmail_proto::mailbox::v1 as pb;

use crate::compose::{Draft, Kind, Signature};
use crate::domain::{
    Address, Attachment, FlagUpdate, Flags, Folder, FolderRole, Listed, MessageKey, Part, Summary,
};
use crate::sync::Synced;

pub(crate) fn folder(folder: &Folder) -> pb::Folder {
    pb::Folder {
        folder_id: folder.id.encode(),
        name: folder.name.clone(),
        parent_id: folder
            .parent
            .as_ref()
            .map(|p| p.encode())
            .unwrap_or_default(),
        role: role(folder.role).into(),
        total: folder.total,
        unread: folder.unread,
        version: folder.version.clone(),
    }
}

fn role(role: FolderRole) -> pb::FolderRole {
    match role {
        FolderRole::Inbox => pb::FolderRole::Inbox,
        FolderRole::Sent => pb::FolderRole::Sent,
        FolderRole::Drafts => pb::FolderRole::Drafts,
        FolderRole::Trash => pb::FolderRole::Trash,
        FolderRole::Junk => pb::FolderRole::Junk,
        FolderRole::Archive => pb::FolderRole::Archive,
        FolderRole::User => pb::FolderRole::User,
    }
}

pub(crate) fn flags(flags: Flags) -> pb::Flags {
    pb::Flags {
        seen: flags.seen,
        flagged: flags.flagged,
        answered: flags.answered,
        forwarded: flags.forwarded,
        draft: flags.draft,
    }
}

pub(crate) fn flag_update(update: Option<&pb::FlagUpdate>) -> FlagUpdate {
    update.map_or_else(FlagUpdate::default, |u| FlagUpdate {
        seen: u.seen,
        flagged: u.flagged,
        answered: u.answered,
        forwarded: u.forwarded,
    })
}

/// What the phone asked to send (uploads are resolved by the caller).
pub(crate) fn draft(r: &pb::SendRequest, kind: Kind) -> Draft {
    Draft {
        kind,
        to: r.to.iter().map(address_in).collect(),
        cc: r.cc.iter().map(address_in).collect(),
        bcc: r.bcc.iter().map(address_in).collect(),
        subject: r.subject.clone(),
        text: r.text_body.clone(),
        html: (!r.html_body.is_empty()).then(|| r.html_body.clone()),
        files: Vec::new(),
        signature: r.signature.as_ref().map(|s| Signature {
            text: s.text.clone(),
            html: (!s.html.is_empty()).then(|| s.html.clone()),
        }),
        language: r.language.clone(),
    }
}

/// What a phone that composed the whole message (`mime`) asked to send:
/// read from the message, with the request's signature and language.
pub(crate) fn phone_draft(
    r: &pb::SendRequest,
    kind: Kind,
) -> Result<Draft, pushmail_mime::ParseError> {
    let limits = pushmail_mime::Limits {
        max_message_bytes: r.mime.len().max(1),
        ..pushmail_mime::Limits::default()
    };
    let contents = pushmail_mime::contents(&r.mime, &limits)?;
    let mut draft = draft(r, kind);
    draft.to = contents.summary.to;
    draft.cc = contents.summary.cc;
    draft.bcc = contents.summary.bcc;
    draft.subject = contents.summary.subject;
    draft.text = contents.text;
    draft.html = contents.html;
    draft.files = contents
        .attachments
        .into_iter()
        .map(|a| crate::compose::File {
            name: a.info.file_name,
            content_type: a.info.content_type,
            bytes: a.bytes,
        })
        .collect();
    Ok(draft)
}

pub(crate) fn address_in(address: &common::Address) -> Address {
    Address {
        name: address.name.clone(),
        address: address.address.trim().to_owned(),
    }
}

fn address(address: &Address) -> common::Address {
    common::Address {
        name: address.name.clone(),
        address: address.address.clone(),
    }
}

pub(crate) fn attachment(attachment: &Attachment) -> common::Attachment {
    common::Attachment {
        part_id: attachment.part_id.clone(),
        file_name: attachment.file_name.clone(),
        content_type: attachment.content_type.clone(),
        size_bytes: attachment.size_bytes,
    }
}

pub(crate) fn summary(key: &MessageKey, summary: &Summary) -> pb::Summary {
    pb::Summary {
        message_id: key.encode(),
        folder_id: key.folder.encode(),
        from: summary.from.as_ref().map(address),
        to: summary.to.iter().map(address).collect(),
        cc: summary.cc.iter().map(address).collect(),
        subject: summary.subject.clone(),
        date: summary.date_ms.map(timestamp),
        received: summary.received_ms.map(timestamp),
        size_bytes: summary.size_bytes,
        flags: Some(flags(summary.flags)),
        snippet: summary.snippet.clone(),
        attachments: summary.attachments.iter().map(attachment).collect(),
        rfc_message_id: summary.rfc_message_id.clone().unwrap_or_default(),
        in_reply_to: summary.in_reply_to.first().cloned().unwrap_or_default(),
        references: summary.references.clone(),
    }
}

pub(crate) fn synced(synced: &Synced) -> pb::SyncResponse {
    pb::SyncResponse {
        added: synced
            .added
            .iter()
            .map(|Listed { key, summary: s }| summary(key, s))
            .collect(),
        changed: synced
            .changed
            .iter()
            .map(|(key, f)| pb::FlagChange {
                message_id: key.encode(),
                flags: Some(flags(*f)),
            })
            .collect(),
        removed: synced.removed.iter().map(MessageKey::encode).collect(),
        next_token: synced.token.as_str().to_owned(),
        more_available: synced.more,
    }
}

pub(crate) fn part(part: &Part) -> pb::Part {
    pb::Part {
        part_id: part.part_id.clone(),
        content_type: part.content_type.clone(),
        file_name: part.file_name.clone(),
        size_bytes: part.size_bytes,
        content_id: part.content_id.clone(),
        attachment: part.attachment,
    }
}

pub(crate) fn moved(from: &MessageKey, to: Option<&MessageKey>) -> pb::Moved {
    pb::Moved {
        message_id: from.encode(),
        new_message_id: to.map(MessageKey::encode).unwrap_or_default(),
    }
}

pub(crate) fn upload(upload: &crate::uploads::Upload) -> pb::Upload {
    pb::Upload {
        upload_id: upload.id.as_str().to_owned(),
        total_bytes: upload.total,
        received_bytes: upload.received,
        complete: upload.complete(),
        expires_at: Some(pushmail_common::clock::timestamp(upload.expires_ms)),
    }
}
