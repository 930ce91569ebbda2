//! The SMS wake-up: a WAP Push Service Indication, WBXML-encoded, in a
//! connectionless WSP push PDU, sent as binary SMS to the WAP Push port.
//!
//! Specifications used:
//! - WAP-167-ServiceInd-20010731-a, Service Indication 1.0: the document
//!   and its WBXML tokens (§8.3), dates as OPAQUE packed digits (§8.2.2);
//! - WAP-192-WBXML-20010725-a, WBXML 1.3: header, global tokens (END,
//!   STR_I, OPAQUE), tag and attribute encoding;
//! - WAP-230-WSP-20010705-a, WSP: the Push PDU (§8.2.4.1), uintvar lengths
//!   (§8.1.2), well-known content type `application/vnd.wap.sic` (0x2E) and
//!   header `X-Wap-Application-Id` (0x2F) with `x-wap-application:wml.ua`
//!   (0x04) from Appendix A;
//! - WAP-259-WDP-20010614-a and 3GPP TS 23.040 §9.2.3.24.4: 16-bit port
//!   addressing (destination 2948, source 9200) in the user data header,
//!   §9.2.3.24.1 for concatenation.

use pushmail_wbxml::{UTF8, Writer};

use super::{Coding, Segment, concat_ie};

/// What the phone is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceIndication {
    /// Where the push client goes (the message or the mailbox).
    pub href: String,
    /// Identifies the indication: a newer one with the same id replaces it
    /// on the phone.
    pub si_id: String,
    /// When the mail arrived, seconds since the epoch.
    pub created: i64,
    /// When the indication is stale, seconds since the epoch.
    pub expires: i64,
    /// The text shown.
    pub text: String,
}

// SI 1.0 tokens.
const WBXML_1_2: u8 = 0x02;
const PUBLIC_ID_SI_10: u32 = 0x05;
const TAG_SI: u8 = 0x05;
const TAG_INDICATION: u8 = 0x06;
const ATTR_ACTION_SIGNAL_MEDIUM: u8 = 0x07;
const ATTR_CREATED: u8 = 0x0A;
const ATTR_HREF: u8 = 0x0B;
const ATTR_HREF_HTTP: u8 = 0x0C;
const ATTR_HREF_HTTPS: u8 = 0x0E;
const ATTR_SI_EXPIRES: u8 = 0x10;
const ATTR_SI_ID: u8 = 0x11;
// WSP.
const PDU_PUSH: u8 = 0x06;
const CONTENT_TYPE_SIC: u8 = 0x80 | 0x2E;
const HEADER_APPLICATION_ID: u8 = 0x80 | 0x2F;
const APPLICATION_WML_UA: u8 = 0x80 | 0x04;
// WDP over SMS.
const PORT_WAP_PUSH: u16 = 2948;
const PORT_WAP_CONNECTIONLESS: u16 = 9200;
const SMS_OCTETS: usize = 140;

/// Drops NUL, which would end an inline string early and has no place
/// in these values.
fn inline(w: &mut Writer, text: &str) -> Result<(), pushmail_wbxml::WbxmlError> {
    w.inline(&text.replace('\0', ""))
}

/// `YYYYMMDDhhmmss` as packed digit pairs, trailing zero octets dropped.
fn date(seconds: i64) -> Vec<u8> {
    let time = jiff::tz::TimeZone::UTC
        .to_datetime(jiff::Timestamp::from_second(seconds).unwrap_or(jiff::Timestamp::UNIX_EPOCH));
    let year = u16::try_from(time.year()).unwrap_or(1970);
    let digits = [
        year / 100,
        year % 100,
        u16::try_from(time.month()).unwrap_or(1),
        u16::try_from(time.day()).unwrap_or(1),
        u16::try_from(time.hour()).unwrap_or(0),
        u16::try_from(time.minute()).unwrap_or(0),
        u16::try_from(time.second()).unwrap_or(0),
    ];
    let mut packed: Vec<u8> = digits
        .iter()
        .map(|&d| u8::try_from(((d / 10) << 4) | (d % 10)).unwrap_or(0))
        .collect();
    while packed.last() == Some(&0) {
        packed.pop();
    }
    packed
}

fn document(si: &ServiceIndication) -> Result<Vec<u8>, pushmail_wbxml::WbxmlError> {
    let mut w = Writer::new(WBXML_1_2, PUBLIC_ID_SI_10, UTF8);
    w.tag(TAG_SI, true, false)?;
    w.tag(TAG_INDICATION, true, true)?;
    if let Some(rest) = si.href.strip_prefix("https://") {
        w.attribute(ATTR_HREF_HTTPS);
        inline(&mut w, rest)?;
    } else if let Some(rest) = si.href.strip_prefix("http://") {
        w.attribute(ATTR_HREF_HTTP);
        inline(&mut w, rest)?;
    } else {
        w.attribute(ATTR_HREF);
        inline(&mut w, &si.href)?;
    }
    w.attribute(ATTR_SI_ID);
    inline(&mut w, &si.si_id)?;
    w.attribute(ATTR_CREATED);
    w.opaque(&date(si.created))?;
    w.attribute(ATTR_SI_EXPIRES);
    w.opaque(&date(si.expires))?;
    w.attribute(ATTR_ACTION_SIGNAL_MEDIUM);
    w.end();
    inline(&mut w, &si.text)?;
    w.end();
    w.end();
    Ok(w.finish())
}

/// The WBXML document.
pub fn wbxml(si: &ServiceIndication) -> Vec<u8> {
    // Tags are constants in range, NUL is dropped and dates are 7 bytes:
    // nothing here is refused.
    #[allow(clippy::expect_used)]
    document(si).expect("a Service Indication always encodes")
}

/// A WSP uintvar: 7 bits per octet, most significant first.
fn uintvar(out: &mut Vec<u8>, mut value: usize) {
    let mut octets = vec![u8::try_from(value & 0x7F).unwrap_or(0)];
    value >>= 7;
    while value > 0 {
        octets.push(0x80 | u8::try_from(value & 0x7F).unwrap_or(0));
        value >>= 7;
    }
    octets.reverse();
    out.extend_from_slice(&octets);
}

/// The connectionless WSP push PDU carrying the indication.
pub fn push_pdu(si: &ServiceIndication, transaction: u8) -> Vec<u8> {
    let headers = [CONTENT_TYPE_SIC, HEADER_APPLICATION_ID, APPLICATION_WML_UA];
    let mut out = vec![transaction, PDU_PUSH];
    uintvar(&mut out, headers.len());
    out.extend_from_slice(&headers);
    out.extend_from_slice(&wbxml(si));
    out
}

/// The PDU as binary SMS: port addressing in every part, concatenation
/// when it needs more than one.
pub fn segments(pdu: &[u8], reference: u8) -> Vec<Segment> {
    let mut ports = vec![0x05, 0x04];
    ports.extend_from_slice(&PORT_WAP_PUSH.to_be_bytes());
    ports.extend_from_slice(&PORT_WAP_CONNECTIONLESS.to_be_bytes());
    let single = SMS_OCTETS - 1 - ports.len();
    if pdu.len() <= single {
        let mut udh = vec![u8::try_from(ports.len()).unwrap_or(0)];
        udh.extend_from_slice(&ports);
        return vec![Segment {
            coding: Coding::Binary,
            udh,
            user_data: pdu.to_vec(),
        }];
    }
    let per_part = SMS_OCTETS - 1 - ports.len() - 5;
    let chunks: Vec<&[u8]> = pdu.chunks(per_part).collect();
    let total = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut udh = vec![u8::try_from(ports.len() + 5).unwrap_or(0)];
            udh.extend_from_slice(&ports);
            udh.extend_from_slice(&concat_ie(reference, total, i + 1));
            Segment {
                coding: Coding::Binary,
                udh,
                user_data: chunk.to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // WBXML global tokens, spelled out to read the bytes by.
    const END: u8 = 0x01;
    const STR_I: u8 = 0x03;
    const OPAQUE: u8 = 0xC3;

    fn si() -> ServiceIndication {
        ServiceIndication {
            href: "https://push.example.com/m/acct-1".to_owned(),
            si_id: "acct-1/INBOX".to_owned(),
            created: 1_795_716_000, // 2026-11-26T18:00:00Z
            expires: 1_795_802_400,
            text: "New mail: Q3 report".to_owned(),
        }
    }

    #[test]
    fn the_document_uses_the_si_tokens() {
        let doc = wbxml(&si());
        assert_eq!(&doc[..6], &[0x02, 0x05, 0x6A, 0x00, 0x45, 0xC6]);
        assert_eq!(doc[6], ATTR_HREF_HTTPS);
        assert_eq!(&doc[7..8], &[STR_I]);
        assert!(doc.ends_with(&[END, END]));
        // created: 2026-11-26 18:00:00 → 20 26 11 26 18, zeros dropped.
        let created = doc.iter().position(|&b| b == ATTR_CREATED).unwrap();
        assert_eq!(
            &doc[created..created + 8],
            &[ATTR_CREATED, OPAQUE, 5, 0x20, 0x26, 0x11, 0x26, 0x18]
        );
    }

    #[test]
    fn the_pdu_is_a_wsp_push_for_the_wml_user_agent() {
        let pdu = push_pdu(&si(), 0x2A);
        assert_eq!(&pdu[..6], &[0x2A, 0x06, 0x03, 0xAE, 0xAF, 0x84]);
        assert_eq!(&pdu[6..], wbxml(&si()).as_slice());
    }

    #[test]
    fn uintvar_uses_seven_bits_per_octet() {
        let mut out = Vec::new();
        uintvar(&mut out, 0x3FFF + 1);
        assert_eq!(out, [0x81, 0x80, 0x00]);
    }

    #[test]
    fn short_pdus_are_one_sms_long_ones_are_concatenated() {
        let pdu = push_pdu(&si(), 1);
        let one = segments(&pdu, 3);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].udh, [0x06, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0]);
        assert!(one[0].udh.len() + one[0].user_data.len() <= 140);

        let long = ServiceIndication {
            text: "x".repeat(300),
            ..si()
        };
        let pdu = push_pdu(&long, 1);
        let parts = segments(&pdu, 3);
        assert!(parts.len() >= 3);
        for (i, part) in parts.iter().enumerate() {
            assert!(part.udh.len() + part.user_data.len() <= 140);
            assert_eq!(part.udh[0], 11);
            assert_eq!(
                &part.udh[7..],
                &[0x00, 0x03, 3, parts.len() as u8, i as u8 + 1]
            );
        }
        let joined: Vec<u8> = parts.iter().flat_map(|p| p.user_data.clone()).collect();
        assert_eq!(joined, pdu);
    }
}
