//! SMPP 3.4 PDUs for an ESME sending mobile-terminated messages, read and
//! written by the `smpp34` crate's codec: submit_sm, deliver_sm, their
//! responses, enquire_link, generic_nack, and the optional parameters a
//! receipt carries (`smpp34::TlvList`: receipted_message_id,
//! message_state, network_error_code, message_payload). References are to
//! the SMPP v3.4 specification, issue 1.2.
//!
//! What is still ours, and why:
//! - Framing (§3.2): PDUs are cut from the byte stream here, the length
//!   checked against [`MAX_PDU_LEN`] before anything is buffered; smpp34's
//!   framing is private to its own client and server.
//! - bind_transceiver, unbind and unbind_resp, and the command ids:
//!   smpp34 builds the first two only inside its client (their
//!   constructors and the command id table are crate-private), so they are
//!   written here on smpp34's [`CommandHeader`].
//! - deliver_sm_resp: smpp34 1.5.1's `deliver_sm::reject` and
//!   `generic_reject` give a command_length of 16 but write 17 octets (the
//!   empty message_id), which would shift the SMS centre's stream; ours
//!   always counts the message_id.
//! - Strictness: smpp34 reads a C-octet string up to its NUL whatever the
//!   field's size, and drops a cut trailing optional parameter silently.
//!   A deliver_sm is taken only if smpp34 writes back exactly the octets
//!   that came; anything else is malformed. On sending, field sizes are
//!   checked here (smpp34 writes what it is given, and panics on a
//!   short_message over 254 octets).
//! - Absolute times (§7.1.1).

use bytes::{Bytes, BytesMut};
use num_traits::FromPrimitive as _;
use smpp34::{CommandHeader, SmppError, TlvList as _, deliver_sm, submit_sm, submit_sm_resp};

/// The header: length, command id, status, sequence (§3.2).
pub(crate) const HEADER_LEN: usize = 16;

/// The longest PDU accepted from an SMS centre. A deliver_sm with a full
/// `message_payload` (64 KiB at most) fits; anything longer is a broken
/// or hostile peer, and the connection is dropped rather than buffered.
pub(crate) const MAX_PDU_LEN: usize = HEADER_LEN + 70 * 1024;

/// The command ids this ESME sends or matches (§5.1.2.1).
pub(crate) mod command {
    pub(crate) const GENERIC_NACK: u32 = 0x8000_0000;
    pub(crate) const SUBMIT_SM_RESP: u32 = 0x8000_0004;
    pub(crate) const DELIVER_SM: u32 = 0x0000_0005;
    pub(crate) const DELIVER_SM_RESP: u32 = 0x8000_0005;
    pub(crate) const UNBIND: u32 = 0x0000_0006;
    pub(crate) const UNBIND_RESP: u32 = 0x8000_0006;
    pub(crate) const BIND_TRANSCEIVER: u32 = 0x0000_0009;
    pub(crate) const ENQUIRE_LINK: u32 = 0x0000_0015;

    /// Responses have the high bit set.
    pub(crate) const fn is_response(id: u32) -> bool {
        id & 0x8000_0000 != 0
    }
}

/// A command_status as the SMS centre sent it: named by smpp34 when SMPP
/// 3.4 defines it, kept whole when it is vendor-specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) u32);

impl Status {
    /// ESME_ROK.
    pub(crate) const OK: Self = Self(SmppError::ESME_ROK as u32);

    /// The specification's name, if it has one (smpp34's
    /// `from_command_status` would log every vendor status as unknown).
    fn known(self) -> Option<SmppError> {
        SmppError::from_u32(self.0)
    }

    /// ESME_RTHROTTLED or ESME_RMSGQFUL: the SMS centre wants us slower.
    pub(crate) fn is_busy(self) -> bool {
        matches!(
            self.known(),
            Some(SmppError::ESME_RTHROTTLED | SmppError::ESME_RMSGQFUL)
        )
    }

    /// Statuses after which the same submit may succeed later: the SMS
    /// centre is busy or failing, not refusing this message.
    pub(crate) fn is_transient(self) -> bool {
        self.is_busy()
            || matches!(
                self.known(),
                Some(
                    SmppError::ESME_RSYSERR | SmppError::ESME_RINVSCHED | SmppError::ESME_RX_T_APPN
                )
            )
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.known() {
            Some(name) => write!(f, "{name:?} (0x{:08X})", self.0),
            None => write!(f, "status 0x{:08X}", self.0),
        }
    }
}

/// What a peer sent that is not SMPP we can use, or what we cannot send.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum PduError {
    /// The length field is below the header size or above [`MAX_PDU_LEN`].
    #[error("PDU length {0} is outside 16..={MAX_PDU_LEN}")]
    BadLength(u32),
    /// smpp34 could not read the PDU.
    #[error("{what} is malformed ({status:?})")]
    Malformed {
        /// Which PDU.
        what: &'static str,
        /// smpp34's reason.
        status: SmppError,
    },
    /// smpp34 read the PDU but would not write it back the same: octets
    /// after the last optional parameter, a cut one, or a string that is
    /// not UTF-8.
    #[error("{0} has octets beyond its fields or fields that do not read back")]
    NotCanonical(&'static str),
    /// A response of another kind than the request's.
    #[error("command 0x{0:08X} answered where a submit_sm_resp was due")]
    Unexpected(u32),
    /// A field we send is too long for its SMPP size.
    #[error("{0} is longer than {1} octets")]
    TooLong(&'static str, usize),
}

/// One PDU, whole (smpp34 decodes bodies from the whole PDU).
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    header: CommandHeader,
    pdu: Bytes,
}

impl Frame {
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
        let pdu = buf.split_to(size).freeze();
        let header = CommandHeader::decode(&pdu).map_err(|status| PduError::Malformed {
            what: "header",
            status,
        })?;
        Ok(Some(Self { header, pdu }))
    }

    /// Command id.
    pub(crate) fn command_id(&self) -> u32 {
        self.header.command_id
    }

    /// Command status (responses; 0 in requests).
    pub(crate) fn status(&self) -> Status {
        Status(self.header.command_status)
    }

    /// Sequence number.
    pub(crate) fn sequence(&self) -> u32 {
        self.header.sequence_number
    }

    /// The `system_id` of a bind_transceiver_resp (§4.1.6), for the log.
    pub(crate) fn bind_resp_system_id(&self) -> String {
        smpp34::bind_transceiver_resp::decode(self.header.clone(), &self.pdu)
            .ok()
            .and_then(|resp| resp.system_id)
            .unwrap_or_default()
    }

    /// A submit_sm_resp (§4.4.2) or generic_nack: the SMS centre's message
    /// id, or the status it refused the submit with.
    pub(crate) fn submit_resp(&self) -> Result<Result<String, Status>, PduError> {
        let status = self.status();
        match self.command_id() {
            command::SUBMIT_SM_RESP | command::GENERIC_NACK if status != Status::OK => {
                Ok(Err(status))
            }
            command::SUBMIT_SM_RESP => submit_sm_resp::decode(self.header.clone(), &self.pdu)
                .map_err(|status| PduError::Malformed {
                    what: "submit_sm_resp",
                    status,
                })?
                .message_id
                .map(Ok)
                .ok_or(PduError::Malformed {
                    what: "submit_sm_resp",
                    status: SmppError::ESME_RINVPARLEN,
                }),
            other => Err(PduError::Unexpected(other)),
        }
    }

    /// A deliver_sm (§4.6.1), read strictly.
    pub(crate) fn deliver_sm(&self) -> Result<deliver_sm, PduError> {
        let message = deliver_sm::decode(self.header.clone(), &self.pdu).map_err(|status| {
            PduError::Malformed {
                what: "deliver_sm",
                status,
            }
        })?;
        if message.clone().encode() != self.pdu {
            return Err(PduError::NotCanonical("deliver_sm"));
        }
        Ok(message)
    }

    /// The enquire_link_resp to this enquire_link (§4.11.2).
    pub(crate) fn enquire_link_resp(&self) -> Vec<u8> {
        let sequence = self.sequence();
        match smpp34::enquire_link::decode(self.header.clone(), &self.pdu) {
            Ok(request) => request.accept().encode(),
            Err(status) => smpp34::enquire_link::generic_reject(sequence, status).encode(),
        }
    }
}

/// A PDU that is a header and `body`.
fn with_header(command_id: u32, status: Status, sequence: u32, body: &[u8]) -> Vec<u8> {
    let header = CommandHeader {
        command_length: u32::try_from(HEADER_LEN + body.len()).unwrap_or(u32::MAX),
        command_id,
        command_status: status.0,
        sequence_number: sequence,
    };
    let mut out = header.encode();
    out.extend_from_slice(body);
    out
}

/// enquire_link (§4.11.1).
pub(crate) fn enquire_link(sequence: u32) -> Vec<u8> {
    smpp34::enquire_link::new(sequence).encode()
}

/// generic_nack for a request we do not serve (§4.3).
pub(crate) fn generic_nack(sequence: u32) -> Vec<u8> {
    smpp34::generic_nack::new(SmppError::ESME_RINVCMDID, sequence).encode()
}

/// unbind (§4.2.1).
pub(crate) fn unbind(sequence: u32) -> Vec<u8> {
    with_header(command::UNBIND, Status::OK, sequence, &[])
}

/// unbind_resp (§4.2.2).
pub(crate) fn unbind_resp(sequence: u32) -> Vec<u8> {
    with_header(command::UNBIND_RESP, Status::OK, sequence, &[])
}

/// deliver_sm_resp (§4.6.2): `status`, and the empty message_id.
pub(crate) fn deliver_sm_resp(sequence: u32, status: SmppError) -> Vec<u8> {
    with_header(
        command::DELIVER_SM_RESP,
        Status(status as u32),
        sequence,
        &[0],
    )
}

/// Checks that `value` fits a C-octet string of `max` octets with its NUL.
fn fits(what: &'static str, value: &str, max: usize) -> Result<(), PduError> {
    if value.len() + 1 > max || value.as_bytes().contains(&0) {
        return Err(PduError::TooLong(what, max - 1));
    }
    Ok(())
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
const INTERFACE_VERSION: u8 = 0x34;

impl Bind {
    /// The PDU.
    pub(crate) fn encode(&self, sequence: u32) -> Result<Vec<u8>, PduError> {
        fits("system_id", &self.system_id, 16)?;
        fits("password", &self.password, 9)?;
        fits("system_type", &self.system_type, 13)?;
        fits("address_range", &self.address_range, 41)?;
        let mut body = Vec::with_capacity(64);
        for value in [&self.system_id, &self.password, &self.system_type] {
            body.extend_from_slice(value.as_bytes());
            body.push(0);
        }
        body.extend_from_slice(&[INTERFACE_VERSION, self.addr_ton, self.addr_npi]);
        body.extend_from_slice(self.address_range.as_bytes());
        body.push(0);
        Ok(with_header(
            command::BIND_TRANSCEIVER,
            Status::OK,
            sequence,
            &body,
        ))
    }
}

/// An address: type of number, numbering plan, digits or alphanumeric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Address {
    pub(crate) ton: u8,
    pub(crate) npi: u8,
    pub(crate) addr: String,
}

/// What the connector puts in a submit_sm (§4.4.1); the other fields are
/// the SMS centre's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Submit {
    pub(crate) source: Address,
    pub(crate) destination: Address,
    pub(crate) esm_class: u8,
    pub(crate) validity_period: String,
    pub(crate) registered_delivery: u8,
    pub(crate) data_coding: u8,
    pub(crate) short_message: Vec<u8>,
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

impl Submit {
    /// Refuses what does not fit a submit_sm, before a sequence is spent.
    pub(crate) fn check(&self) -> Result<(), PduError> {
        fits("source_addr", &self.source.addr, 21)?;
        fits("destination_addr", &self.destination.addr, 21)?;
        fits("validity_period", &self.validity_period, 17)?;
        if self.short_message.len() > 254 {
            return Err(PduError::TooLong("short_message", 254));
        }
        Ok(())
    }

    /// The PDU.
    pub(crate) fn encode(&self, sequence: u32) -> Result<Vec<u8>, PduError> {
        self.check()?;
        let pdu = submit_sm::new(
            sequence,
            String::new(),
            self.source.ton,
            self.source.npi,
            self.source.addr.clone(),
            self.destination.ton,
            self.destination.npi,
            self.destination.addr.clone(),
            self.esm_class,
            0,
            0,
            String::new(),
            self.validity_period.clone(),
            self.registered_delivery,
            0,
            self.data_coding,
            0,
            self.short_message.clone(),
        );
        Ok(pdu.encode())
    }
}

/// The text of a deliver_sm: its short_message, or its message_payload
/// when the short_message is empty (§5.3.2.32).
pub(crate) fn text_of(message: &deliver_sm) -> &[u8] {
    if message.short_message.is_empty() {
        message.tlvs.message_payload().unwrap_or_default()
    } else {
        &message.short_message
    }
}

/// An absolute SMPP time (§7.1.1) in UTC: `YYMMDDhhmmss000+`.
pub(crate) fn absolute_time(at: jiff::Timestamp) -> String {
    jiff::tz::TimeZone::UTC
        .to_datetime(at)
        .strftime("%y%m%d%H%M%S000+")
        .to_string()
}

/// A delivery receipt from the phone's number to ours, as an SMS centre
/// writes it (through smpp34's writer, which the tests read back).
#[cfg(test)]
pub(crate) fn test_receipt(sequence: u32, text: &str, tlvs: Vec<smpp34::Tlv>) -> deliver_sm {
    deliver_sm::new(
        sequence,
        String::new(),
        1,
        1,
        "8613800138000".into(),
        5,
        0,
        "pushmail".into(),
        ESM_DELIVERY_RECEIPT,
        0,
        0,
        String::new(),
        String::new(),
        0,
        0,
        0,
        0,
        text.as_bytes().to_vec(),
    )
    .with_tlvs(tlvs)
}

#[cfg(test)]
mod tests;
