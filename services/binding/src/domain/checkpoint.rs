//! Where ingest stands in a watched mailbox (see `MailboxCheckpoint` in
//! the proto): the durable copy of its marks.

/// How far a mailbox was announced when ingest last saved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailboxCheckpoint {
    /// The mailbox's UIDVALIDITY (0 for POP3).
    pub uid_validity: u32,
    /// Every UID up to this one was announced (0 for POP3).
    pub last_uid: u32,
    /// When ingest took it, ms since the epoch.
    pub at_ms: i64,
}

/// Longest mailbox name kept (IMAP names are short in practice; the bound
/// keeps a caller from storing blobs in it).
pub(crate) const MAX_MAILBOX_NAME: usize = 255;
