//! SMPP 3.4 PDUs: the subset an ESME sending mobile-terminated messages
//! needs (bind_transceiver, submit_sm, deliver_sm, enquire_link, unbind,
//! generic_nack and their responses). References are to the SMPP v3.4
//! specification, issue 1.2: §3.2 (header), §4 (bodies), §5.2/§5.3
//! (fields and optional parameters).

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};

/// The header: length, command id, status, sequence (§3.2).
pub(crate) const HEADER_LEN: usize = 16;

/// The longest PDU accepted from an SMS centre. A deliver_sm with a full
/// `message_payload` (64 KiB at most) fits; anything longer is a broken
/// or hostile peer, and the connection is dropped rather than buffered.
pub(crate) const MAX_PDU_LEN: usize = HEADER_LEN + 70 * 1024;

/// Command ids (§5.1.2.1).
#[allow(
    dead_code,
    reason = "the specification's table, whole: not every value is sent or matched"
)]
pub(crate) mod command {
    pub(crate) const GENERIC_NACK: u32 = 0x8000_0000;
    pub(crate) const SUBMIT_SM: u32 = 0x0000_0004;
    pub(crate) const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    pub(crate) const DELIVER_SM: u32 = 0x0000_0005;
    pub(crate) const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub(crate) const UNBIND: u32 = 0x0000_0006;
    pub(crate) const UNBIND_RESP: u32 = 0x8000_0006;
    pub(crate) const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub(crate) const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
    pub(crate) const ENQUIRE_LINK: u32 = 0x0000_0015;
    pub(crate) const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;

    /// Responses have the high bit set.
    pub(crate) const fn is_response(id: u32) -> bool {
        id & 0x8000_0000 != 0
    }
}

/// Command status values (§5.1.3) the connector acts on.
#[allow(
    dead_code,
    reason = "the specification's table, whole: not every value is sent or matched"
)]
pub(crate) mod status {
    pub(crate) const OK: u32 = 0x00;
    pub(crate) const INVALID_COMMAND_ID: u32 = 0x03;
    pub(crate) const SYSTEM_ERROR: u32 = 0x08;
    pub(crate) const INVALID_DEST_ADDR: u32 = 0x0B;
    pub(crate) const BIND_FAILED: u32 = 0x0D;
    pub(crate) const MESSAGE_QUEUE_FULL: u32 = 0x14;
    pub(crate) const THROTTLED: u32 = 0x58;
    /// ESME_RX_T_APPN: "temporary application error", the answer to a
    /// deliver_sm the ESME cannot take yet; the SMS centre retries it.
    pub(crate) const TEMPORARY_APP_ERROR: u32 = 0x64;
    /// ESME_RX_P_APPN: "permanent application error", for a deliver_sm
    /// that will never be readable; the SMS centre must not offer it again.
    pub(crate) const PERMANENT_APP_ERROR: u32 = 0x65;

    /// Statuses after which the same submit may succeed later: the SMS
    /// centre is busy or failing, not refusing this message.
    pub(crate) const fn is_transient(status: u32) -> bool {
        matches!(
            status,
            SYSTEM_ERROR | MESSAGE_QUEUE_FULL | THROTTLED | 0x61 | 0x64
        )
    }

    /// The name the specification gives a status, for logs and receipts.
    pub(crate) fn name(status: u32) -> &'static str {
        match status {
            0x00 => "ESME_ROK",
            0x01 => "ESME_RINVMSGLEN",
            0x02 => "ESME_RINVCMDLEN",
            0x03 => "ESME_RINVCMDID",
            0x04 => "ESME_RINVBNDSTS",
            0x05 => "ESME_RALYBND",
            0x08 => "ESME_RSYSERR",
            0x0A => "ESME_RINVSRCADR",
            0x0B => "ESME_RINVDSTADR",
            0x0D => "ESME_RBINDFAIL",
            0x0E => "ESME_RINVPASWD",
            0x0F => "ESME_RINVSYSID",
            0x14 => "ESME_RMSGQFUL",
            0x45 => "ESME_RSUBMITFAIL",
            0x48 => "ESME_RINVSRCTON",
            0x50 => "ESME_RINVDSTTON",
            0x58 => "ESME_RTHROTTLED",
            0x61 => "ESME_RINVSCHED",
            0x62 => "ESME_RINVEXPIRY",
            0x64 => "ESME_RX_T_APPN",
            0x65 => "ESME_RX_P_APPN",
            0x66 => "ESME_RX_R_APPN",
            _ => "unknown",
        }
    }
}

/// Optional parameter tags (§5.3.2).
#[allow(
    dead_code,
    reason = "the specification's table, whole: not every value is sent or matched"
)]
pub(crate) mod tag {
    pub(crate) const RECEIPTED_MESSAGE_ID: u16 = 0x001E;
    pub(crate) const MESSAGE_PAYLOAD: u16 = 0x0424;
    pub(crate) const MESSAGE_STATE: u16 = 0x0427;
    pub(crate) const NETWORK_ERROR_CODE: u16 = 0x0423;
}

/// What a peer sent that is not SMPP we can use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PduError {
    /// The length field is below the header size or above [`MAX_PDU_LEN`].
    #[error("PDU length {0} is outside 16..={MAX_PDU_LEN}")]
    BadLength(u32),
    /// A body ended before its fields did.
    #[error("{0} is truncated")]
    Truncated(&'static str),
    /// A C-octet string has no terminating NUL within its size.
    #[error("{0} is longer than {1} octets or unterminated")]
    BadString(&'static str, usize),
    /// A field we send is too long for its SMPP size.
    #[error("{0} is longer than {1} octets")]
    TooLong(&'static str, usize),
}

/// One PDU: header fields and the undecoded body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    /// Command id.
    pub(crate) command_id: u32,
    /// Command status (responses; 0 in requests).
    pub(crate) status: u32,
    /// Sequence number.
    pub(crate) sequence: u32,
    /// The body.
    pub(crate) body: Bytes,
}

impl Frame {
    /// A frame with a body.
    pub(crate) fn new(command_id: u32, status: u32, sequence: u32, body: impl Into<Bytes>) -> Self {
        Self {
            command_id,
            status,
            sequence,
            body: body.into(),
        }
    }

    /// The wire bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        let length = u32::try_from(HEADER_LEN + self.body.len()).unwrap_or(u32::MAX);
        out.put_u32(length);
        out.put_u32(self.command_id);
        out.put_u32(self.status);
        out.put_u32(self.sequence);
        out.extend_from_slice(&self.body);
        out
    }

    /// Takes one whole frame off the front of `buf`, if it holds one.
    pub(crate) fn decode(buf: &mut BytesMut) -> Result<Option<Self>, PduError> {
        if buf.len() < 4 {
            return Ok(None);
        }
        let length = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let size = length as usize;
        if !(HEADER_LEN..=MAX_PDU_LEN).contains(&size) {
            return Err(PduError::BadLength(length));
        }
        if buf.len() < size {
            buf.reserve(size - buf.len());
            return Ok(None);
        }
        let mut pdu = buf.split_to(size);
        pdu.advance(4);
        let command_id = pdu.get_u32();
        let status = pdu.get_u32();
        let sequence = pdu.get_u32();
        Ok(Some(Self {
            command_id,
            status,
            sequence,
            body: pdu.freeze(),
        }))
    }
}

/// Appends a C-octet string of at most `max` octets including the NUL.
fn put_cstr(
    out: &mut Vec<u8>,
    what: &'static str,
    value: &str,
    max: usize,
) -> Result<(), PduError> {
    if value.len() + 1 > max || value.as_bytes().contains(&0) {
        return Err(PduError::TooLong(what, max - 1));
    }
    out.extend_from_slice(value.as_bytes());
    out.push(0);
    Ok(())
}

/// A cursor over a body.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self, what: &'static str) -> Result<u8, PduError> {
        let (&first, rest) = self.0.split_first().ok_or(PduError::Truncated(what))?;
        self.0 = rest;
        Ok(first)
    }

    fn cstr(&mut self, what: &'static str, max: usize) -> Result<String, PduError> {
        let end = self
            .0
            .iter()
            .take(max)
            .position(|&b| b == 0)
            .ok_or(PduError::BadString(what, max))?;
        let value = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Ok(value)
    }

    fn bytes(&mut self, what: &'static str, len: usize) -> Result<Vec<u8>, PduError> {
        if self.0.len() < len {
            return Err(PduError::Truncated(what));
        }
        let (value, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(value.to_vec())
    }

    fn tlvs(&mut self) -> Result<Vec<(u16, Vec<u8>)>, PduError> {
        let mut tlvs = Vec::new();
        while !self.0.is_empty() {
            let head = self.bytes("optional parameter", 4)?;
            let tag = u16::from_be_bytes([head[0], head[1]]);
            let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
            tlvs.push((tag, self.bytes("optional parameter value", len)?));
        }
        Ok(tlvs)
    }
}

/// bind_transceiver (§4.1.5).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Bind {
    pub(crate) system_id: String,
    pub(crate) password: String,
    pub(crate) system_type: String,
    pub(crate) addr_ton: u8,
    pub(crate) addr_npi: u8,
    pub(crate) address_range: String,
}

/// The password never reaches a log.
impl std::fmt::Debug for Bind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bind")
            .field("system_id", &self.system_id)
            .field("password", &"***")
            .field("system_type", &self.system_type)
            .field("addr_ton", &self.addr_ton)
            .field("addr_npi", &self.addr_npi)
            .field("address_range", &self.address_range)
            .finish()
    }
}

/// interface_version 0x34: SMPP 3.4.
pub(crate) const INTERFACE_VERSION: u8 = 0x34;

impl Bind {
    /// The body.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, PduError> {
        let mut out = Vec::with_capacity(64);
        put_cstr(&mut out, "system_id", &self.system_id, 16)?;
        put_cstr(&mut out, "password", &self.password, 9)?;
        put_cstr(&mut out, "system_type", &self.system_type, 13)?;
        out.push(INTERFACE_VERSION);
        out.push(self.addr_ton);
        out.push(self.addr_npi);
        put_cstr(&mut out, "address_range", &self.address_range, 41)?;
        Ok(out)
    }
}

/// The `system_id` of a bind response (§4.1.6); absent when refused.
pub(crate) fn bind_resp_system_id(body: &[u8]) -> String {
    Reader(body).cstr("system_id", 16).unwrap_or_default()
}

/// The `message_id` of a submit_sm_resp (§4.4.2): absent when refused.
pub(crate) fn submit_resp_message_id(body: &[u8]) -> Result<String, PduError> {
    Reader(body).cstr("message_id", 65)
}

/// A deliver_sm_resp or submit_sm_resp body from the ESME: an empty `message_id`.
pub(crate) const EMPTY_MESSAGE_ID: &[u8] = &[0];

/// An address: type of number, numbering plan, digits or alphanumeric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Address {
    pub(crate) ton: u8,
    pub(crate) npi: u8,
    pub(crate) addr: String,
}

/// The shared body of submit_sm (§4.4.1) and deliver_sm (§4.6.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShortMessage {
    pub(crate) service_type: String,
    pub(crate) source: Address,
    pub(crate) destination: Address,
    pub(crate) esm_class: u8,
    pub(crate) protocol_id: u8,
    pub(crate) priority_flag: u8,
    pub(crate) schedule_delivery_time: String,
    pub(crate) validity_period: String,
    pub(crate) registered_delivery: u8,
    pub(crate) replace_if_present: u8,
    pub(crate) data_coding: u8,
    pub(crate) sm_default_msg_id: u8,
    pub(crate) short_message: Vec<u8>,
    pub(crate) tlvs: Vec<(u16, Vec<u8>)>,
}

/// esm_class bit 6: the user data starts with a header (UDHI).
pub(crate) const ESM_UDHI: u8 = 0x40;
/// esm_class bits 2-5 of a deliver_sm that is an SMS centre delivery receipt.
pub(crate) const ESM_DELIVERY_RECEIPT: u8 = 0x04;
/// registered_delivery: a receipt on final success or failure.
pub(crate) const REGISTERED_DELIVERY_FINAL: u8 = 0x01;

/// data_coding values (§5.2.19).
pub(crate) mod data_coding {
    /// The SMS centre's default alphabet (GSM 03.38 in practice).
    pub(crate) const DEFAULT: u8 = 0x00;
    /// 8-bit binary.
    pub(crate) const BINARY: u8 = 0x04;
    /// UCS-2 (ISO/IEC 10646).
    pub(crate) const UCS2: u8 = 0x08;
}

impl ShortMessage {
    /// The body.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, PduError> {
        let mut out = Vec::with_capacity(64 + self.short_message.len());
        put_cstr(&mut out, "service_type", &self.service_type, 6)?;
        out.push(self.source.ton);
        out.push(self.source.npi);
        put_cstr(&mut out, "source_addr", &self.source.addr, 21)?;
        out.push(self.destination.ton);
        out.push(self.destination.npi);
        put_cstr(&mut out, "destination_addr", &self.destination.addr, 21)?;
        out.push(self.esm_class);
        out.push(self.protocol_id);
        out.push(self.priority_flag);
        put_cstr(
            &mut out,
            "schedule_delivery_time",
            &self.schedule_delivery_time,
            17,
        )?;
        put_cstr(&mut out, "validity_period", &self.validity_period, 17)?;
        out.push(self.registered_delivery);
        out.push(self.replace_if_present);
        out.push(self.data_coding);
        out.push(self.sm_default_msg_id);
        let length = u8::try_from(self.short_message.len())
            .ok()
            .filter(|&n| n <= 254)
            .ok_or(PduError::TooLong("short_message", 254))?;
        out.push(length);
        out.extend_from_slice(&self.short_message);
        for (tag, value) in &self.tlvs {
            let len = u16::try_from(value.len())
                .map_err(|_| PduError::TooLong("optional parameter", 65_535))?;
            out.put_u16(*tag);
            out.put_u16(len);
            out.extend_from_slice(value);
        }
        Ok(out)
    }

    /// Parses a body.
    pub(crate) fn decode(body: &[u8]) -> Result<Self, PduError> {
        let mut r = Reader(body);
        let service_type = r.cstr("service_type", 6)?;
        let source = Address {
            ton: r.u8("source_addr_ton")?,
            npi: r.u8("source_addr_npi")?,
            addr: r.cstr("source_addr", 21)?,
        };
        let destination = Address {
            ton: r.u8("dest_addr_ton")?,
            npi: r.u8("dest_addr_npi")?,
            addr: r.cstr("destination_addr", 21)?,
        };
        let esm_class = r.u8("esm_class")?;
        let protocol_id = r.u8("protocol_id")?;
        let priority_flag = r.u8("priority_flag")?;
        let schedule_delivery_time = r.cstr("schedule_delivery_time", 17)?;
        let validity_period = r.cstr("validity_period", 17)?;
        let registered_delivery = r.u8("registered_delivery")?;
        let replace_if_present = r.u8("replace_if_present_flag")?;
        let data_coding = r.u8("data_coding")?;
        let sm_default_msg_id = r.u8("sm_default_msg_id")?;
        let sm_length = r.u8("sm_length")?;
        let short_message = r.bytes("short_message", usize::from(sm_length))?;
        let tlvs = r.tlvs()?;
        Ok(Self {
            service_type,
            source,
            destination,
            esm_class,
            protocol_id,
            priority_flag,
            schedule_delivery_time,
            validity_period,
            registered_delivery,
            replace_if_present,
            data_coding,
            sm_default_msg_id,
            short_message,
            tlvs,
        })
    }

    /// The value of optional parameter `tag`.
    pub(crate) fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }
}

/// An absolute SMPP time (§7.1.1) in UTC: `YYMMDDhhmmss000+`.
pub(crate) fn absolute_time(at: jiff::Timestamp) -> String {
    jiff::tz::TimeZone::UTC
        .to_datetime(at)
        .strftime("%y%m%d%H%M%S000+")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShortMessage {
        ShortMessage {
            source: Address {
                ton: 5,
                npi: 0,
                addr: "pushmail".into(),
            },
            destination: Address {
                ton: 1,
                npi: 1,
                addr: "8613800138000".into(),
            },
            esm_class: ESM_UDHI,
            validity_period: "261127093000000+".into(),
            registered_delivery: REGISTERED_DELIVERY_FINAL,
            data_coding: data_coding::UCS2,
            short_message: vec![5, 0, 3, 7, 2, 1, 0x4F, 0x60],
            tlvs: vec![(tag::MESSAGE_STATE, vec![2])],
            ..ShortMessage::default()
        }
    }

    #[test]
    fn a_short_message_survives_encode_and_decode() {
        let message = sample();
        let body = message.encode().unwrap();
        assert_eq!(ShortMessage::decode(&body).unwrap(), message);
        assert_eq!(message.tlv(tag::MESSAGE_STATE), Some(&[2u8][..]));
    }

    #[test]
    fn frames_are_cut_from_a_stream_whole() {
        let first = Frame::new(command::ENQUIRE_LINK, 0, 7, Bytes::new()).encode();
        let second = Frame::new(command::SUBMIT_SM, 0, 8, sample().encode().unwrap()).encode();
        let mut stream = BytesMut::new();
        stream.extend_from_slice(&first);
        stream.extend_from_slice(&second[..10]);
        let frame = Frame::decode(&mut stream).unwrap().unwrap();
        assert_eq!(
            (frame.command_id, frame.sequence),
            (command::ENQUIRE_LINK, 7)
        );
        assert_eq!(Frame::decode(&mut stream).unwrap(), None);
        stream.extend_from_slice(&second[10..]);
        let frame = Frame::decode(&mut stream).unwrap().unwrap();
        assert_eq!(ShortMessage::decode(&frame.body).unwrap(), sample());
        assert!(stream.is_empty());
    }

    #[test]
    fn bogus_lengths_and_bodies_are_errors_not_panics() {
        let mut stream = BytesMut::from(&[0, 0, 0, 3, 0, 0, 0, 0][..]);
        assert_eq!(Frame::decode(&mut stream), Err(PduError::BadLength(3)));
        let mut stream = BytesMut::from(&[0x7F, 0, 0, 0][..]);
        assert!(matches!(
            Frame::decode(&mut stream),
            Err(PduError::BadLength(_))
        ));
        let body = sample().encode().unwrap();
        for cut in 0..body.len() - 7 {
            assert!(ShortMessage::decode(&body[..cut]).is_err(), "cut at {cut}");
        }
        assert!(matches!(
            ShortMessage::decode(&[b'x'; 40]),
            Err(PduError::BadString("service_type", 6))
        ));
    }

    #[test]
    fn fields_too_long_for_smpp_are_refused_when_sending() {
        let bind = Bind {
            system_id: "a-system-id-that-is-too-long".into(),
            password: "pw".into(),
            system_type: String::new(),
            addr_ton: 0,
            addr_npi: 0,
            address_range: String::new(),
        };
        assert_eq!(bind.encode(), Err(PduError::TooLong("system_id", 15)));
        let secret = Bind {
            password: "s3cret".into(),
            ..bind
        };
        assert!(
            !format!("{secret:?}").contains("s3cret"),
            "no password in logs"
        );
        let mut message = sample();
        message.short_message = vec![0; 255];
        assert_eq!(
            message.encode(),
            Err(PduError::TooLong("short_message", 254))
        );
    }

    #[test]
    fn absolute_times_are_utc_with_a_plus_sign() {
        let at: jiff::Timestamp = "2026-11-27T09:30:00Z".parse().unwrap();
        assert_eq!(absolute_time(at), "261127093000000+");
    }

    #[test]
    fn statuses_are_named_and_classified() {
        assert_eq!(status::name(status::THROTTLED), "ESME_RTHROTTLED");
        assert!(status::is_transient(status::MESSAGE_QUEUE_FULL));
        assert!(!status::is_transient(status::INVALID_DEST_ADDR));
    }
}
