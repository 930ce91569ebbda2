//! The mailbox as the service reasons about it: folders, message keys,
//! flags and summaries. Proto types are converted to and from these at the
//! gRPC edge only.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A folder's identity: the server's raw name (for IMAP, modified UTF-7 as
/// listed). Shown to clients base64url-encoded, so any name travels in a
/// URL or an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FolderId(String);

impl FolderId {
    /// The folder with this raw server name.
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The raw server name.
    pub fn raw(&self) -> &str {
        &self.0
    }

    /// The opaque id clients see.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The folder a client's opaque id names. A name with a control
    /// character (CR, LF, NUL…) is no folder a server lists, and would end
    /// an IMAP command line early: refused.
    pub fn decode(id: &str) -> Result<Self, BadId> {
        let bad = || BadId::Folder(id.to_owned());
        let bytes = URL_SAFE_NO_PAD.decode(id).map_err(|_| bad())?;
        let name = String::from_utf8(bytes).map_err(|_| bad())?;
        if name.chars().any(char::is_control) {
            return Err(bad());
        }
        Ok(Self(name))
    }
}

impl fmt::Display for FolderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client sent an id this service never issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadId {
    /// Not a folder id.
    #[error("{0:?} is not a folder id")]
    Folder(String),
    /// Not a message id.
    #[error("{0:?} is not a message id")]
    Message(String),
}

/// What a folder is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FolderRole {
    /// Where new mail arrives.
    Inbox,
    /// Copies of sent mail.
    Sent,
    /// Unsent drafts.
    Drafts,
    /// Deleted mail.
    Trash,
    /// Spam.
    Junk,
    /// Filed mail.
    Archive,
    /// A folder the user made.
    User,
}

/// A folder as the phone lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    /// Identity.
    pub id: FolderId,
    /// Display name (the last level, decoded).
    pub name: String,
    /// The parent folder, for a nested one.
    pub parent: Option<FolderId>,
    /// What it is for.
    pub role: FolderRole,
    /// Messages in it.
    pub total: u32,
    /// Unread messages in it.
    pub unread: u32,
    /// Changes whenever a sync would find something new.
    pub version: String,
}

/// IMAP's per-folder message identity: a UID under a UIDVALIDITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uid(pub u32);

/// A message: its folder, the folder's UIDVALIDITY and its UID. Encoded as
/// `<uidvalidity>.<uid>.<folder id>` so a stale id (the folder was
/// renumbered) is recognised rather than naming another message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageKey {
    /// Its folder.
    pub folder: FolderId,
    /// The folder's UIDVALIDITY when the id was issued.
    pub uid_validity: u32,
    /// Its UID.
    pub uid: Uid,
}

impl MessageKey {
    /// The opaque id clients see.
    pub fn encode(&self) -> String {
        format!(
            "{}.{}.{}",
            self.uid_validity,
            self.uid.0,
            self.folder.encode()
        )
    }

    /// The message a client's opaque id names.
    pub fn decode(id: &str) -> Result<Self, BadId> {
        let bad = || BadId::Message(id.to_owned());
        let mut fields = id.splitn(3, '.');
        let uid_validity = fields.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let uid = fields.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        let folder = FolderId::decode(fields.next().ok_or_else(bad)?).map_err(|_| bad())?;
        if uid == 0 {
            return Err(bad());
        }
        Ok(Self {
            folder,
            uid_validity,
            uid: Uid(uid),
        })
    }
}

/// The flags the phone sees and sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags {
    /// Read.
    pub seen: bool,
    /// Starred.
    pub flagged: bool,
    /// Replied to.
    pub answered: bool,
    /// Forwarded (`$Forwarded`).
    pub forwarded: bool,
    /// A draft.
    pub draft: bool,
}

impl Flags {
    /// One byte, for compact sync state.
    pub fn bits(self) -> u8 {
        u8::from(self.seen)
            | u8::from(self.flagged) << 1
            | u8::from(self.answered) << 2
            | u8::from(self.forwarded) << 3
            | u8::from(self.draft) << 4
    }

    /// The inverse of [`Flags::bits`].
    pub fn from_bits(bits: u8) -> Self {
        Self {
            seen: bits & 1 != 0,
            flagged: bits & 2 != 0,
            answered: bits & 4 != 0,
            forwarded: bits & 8 != 0,
            draft: bits & 16 != 0,
        }
    }
}

/// A change to some flags; `None` leaves a flag as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FlagUpdate {
    /// Read.
    pub seen: Option<bool>,
    /// Starred.
    pub flagged: Option<bool>,
    /// Replied to.
    pub answered: Option<bool>,
    /// Forwarded.
    pub forwarded: Option<bool>,
}

impl FlagUpdate {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `flags` with this update made.
    pub fn apply(&self, flags: Flags) -> Flags {
        Flags {
            seen: self.seen.unwrap_or(flags.seen),
            flagged: self.flagged.unwrap_or(flags.flagged),
            answered: self.answered.unwrap_or(flags.answered),
            forwarded: self.forwarded.unwrap_or(flags.forwarded),
            ..flags
        }
    }
}

/// A mail address with its display name.
pub use pushmail_mime::MailAddress as Address;

/// An attachment as the phone lists it.
pub use pushmail_mime::AttachmentInfo as Attachment;

/// One leaf part of a message, body or attachment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Part {
    /// IMAP body section (`1`, `2.1`).
    pub part_id: String,
    /// `type/subtype`, lowercased.
    pub content_type: String,
    /// Decoded file name, when it has one.
    pub file_name: String,
    /// About its decoded size.
    pub size_bytes: u64,
    /// `Content-ID`, for an inline part the HTML body refers to.
    pub content_id: String,
    /// An attachment rather than (part of) the body.
    pub attachment: bool,
}

/// A message as a folder listing shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary {
    /// Sender.
    pub from: Option<Address>,
    /// Recipients.
    pub to: Vec<Address>,
    /// Copies.
    pub cc: Vec<Address>,
    /// Subject, decoded.
    pub subject: String,
    /// `Date`, ms since the epoch.
    pub date_ms: Option<i64>,
    /// When the server received it, ms since the epoch.
    pub received_ms: Option<i64>,
    /// Size as stored, bytes.
    pub size_bytes: u64,
    /// Its flags.
    pub flags: Flags,
    /// The start of its text.
    pub snippet: String,
    /// Its attachments.
    pub attachments: Vec<Attachment>,
    /// Every leaf part, bodies included (empty where the backend does
    /// not know its structure).
    pub parts: Vec<Part>,
    /// `Message-ID`, no angle brackets.
    pub rfc_message_id: Option<String>,
    /// `In-Reply-To` ids.
    pub in_reply_to: Vec<String>,
    /// `References` ids, oldest first.
    pub references: Vec<String>,
}

/// What a search looks for; every condition given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    /// Words the message contains, in its headers or text, any case.
    pub text: Option<String>,
    /// Received at or after this, ms since the epoch.
    pub received_after_ms: Option<i64>,
    /// Received before this, ms since the epoch.
    pub received_before_ms: Option<i64>,
}

impl Query {
    /// Whether a message received at `received_ms` is within the dates.
    pub fn dated(&self, received_ms: i64) -> bool {
        self.received_after_ms
            .is_none_or(|after| received_ms >= after)
            && self
                .received_before_ms
                .is_none_or(|before| received_ms < before)
    }

    /// Whether what `summary` holds (addresses, subject, the start of the
    /// text) contains the words, any case: the most a store that keeps
    /// summaries, not an index of every word, can say.
    pub fn summarised(&self, summary: &Summary) -> bool {
        let Some(text) = &self.text else {
            return true;
        };
        let needle = text.to_lowercase();
        let contains = |hay: &str| hay.to_lowercase().contains(&needle);
        summary
            .from
            .iter()
            .chain(&summary.to)
            .chain(&summary.cc)
            .any(|a| contains(&a.name) || contains(&a.address))
            || contains(&summary.subject)
            || contains(&summary.snippet)
    }
}

/// A summary with the message it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Which message.
    pub key: MessageKey,
    /// What it is.
    pub summary: Summary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_whatever_the_folder_is_called() {
        for raw in [
            "INBOX",
            "Sent Messages",
            "&XfJT0ZAB-",
            "a.b/c",
            "x\"y\\z",
            "",
        ] {
            let folder = FolderId::new(raw);
            assert_eq!(FolderId::decode(&folder.encode()).unwrap(), folder);
            let key = MessageKey {
                folder,
                uid_validity: 1_700_000_000,
                uid: Uid(42),
            };
            assert_eq!(MessageKey::decode(&key.encode()).unwrap(), key);
        }
    }

    #[test]
    fn ids_not_issued_here_are_refused() {
        for id in [
            "",
            "1",
            "1.2",
            "x.2.SU5CT1g",
            "1.x.SU5CT1g",
            "1.0.SU5CT1g",
            "1.2.!!",
        ] {
            assert!(MessageKey::decode(id).is_err(), "{id}");
        }
        assert!(FolderId::decode("//").is_err());
        // A name smuggling a second IMAP command.
        let injected = FolderId::new("INBOX\"\r\na2 DELETE \"INBOX").encode();
        assert!(FolderId::decode(&injected).is_err());
        assert!(MessageKey::decode(&format!("1.2.{injected}")).is_err());
    }

    #[test]
    fn flags_fit_in_a_byte() {
        for bits in 0..32u8 {
            assert_eq!(Flags::from_bits(bits).bits(), bits);
        }
    }
}
