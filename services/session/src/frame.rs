//! RFC 6455 frames as a device sends and the server writes them: pure
//! functions on bytes, no I/O.
//!
//! Our own codec rather than tungstenite's: an idle device's heartbeat is
//! one 16-byte frame a minute, and going through a general-purpose
//! WebSocket stack was most of what the session spent per heartbeat above
//! a bare TCP echo (docs/architecture.md). No extension is ever
//! negotiated, so the reserved bits must be clear.

/// Why a frame (or a message of frames) was refused; each maps to the
/// close code RFC 6455 gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Violation {
    /// Not a valid client frame sequence (close 1002).
    Protocol(&'static str),
    /// A message longer than the limit, refused before its payload is read
    /// (close 1009).
    TooLarge,
    /// A text message or close reason that is not UTF-8 (close 1007).
    NotUtf8,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Protocol(what) => write!(f, "websocket protocol error: {what}"),
            Self::TooLarge => f.write_str("message too large"),
            Self::NotUtf8 => f.write_str("text is not UTF-8"),
        }
    }
}

/// The opcodes RFC 6455 defines; the others are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Opcode {
    /// The next fragment of a message.
    Continuation,
    /// A text message (or its first fragment).
    Text,
    /// A binary message (or its first fragment).
    Binary,
    /// Close.
    Close,
    /// Ping.
    Ping,
    /// Pong.
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Result<Self, Violation> {
        Ok(match bits {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            _ => return Err(Violation::Protocol("unknown opcode")),
        })
    }

    fn bits(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Control frames may come between a message's fragments.
    pub(crate) fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// One client frame, decoded and unmasked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    /// The last frame of its message.
    pub(crate) fin: bool,
    /// What it carries.
    pub(crate) opcode: Opcode,
    /// The payload, unmasked.
    pub(crate) payload: Vec<u8>,
}

/// Decodes the first frame in `buf`: `Ok(None)` while it is incomplete,
/// else the frame and how many bytes it took. A frame longer than `max`
/// is refused from its header, before its payload arrives.
pub(crate) fn decode(buf: &[u8], max: usize) -> Result<Option<(Frame, usize)>, Violation> {
    let [first, second, ..] = *buf else {
        return Ok(None);
    };
    if first & 0x70 != 0 {
        return Err(Violation::Protocol(
            "reserved bits set without an extension",
        ));
    }
    let fin = first & 0x80 != 0;
    let opcode = Opcode::from_bits(first & 0x0F)?;
    if second & 0x80 == 0 {
        return Err(Violation::Protocol("client frames must be masked"));
    }
    let (len, mut at) = match second & 0x7F {
        126 => match buf.get(2..4) {
            Some(bytes) => (u64::from(u16::from_be_bytes([bytes[0], bytes[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(bytes) => {
                let len = u64::from_be_bytes(bytes.try_into().expect("eight bytes"));
                if len >> 63 != 0 {
                    return Err(Violation::Protocol("length's top bit set"));
                }
                (len, 10)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    if opcode.is_control() && (!fin || len > 125) {
        return Err(Violation::Protocol(
            "control frames are single frames of at most 125 bytes",
        ));
    }
    let len = match usize::try_from(len) {
        Ok(len) if len <= max => len,
        _ => return Err(Violation::TooLarge),
    };
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    let Some(masked) = buf.get(at..at + len) else {
        return Ok(None);
    };
    let mut payload = masked.to_vec();
    unmask(&mut payload, mask);
    Ok(Some((
        Frame {
            fin,
            opcode,
            payload,
        },
        at + len,
    )))
}

/// XORs the payload with its mask, four bytes at a time (byte by byte it
/// was most of a heartbeat's decoding).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let key = u32::from_ne_bytes(mask);
    let (words, rest) = payload.as_chunks_mut::<4>();
    for word in words {
        *word = (u32::from_ne_bytes(*word) ^ key).to_ne_bytes();
    }
    for (byte, key) in rest.iter_mut().zip(mask) {
        *byte ^= key;
    }
}

/// Appends a whole, unmasked server frame (servers never mask).
pub(crate) fn encode(opcode: Opcode, payload: &[u8], out: &mut Vec<u8>) {
    out.push(0x80 | opcode.bits());
    match payload.len() {
        len @ 0..=125 => out.push(len as u8),
        len => match u16::try_from(len) {
            Ok(len) => {
                out.push(126);
                out.extend_from_slice(&len.to_be_bytes());
            }
            Err(_) => {
                out.push(127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        },
    }
    out.extend_from_slice(payload);
}

/// A whole text frame.
pub(crate) fn text(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 10);
    encode(Opcode::Text, text.as_bytes(), &mut out);
    out
}

/// A text frame built at compile time, for the frames answered most often.
pub(crate) const fn static_text<const N: usize>(text: &str) -> [u8; N] {
    let bytes = text.as_bytes();
    assert!(bytes.len() + 2 == N && bytes.len() <= 125);
    let mut out = [0; N];
    out[0] = 0x81;
    out[1] = bytes.len() as u8;
    let mut i = 0;
    while i < bytes.len() {
        out[i + 2] = bytes[i];
        i += 1;
    }
    out
}

/// Checks a close frame's payload: empty, or a code a peer may send and a
/// UTF-8 reason. Returns the code.
pub(crate) fn close_code(payload: &[u8]) -> Result<Option<u16>, Violation> {
    match payload {
        [] => Ok(None),
        [_] => Err(Violation::Protocol("a close payload of one byte")),
        [high, low, reason @ ..] => {
            let code = u16::from_be_bytes([*high, *low]);
            // 1004-1006 and 1015 are reserved for reporting, never sent.
            let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !sendable {
                return Err(Violation::Protocol("a close code peers may not send"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(Violation::NotUtf8);
            }
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A client frame with the given first byte, masked with [`MASK`].
    fn client(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![first];
        match payload.len() {
            len @ 0..=125 => out.push(0x80 | len as u8),
            len @ 126..=65_535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&MASK);
        out.extend(payload.iter().zip(MASK.iter().cycle()).map(|(b, k)| b ^ k));
        out
    }

    #[test]
    fn rfc_6455_masked_hello_decodes() {
        // RFC 6455 section 5.7: a single-frame masked text message "Hello".
        let wire = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let (frame, used) = decode(&wire, 1024).unwrap().unwrap();
        assert_eq!(used, wire.len());
        assert_eq!(
            frame,
            Frame {
                fin: true,
                opcode: Opcode::Text,
                payload: b"Hello".to_vec()
            }
        );
    }

    #[test]
    fn a_frame_split_anywhere_waits_for_the_rest() {
        let wire = client(0x81, br#"{"t":"hb"}"#);
        for cut in 0..wire.len() {
            assert_eq!(decode(&wire[..cut], 1024), Ok(None), "cut at {cut}");
        }
        let mut two = wire.clone();
        two.extend_from_slice(&client(0x89, b"p"));
        let (frame, used) = decode(&two, 1024).unwrap().unwrap();
        assert_eq!(
            (frame.payload.as_slice(), used),
            (&br#"{"t":"hb"}"#[..], wire.len())
        );
        let (ping, _) = decode(&two[used..], 1024).unwrap().unwrap();
        assert_eq!(ping.opcode, Opcode::Ping);
    }

    #[test]
    fn every_length_unmasks_like_the_rfc_says() {
        for len in 0..=9 {
            let payload: Vec<u8> = (0..len).map(|i| (i * 37) as u8).collect();
            let (frame, _) = decode(&client(0x81, &payload), 1024).unwrap().unwrap();
            assert_eq!(frame.payload, payload, "{len} bytes");
        }
    }

    #[test]
    fn extended_lengths_decode() {
        for len in [125, 126, 1_000, 65_535, 65_536] {
            let payload = vec![b'x'; len];
            let wire = client(0x82, &payload);
            let (frame, used) = decode(&wire, 70_000).unwrap().unwrap();
            assert_eq!((frame.payload.len(), used), (len, wire.len()), "{len}");
        }
    }

    #[test]
    fn an_oversized_frame_is_refused_from_its_header() {
        let wire = client(0x81, &[b'a'; 1025]);
        // Only the header has arrived: refused without waiting for the payload.
        assert_eq!(decode(&wire[..4], 1024), Err(Violation::TooLarge));
        let mut huge = vec![0x81, 0xFF];
        huge.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(decode(&huge, 1024), Err(Violation::TooLarge));
        huge[2] = 0x80;
        assert!(matches!(decode(&huge, 1024), Err(Violation::Protocol(_))));
    }

    #[test]
    fn frames_a_server_must_refuse() {
        let unmasked = [0x81, 0x02, b'h', b'i'];
        let reserved = client(0x81 | 0x40, b"x");
        let unknown = client(0x83, b"x");
        let unknown_control = client(0x8B, b"x");
        let fragmented_ping = client(0x09, b"x");
        let long_ping = client(0x89, &[0; 126]);
        for (what, wire) in [
            ("unmasked", unmasked.to_vec()),
            ("reserved bit", reserved),
            ("unknown opcode", unknown),
            ("unknown control opcode", unknown_control),
            ("fragmented ping", fragmented_ping),
            ("ping over 125 bytes", long_ping),
        ] {
            assert!(
                matches!(decode(&wire, 1024), Err(Violation::Protocol(_))),
                "{what}"
            );
        }
    }

    #[test]
    fn encoded_frames_are_unmasked_with_the_shortest_length() {
        for (len, header) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let mut out = Vec::new();
            encode(Opcode::Text, &vec![b'y'; len], &mut out);
            assert_eq!(out.len(), header + len, "{len}");
            assert_eq!(out[0], 0x81);
            assert_eq!(out[1] & 0x80, 0, "servers do not mask");
        }
        let mut close = Vec::new();
        encode(Opcode::Close, &1000u16.to_be_bytes(), &mut close);
        assert_eq!(close, [0x88, 0x02, 0x03, 0xE8]);
    }

    #[test]
    fn static_frames_match_the_encoder() {
        const HB: [u8; 12] = static_text(r#"{"t":"hb"}"#);
        let mut out = Vec::new();
        encode(Opcode::Text, br#"{"t":"hb"}"#, &mut out);
        assert_eq!(HB.as_slice(), out.as_slice());
    }

    #[test]
    fn close_payloads() {
        assert_eq!(close_code(&[]), Ok(None));
        assert_eq!(close_code(&[0x03, 0xE8]), Ok(Some(1000)));
        let mut with_reason = 4000u16.to_be_bytes().to_vec();
        with_reason.extend_from_slice("bye ☺".as_bytes());
        assert_eq!(close_code(&with_reason), Ok(Some(4000)));
        assert!(matches!(close_code(&[0x03]), Err(Violation::Protocol(_))));
        for reserved in [999u16, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(
                matches!(
                    close_code(&reserved.to_be_bytes()),
                    Err(Violation::Protocol(_))
                ),
                "{reserved}"
            );
        }
        assert_eq!(
            close_code(&[0x03, 0xE8, 0xC3, 0x28]),
            Err(Violation::NotUtf8)
        );
    }
}
