//! Connections to mail servers, shared with the mailbox service.

pub use pushmail_common::upstream::{MailStream, Security, Tls};
