//! An outbound SMS as a person reads it: its text, or the indication text
//! and URL of its WAP Push. Shared by the places that show SMS where no
//! SMS centre sends them (binding's SMS outbox, standalone's terminal).

use pushmail_proto::events::v1::{SmsOutbound, sms_outbound};

use super::wap_read::read_push_pdu;

/// What kind of SMS it is on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShownKind {
    /// A text SMS.
    Text,
    /// A binary WAP Push (Service Indication).
    WapPush,
}

impl ShownKind {
    /// `text` or `wap_push`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::WapPush => "wap_push",
        }
    }
}

/// An SMS shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// Text or WAP Push.
    pub kind: ShownKind,
    /// `otp`, `wake_up`, `notice` or `unspecified`.
    pub purpose: &'static str,
    /// The text, or the indication's text (or why it cannot be read).
    pub text: String,
    /// The WAP Push's URL; empty for a text.
    pub url: String,
}

/// How `sms` reads.
pub fn show(sms: &SmsOutbound) -> Shown {
    use pushmail_proto::events::v1::SmsPurpose;
    let purpose = match sms.purpose() {
        SmsPurpose::Otp => "otp",
        SmsPurpose::WakeUp => "wake_up",
        SmsPurpose::Notice => "notice",
        SmsPurpose::Unspecified => "unspecified",
    };
    match &sms.body {
        Some(sms_outbound::Body::Text(text)) => Shown {
            kind: ShownKind::Text,
            purpose,
            text: text.clone(),
            url: String::new(),
        },
        Some(sms_outbound::Body::WapPushPdu(pdu)) => match read_push_pdu(pdu) {
            Ok(si) => Shown {
                kind: ShownKind::WapPush,
                purpose,
                text: si.text,
                url: si.href,
            },
            Err(e) => Shown {
                kind: ShownKind::WapPush,
                purpose,
                text: format!(
                    "(a WAP Push of {} bytes that does not read: {e})",
                    pdu.len()
                ),
                url: String::new(),
            },
        },
        None => Shown {
            kind: ShownKind::Text,
            purpose,
            text: format!("({} pre-split segments, no body)", sms.segments.len()),
            url: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wap::{ServiceIndication, push_pdu};

    #[test]
    fn texts_and_wap_pushes_read_as_sent() {
        let mut sms = SmsOutbound {
            msisdn: "+8613800138000".into(),
            purpose: pushmail_proto::events::v1::SmsPurpose::Otp.into(),
            body: Some(sms_outbound::Body::Text("code 123456".into())),
            ..Default::default()
        };
        let shown = show(&sms);
        assert_eq!(
            (
                shown.kind,
                shown.purpose,
                shown.text.as_str(),
                shown.url.as_str()
            ),
            (ShownKind::Text, "otp", "code 123456", "")
        );
        let si = ServiceIndication {
            href: "http://127.0.0.1:8080/v1/m/1".into(),
            si_id: "a/INBOX".into(),
            created: 1_795_716_000,
            expires: 1_795_802_400,
            text: "New mail: hello".into(),
        };
        sms.purpose = pushmail_proto::events::v1::SmsPurpose::WakeUp.into();
        sms.body = Some(sms_outbound::Body::WapPushPdu(push_pdu(&si, 1)));
        let shown = show(&sms);
        assert_eq!(
            (
                shown.kind.as_str(),
                shown.purpose,
                shown.text.as_str(),
                shown.url.as_str()
            ),
            (
                "wap_push",
                "wake_up",
                "New mail: hello",
                "http://127.0.0.1:8080/v1/m/1"
            )
        );
        sms.body = Some(sms_outbound::Body::WapPushPdu(vec![1, 2, 3]));
        assert!(
            show(&sms).text.contains("does not read"),
            "{:?}",
            show(&sms)
        );
    }
}
