//! SMS centre delivery receipts: a deliver_sm whose esm_class marks it a
//! receipt, naming the message in the `receipted_message_id` and
//! `message_state` optional parameters (§5.3.2.12, §5.3.2.35) or, on older
//! SMS centres, in the text of Appendix B (`id:… stat:DELIVRD err:…`),
//! which may come in `message_payload` instead of the short message.

use smpp34::{TlvList as _, deliver_sm};

use crate::pdu::{self, ESM_DELIVERY_RECEIPT};

/// Where the message ended up (§5.2.28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageState {
    Enroute,
    Delivered,
    Expired,
    Deleted,
    Undeliverable,
    Accepted,
    Unknown,
    Rejected,
}

impl MessageState {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Enroute,
            2 => Self::Delivered,
            3 => Self::Expired,
            4 => Self::Deleted,
            5 => Self::Undeliverable,
            6 => Self::Accepted,
            7 => Self::Unknown,
            8 => Self::Rejected,
            _ => return None,
        })
    }

    fn from_text(stat: &str) -> Option<Self> {
        Some(match stat {
            "ENROUTE" => Self::Enroute,
            "DELIVRD" => Self::Delivered,
            "EXPIRED" => Self::Expired,
            "DELETED" => Self::Deleted,
            "UNDELIV" => Self::Undeliverable,
            "ACCEPTD" => Self::Accepted,
            "UNKNOWN" => Self::Unknown,
            "REJECTD" => Self::Rejected,
            _ => return None,
        })
    }

    /// No later receipt will come for the message.
    pub(crate) const fn is_final(self) -> bool {
        !matches!(self, Self::Enroute)
    }

    /// The message reached the phone (or customer care accepted it for the subscriber).
    pub(crate) const fn is_delivered(self) -> bool {
        matches!(self, Self::Delivered | Self::Accepted)
    }

    /// The Appendix B word.
    pub(crate) const fn word(self) -> &'static str {
        match self {
            Self::Enroute => "ENROUTE",
            Self::Delivered => "DELIVRD",
            Self::Expired => "EXPIRED",
            Self::Deleted => "DELETED",
            Self::Undeliverable => "UNDELIV",
            Self::Accepted => "ACCEPTD",
            Self::Unknown => "UNKNOWN",
            Self::Rejected => "REJECTD",
        }
    }
}

/// A parsed receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Receipt {
    /// The id the SMS centre gave in its submit_sm_resp.
    pub(crate) message_id: String,
    pub(crate) state: MessageState,
    /// The network's error code, when one is given (`err:` or `network_error_code`).
    pub(crate) error: Option<String>,
}

/// Why a receipt could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReceiptError {
    #[error("the receipt names no message id")]
    NoMessageId,
    #[error("the receipt names no known message state")]
    NoState,
}

/// `Ok(None)` when `message` is not a delivery receipt (a mobile-originated SMS).
pub(crate) fn parse(message: &deliver_sm) -> Result<Option<Receipt>, ReceiptError> {
    if message.esm_class & 0x3C != ESM_DELIVERY_RECEIPT {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(pdu::text_of(message));
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|word| word.strip_prefix(name))
            .map(str::to_owned)
    };
    let message_id = message
        .tlvs
        .receipted_message_id()
        .filter(|id| !id.is_empty())
        .or_else(|| field("id:"))
        .ok_or(ReceiptError::NoMessageId)?;
    let state = message
        .tlvs
        .message_state()
        .and_then(MessageState::from_code)
        .or_else(|| field("stat:").as_deref().and_then(MessageState::from_text))
        .ok_or(ReceiptError::NoState)?;
    // Zero means "no error" in both forms.
    let error = match message.tlvs.network_error_code() {
        Some((network, code)) => {
            (code != 0).then(|| format!("network type {network} error {code}"))
        }
        None => field("err:").filter(|e| e.bytes().any(|b| b != b'0')),
    };
    Ok(Some(Receipt {
        message_id,
        state,
        error,
    }))
}

/// The other spellings of a message id: SMS centres that answer submit_sm
/// with a hexadecimal id often write it in decimal in the receipt text, and
/// the other way round.
pub(crate) fn alternative_ids(id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    if id.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = id.parse::<u128>()
    {
        ids.push(format!("{n:x}"));
        ids.push(format!("{n:X}"));
    }
    if let Ok(n) = u128::from_str_radix(id, 16) {
        ids.push(n.to_string());
    }
    ids.retain(|alt| alt != id);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    use smpp34::{Tlv, TlvTag};

    fn receipt(text: &str, tlvs: Vec<Tlv>) -> deliver_sm {
        pdu::test_receipt(1, text, tlvs)
    }

    #[test]
    fn optional_parameters_win_over_the_text() {
        let message = receipt(
            "id:999 sub:001 dlvrd:001 submit date:2611270930 done date:2611270931 stat:UNDELIV err:000",
            vec![
                Tlv::from_c_string(TlvTag::ReceiptedMessageId, "abc123"),
                Tlv::from_u8(TlvTag::MessageStateTlv, 2),
            ],
        );
        let parsed = parse(&message).unwrap().unwrap();
        assert_eq!(parsed.message_id, "abc123");
        assert_eq!(parsed.state, MessageState::Delivered);
        assert_eq!(parsed.error, None);
    }

    #[test]
    fn the_appendix_b_text_is_read_when_there_are_no_parameters() {
        let message = receipt(
            "id:0123456789 sub:001 dlvrd:000 submit date:2611270930 done date:2611271930 stat:EXPIRED err:027 text:hi",
            Vec::new(),
        );
        let parsed = parse(&message).unwrap().unwrap();
        assert_eq!(
            (
                parsed.message_id.as_str(),
                parsed.state,
                parsed.error.as_deref()
            ),
            ("0123456789", MessageState::Expired, Some("027"))
        );
        assert!(parsed.state.is_final() && !parsed.state.is_delivered());
    }

    #[test]
    fn a_network_error_and_text_in_message_payload_are_read() {
        let message = receipt(
            "",
            vec![
                Tlv::from_tag(
                    TlvTag::MessagePayload,
                    b"id:77 sub:001 dlvrd:000 stat:UNDELIV err:000".to_vec(),
                ),
                Tlv::from_tag(TlvTag::NetworkErrorCode, vec![3, 0, 31]),
            ],
        );
        let parsed = parse(&message).unwrap().unwrap();
        assert_eq!(parsed.message_id, "77");
        assert_eq!(parsed.state, MessageState::Undeliverable);
        assert_eq!(parsed.error.as_deref(), Some("network type 3 error 31"));
    }

    #[test]
    fn mobile_originated_messages_and_broken_receipts_are_told_apart() {
        let mut mo = receipt("hello", Vec::new());
        mo.esm_class = 0;
        assert_eq!(parse(&mo), Ok(None));
        assert_eq!(
            parse(&receipt("stat:DELIVRD", Vec::new())),
            Err(ReceiptError::NoMessageId)
        );
        assert_eq!(
            parse(&receipt("id:1 stat:MAYBE", Vec::new())),
            Err(ReceiptError::NoState)
        );
    }

    #[test]
    fn decimal_and_hexadecimal_ids_are_matched_both_ways() {
        assert_eq!(alternative_ids("255"), vec!["ff", "FF", "597"]);
        assert_eq!(alternative_ids("ff"), vec!["255"]);
        assert!(alternative_ids("msg-1").is_empty());
    }
}
