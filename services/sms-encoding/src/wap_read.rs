//! Reading back a WAP Push: the WSP push PDU and its WBXML Service
//! Indication, as [`super::wap`] writes them (and the SI tokens a phone
//! accepts besides: `href` with the `http://www.` and `https://www.`
//! prefixes, every `action` value). For showing what was sent where no SMS
//! centre is (standalone's SMS outbox), not for reading phones' traffic:
//! anything else is refused with what was found.

use super::wap::ServiceIndication;

/// Why a PDU is not a push of a Service Indication this module reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WapReadError {
    /// The bytes end before the structure does.
    #[error("the push PDU ends early (at byte {0})")]
    Truncated(usize),
    /// Not a connectionless WSP push.
    #[error("not a WSP push PDU (type 0x{0:02X})")]
    NotPush(u8),
    /// A WBXML header or token this reader does not know.
    #[error("unexpected WBXML byte 0x{byte:02X} at {at}")]
    Unexpected {
        /// The byte found.
        byte: u8,
        /// Its offset in the PDU.
        at: usize,
    },
    /// An inline string that is not UTF-8.
    #[error("an inline string at {0} is not UTF-8")]
    NotUtf8(usize),
    /// A date that is not packed digits of a real time.
    #[error("the date at {0} is not a valid SI date")]
    BadDate(usize),
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, WapReadError> {
        let byte = *self
            .bytes
            .get(self.at)
            .ok_or(WapReadError::Truncated(self.at))?;
        self.at += 1;
        Ok(byte)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], WapReadError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(WapReadError::Truncated(self.bytes.len()))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn unexpected(&self, byte: u8) -> WapReadError {
        WapReadError::Unexpected {
            byte,
            at: self.at.saturating_sub(1),
        }
    }

    /// A WSP uintvar (at most five octets).
    fn uintvar(&mut self) -> Result<usize, WapReadError> {
        let mut value = 0usize;
        for _ in 0..5 {
            let octet = self.byte()?;
            value = (value << 7) | usize::from(octet & 0x7F);
            if octet & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.unexpected(0x80))
    }

    /// `STR_I` has been read: the NUL-terminated UTF-8 that follows.
    fn inline_string(&mut self) -> Result<String, WapReadError> {
        let start = self.at;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == 0)
            .ok_or(WapReadError::Truncated(self.bytes.len()))?;
        let text = std::str::from_utf8(&self.bytes[start..start + len])
            .map_err(|_| WapReadError::NotUtf8(start))?
            .to_owned();
        self.at = start + len + 1;
        Ok(text)
    }

    /// `OPAQUE` has been read: packed `YYYYMMDDhhmmss`, trailing zeros dropped.
    fn date(&mut self) -> Result<i64, WapReadError> {
        let start = self.at;
        let len = usize::from(self.byte()?);
        let packed = self.take(len)?;
        if packed.len() > 7 {
            return Err(WapReadError::BadDate(start));
        }
        let mut pairs = [0u8; 7];
        for (pair, octet) in pairs.iter_mut().zip(packed) {
            let (high, low) = (octet >> 4, octet & 0x0F);
            if high > 9 || low > 9 {
                return Err(WapReadError::BadDate(start));
            }
            *pair = high * 10 + low;
        }
        let year = i16::from(pairs[0]) * 100 + i16::from(pairs[1]);
        let (month, day) = (pairs[2].max(1), pairs[3].max(1));
        let time = jiff::civil::DateTime::new(
            year,
            i8::try_from(month).map_err(|_| WapReadError::BadDate(start))?,
            i8::try_from(day).map_err(|_| WapReadError::BadDate(start))?,
            i8::try_from(pairs[4]).map_err(|_| WapReadError::BadDate(start))?,
            i8::try_from(pairs[5]).map_err(|_| WapReadError::BadDate(start))?,
            i8::try_from(pairs[6]).map_err(|_| WapReadError::BadDate(start))?,
            0,
        )
        .and_then(|t| jiff::tz::TimeZone::UTC.to_timestamp(t))
        .map_err(|_| WapReadError::BadDate(start))?;
        Ok(time.as_second())
    }
}

// WBXML global tokens and SI 1.0 tokens (WAP-167 §8.3).
const END: u8 = 0x01;
const STR_I: u8 = 0x03;
const OPAQUE: u8 = 0xC3;
const TAG_SI: u8 = 0x05;
const TAG_INDICATION: u8 = 0x06;
const WITH_CONTENT: u8 = 0x40;
const WITH_ATTRIBUTES: u8 = 0x80;

/// The Service Indication a WSP push PDU carries.
pub fn read_push_pdu(pdu: &[u8]) -> Result<ServiceIndication, WapReadError> {
    let mut r = Reader { bytes: pdu, at: 0 };
    let _transaction = r.byte()?;
    let kind = r.byte()?;
    if kind != 0x06 {
        return Err(WapReadError::NotPush(kind));
    }
    let headers = r.uintvar()?;
    r.take(headers)?;
    // WBXML header: version, public id (SI 1.0), charset (UTF-8), no string table.
    for expected in [None, Some(0x05), Some(0x6A), Some(0x00)] {
        let byte = r.byte()?;
        if expected.is_some_and(|e| e != byte) {
            return Err(r.unexpected(byte));
        }
    }
    for tag in [
        TAG_SI | WITH_CONTENT,
        TAG_INDICATION | WITH_CONTENT | WITH_ATTRIBUTES,
    ] {
        let byte = r.byte()?;
        if byte != tag {
            return Err(r.unexpected(byte));
        }
    }
    let mut si = ServiceIndication {
        href: String::new(),
        si_id: String::new(),
        created: 0,
        expires: 0,
        text: String::new(),
    };
    loop {
        let token = r.byte()?;
        let value_prefix = match token {
            END => break,
            0x05..=0x09 => continue, // action: signal-none … delete
            0x0B => Some(""),
            0x0C => Some("http://"),
            0x0D => Some("http://www."),
            0x0E => Some("https://"),
            0x0F => Some("https://www."),
            0x0A | 0x10 | 0x11 => None,
            other => return Err(r.unexpected(other)),
        };
        let marker = r.byte()?;
        match (token, marker) {
            (0x0A | 0x10, OPAQUE) => {
                let date = r.date()?;
                if token == 0x0A {
                    si.created = date;
                } else {
                    si.expires = date;
                }
            }
            (_, STR_I) => {
                let value = r.inline_string()?;
                match value_prefix {
                    Some(prefix) => si.href = format!("{prefix}{value}"),
                    None => si.si_id = value,
                }
            }
            (_, other) => return Err(r.unexpected(other)),
        }
    }
    // Content: the text, then the end of `indication` and of `si`.
    loop {
        match r.byte()? {
            STR_I => si.text.push_str(&r.inline_string()?),
            END => break,
            other => return Err(r.unexpected(other)),
        }
    }
    match r.byte()? {
        END => Ok(si),
        other => Err(r.unexpected(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wap::push_pdu;

    fn si(href: &str, text: &str) -> ServiceIndication {
        ServiceIndication {
            href: href.to_owned(),
            si_id: "acct-1/INBOX".to_owned(),
            created: 1_795_716_000, // 2026-11-26T18:00:00Z
            expires: 1_795_802_437,
            text: text.to_owned(),
        }
    }

    #[test]
    fn what_dispatch_writes_reads_back_whole() {
        for original in [
            si("https://push.example.com/m/acct-1", "New mail: Q3 report"),
            si("http://127.0.0.1:8080/v1/messages/x", "新邮件：季度报告"),
            si("mailto:someone", ""),
        ] {
            let pdu = push_pdu(&original, 0x2A);
            assert_eq!(read_push_pdu(&pdu).unwrap(), original);
        }
    }

    #[test]
    fn anything_else_is_refused_with_where() {
        let pdu = push_pdu(&si("https://a.example/", "x"), 1);
        assert_eq!(
            read_push_pdu(&pdu[..pdu.len() - 1]),
            Err(WapReadError::Truncated(pdu.len() - 1))
        );
        let mut not_push = pdu.clone();
        not_push[1] = 0x07;
        assert_eq!(read_push_pdu(&not_push), Err(WapReadError::NotPush(0x07)));
        let mut unknown_tag = pdu.clone();
        unknown_tag[10] = 0x2F;
        assert!(matches!(
            read_push_pdu(&unknown_tag),
            Err(WapReadError::Unexpected { byte: 0x2F, .. })
        ));
        assert!(read_push_pdu(b"").is_err());
        assert!(read_push_pdu(b"hello, this is a text message").is_err());
    }
}
