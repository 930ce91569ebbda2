//! Dovecot's push_notification OX driver payload (`messageNew`), and the
//! stand-in message it becomes: the driver sends what a push needs (user,
//! folder, IMAP coordinates, sender, subject, snippet), not the message.

use serde::Deserialize;

/// One notification as the OX driver sends it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct OxEvent {
    /// The mailbox owner's login (an account address).
    pub user: String,
    /// `messageNew` (other events are acknowledged and ignored).
    pub event: String,
    /// IMAP folder.
    #[serde(default)]
    pub folder: Option<String>,
    /// IMAP UIDVALIDITY of the folder.
    #[serde(default, rename = "imap-uidvalidity")]
    pub uid_validity: Option<u32>,
    /// IMAP UID of the new message.
    #[serde(default, rename = "imap-uid")]
    pub uid: Option<u32>,
    /// Sender, as displayed.
    #[serde(default)]
    pub from: Option<String>,
    /// Subject, decoded.
    #[serde(default)]
    pub subject: Option<String>,
    /// Start of the body.
    #[serde(default)]
    pub snippet: Option<String>,
}

/// The event the webhook announces.
pub(crate) const MESSAGE_NEW: &str = "messageNew";

impl OxEvent {
    /// A minimal RFC 5322 message carrying the notified fields, so the mail
    /// goes through the same parsing, storage and idempotency as any other.
    /// Line breaks in the values are flattened: they must not inject headers.
    pub(crate) fn to_message(&self) -> Vec<u8> {
        let clean = |value: &Option<String>| {
            value
                .as_deref()
                .unwrap_or_default()
                .replace(['\r', '\n'], " ")
                .trim()
                .to_owned()
        };
        let mut message = String::new();
        let from = clean(&self.from);
        if !from.is_empty() {
            message.push_str(&format!("From: {from}\r\n"));
        }
        message.push_str(&format!("To: {}\r\n", clean(&Some(self.user.clone()))));
        message.push_str(&format!("Subject: {}\r\n", clean(&self.subject)));
        message.push_str("Content-Type: text/plain; charset=utf-8\r\n\r\n");
        message.push_str(self.snippet.as_deref().unwrap_or_default());
        message.push_str("\r\n");
        message.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ox_payloads_parse_and_cannot_inject_headers() {
        let event: OxEvent = serde_json::from_str(
            r#"{"user":"li@corp.example","event":"messageNew","folder":"INBOX",
                "imap-uidvalidity":123,"imap-uid":7,"from":"张伟 <z@x.cn>",
                "subject":"hi\r\nBcc: evil@x","snippet":"hello","unseen":3,"extra":true}"#,
        )
        .unwrap();
        assert_eq!(event.uid, Some(7));
        let message = String::from_utf8(event.to_message()).unwrap();
        assert!(
            message.contains("Subject: hi  Bcc: evil@x\r\n"),
            "{message}"
        );
        assert!(!message.contains("\r\nBcc:"));
        assert!(message.starts_with("From: 张伟 <z@x.cn>\r\n"));
        let bare: OxEvent = serde_json::from_str(r#"{"user":"a@b.c","event":"flagsSet"}"#).unwrap();
        assert_eq!(bare.event, "flagsSet");
        assert!(
            serde_json::from_str::<OxEvent>(r#"{"event":"messageNew"}"#).is_err(),
            "no user"
        );
    }
}
