//! What dispatch sends partner SMS centres: a WAP Push Service Indication
//! (binary SMS that wakes the push client) or a plain-text notice for
//! phones without one, both split into segments with their UDH.

pub mod shown;
pub mod text;
pub mod wap;
pub mod wap_read;

/// How a segment's user data is coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// GSM 03.38 default alphabet, one septet per octet (SMPP's unpacked form).
    Gsm7,
    /// UCS-2, big-endian.
    Ucs2,
    /// 8-bit data.
    Binary,
}

/// One SMS of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The coding of `user_data`.
    pub coding: Coding,
    /// The user data header (empty when none), with its length octet.
    pub udh: Vec<u8>,
    /// The payload.
    pub user_data: Vec<u8>,
}

/// The concatenation information element (8-bit reference, 3GPP TS 23.040
/// §9.2.3.24.1): reference, total, this part (1-based).
fn concat_ie(reference: u8, total: usize, part: usize) -> [u8; 5] {
    [
        0x00,
        0x03,
        reference,
        u8::try_from(total).unwrap_or(u8::MAX),
        u8::try_from(part).unwrap_or(u8::MAX),
    ]
}
