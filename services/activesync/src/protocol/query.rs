//! The request line of MS-ASHTTP (§2.2.1.1.1): the plain form
//! (`?Cmd=Sync&User=…&DeviceId=…&DeviceType=…`) with the version and
//! policy key in headers, and the base64 form (one token encoding version,
//! command, locale, device, policy key and parameters in binary), which
//! Outlook and Windows phones send.

use base64::Engine as _;

use super::{Command, Version};

/// Longest DeviceId, DeviceType or parameter value taken (the
/// specification allows 32 and 16 characters; some clients send more).
pub const MAX_FIELD: usize = 64;

/// Longest query read at all.
const MAX_QUERY: usize = 2_048;

/// What a request asks, from its query and headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The command.
    pub command: Command,
    /// The protocol version the phone speaks.
    pub version: Version,
    /// `User` as the phone sent it (informational: the login is Basic).
    pub user: String,
    /// The phone's DeviceId.
    pub device_id: String,
    /// The phone's DeviceType.
    pub device_type: String,
    /// The policy key the phone holds (`X-MS-PolicyKey`); `None`: none.
    pub policy_key: Option<u32>,
    /// Command parameters.
    pub params: Params,
}

/// Parameters some commands take in the request line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params {
    /// `AttachmentName` (GetAttachment).
    pub attachment_name: Option<String>,
    /// `CollectionId`.
    pub collection_id: Option<String>,
    /// `ItemId`.
    pub item_id: Option<String>,
    /// `LongId`.
    pub long_id: Option<String>,
    /// `Occurrence`.
    pub occurrence: Option<String>,
    /// `SaveInSent=T`.
    pub save_in_sent: bool,
    /// `MS-ASAcceptMultiPart: T` (or the base64 form's option bit).
    pub accept_multipart: bool,
}

/// The headers the request line depends on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Headers<'a> {
    /// `MS-ASProtocolVersion`.
    pub version: Option<&'a str>,
    /// `X-MS-PolicyKey`.
    pub policy_key: Option<&'a str>,
    /// `MS-ASAcceptMultiPart`.
    pub accept_multipart: Option<&'a str>,
}

/// Why a request line is refused (HTTP 400; 400 is also what Exchange
/// answers).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A required field is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A field is too long or not printable ASCII.
    #[error("{0} must be 1 to 64 printable ASCII characters")]
    Field(&'static str),
    /// An unknown command.
    #[error("unknown command {0:?}")]
    Command(String),
    /// A version not served.
    #[error("protocol version {0:?} is not served (14.1, 16.0, 16.1 are)")]
    Version(String),
    /// Not a policy key.
    #[error("X-MS-PolicyKey {0:?} is not a 32-bit number")]
    PolicyKey(String),
    /// The base64 form does not decode or ends early.
    #[error("the base64 request line is malformed: {0}")]
    Base64(&'static str),
    /// The query is over the limit.
    #[error("the query is over {MAX_QUERY} bytes")]
    TooLong,
}

/// The request from its raw query string and headers.
pub fn parse(query: &str, headers: Headers<'_>) -> Result<Request, QueryError> {
    if query.len() > MAX_QUERY {
        return Err(QueryError::TooLong);
    }
    if looks_base64(query) {
        return base64_form(query, headers);
    }
    plain_form(query, headers)
}

/// The decoded `key=value` pairs of a plain query, in order.
pub fn pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(key), decode(value))
    })
}

/// A base64 token is one field: no `&`, and `=` only as padding.
fn looks_base64(query: &str) -> bool {
    !query.is_empty() && !query.contains('&') && !query.trim_end_matches('=').contains('=')
}

fn plain_form(query: &str, headers: Headers<'_>) -> Result<Request, QueryError> {
    let mut command = None;
    let (mut user, mut device_id, mut device_type) = (String::new(), None, String::new());
    let mut params = Params::default();
    for (key, value) in pairs(query) {
        match key.as_str() {
            "Cmd" => command = Some(value),
            "User" => user = value,
            "DeviceId" => device_id = Some(value),
            "DeviceType" => device_type = value,
            "AttachmentName" => params.attachment_name = Some(value),
            "CollectionId" => params.collection_id = Some(value),
            "ItemId" => params.item_id = Some(value),
            "LongId" => params.long_id = Some(value),
            "Occurrence" => params.occurrence = Some(value),
            "SaveInSent" => params.save_in_sent = value.eq_ignore_ascii_case("T"),
            // Unknown parameters are ignored, as servers do.
            _ => {}
        }
    }
    let name = command.ok_or(QueryError::Missing("Cmd"))?;
    let command = Command::parse(&name).ok_or(QueryError::Command(truncated(&name)))?;
    let device_id = device_id.ok_or(QueryError::Missing("DeviceId"))?;
    check_field("DeviceId", &device_id, false)?;
    check_field("DeviceType", &device_type, true)?;
    let version = headers
        .version
        .ok_or(QueryError::Missing("MS-ASProtocolVersion"))?;
    let version = Version::parse(version).ok_or(QueryError::Version(truncated(version)))?;
    params.accept_multipart = headers
        .accept_multipart
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("T"));
    Ok(Request {
        command,
        version,
        user,
        device_id,
        device_type,
        policy_key: policy_key(headers.policy_key)?,
        params,
    })
}

fn policy_key(header: Option<&str>) -> Result<Option<u32>, QueryError> {
    let Some(text) = header.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let key: u32 = text
        .parse()
        .map_err(|_| QueryError::PolicyKey(truncated(text)))?;
    Ok((key != 0).then_some(key))
}

fn base64_form(query: &str, headers: Headers<'_>) -> Result<Request, QueryError> {
    // The token is appended to the URI as it is (MS-ASHTTP), so a `+` in
    // it is base64's, not a space; percent-escapes are undone all the same.
    let token = percent_decode(query, false);
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .map_err(|_| QueryError::Base64("not base64"))?;
    let mut at = Reader(&bytes);
    let version_byte = at.byte()?;
    let version =
        Version::from_byte(version_byte).ok_or(QueryError::Version(version_byte.to_string()))?;
    let code = at.byte()?;
    let command = Command::from_code(code).ok_or(QueryError::Command(code.to_string()))?;
    at.take(2)?; // the locale: nothing here depends on it
    let device = at.counted()?;
    // A binary id becomes printable as its hex, as other servers show it.
    let device_id = hex::encode(device);
    check_field("DeviceId", &device_id, false)?;
    let policy = at.counted()?;
    let policy_key = match policy {
        // A token without a key: the header's, when sent.
        [] => policy_key(headers.policy_key)?,
        [a, b, c, d] => Some(u32::from_le_bytes([*a, *b, *c, *d])).filter(|k| *k != 0),
        _ => return Err(QueryError::Base64("a policy key is 4 bytes")),
    };
    let device_type =
        String::from_utf8(at.counted()?.to_vec()).map_err(|_| QueryError::Field("DeviceType"))?;
    check_field("DeviceType", &device_type, true)?;
    let mut params = Params::default();
    let mut user = String::new();
    while !at.0.is_empty() {
        let tag = at.byte()?;
        let value = at.counted()?;
        let text = || String::from_utf8_lossy(value).into_owned();
        match tag {
            0 => params.attachment_name = Some(text()),
            1 => params.collection_id = Some(text()),
            3 => params.item_id = Some(text()),
            4 => params.long_id = Some(text()),
            6 => params.occurrence = Some(text()),
            7 => {
                let options = value.first().copied().unwrap_or(0);
                params.save_in_sent = options & 0x01 != 0;
                params.accept_multipart = options & 0x02 != 0;
            }
            8 => user = text(),
            _ => {}
        }
    }
    // A header, when sent, says the same as the token or more.
    if let Some(header) = headers.accept_multipart {
        params.accept_multipart |= header.trim().eq_ignore_ascii_case("T");
    }
    Ok(Request {
        command,
        version,
        user,
        device_id,
        device_type,
        policy_key,
        params,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], QueryError> {
        if self.0.len() < n {
            return Err(QueryError::Base64("it ends early"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, QueryError> {
        Ok(self.take(1)?[0])
    }

    /// A length byte and that many bytes.
    fn counted(&mut self) -> Result<&'a [u8], QueryError> {
        let len = usize::from(self.byte()?);
        self.take(len)
    }
}

fn check_field(name: &'static str, value: &str, may_be_empty: bool) -> Result<(), QueryError> {
    let fits = value.len() <= MAX_FIELD && value.bytes().all(|b| b.is_ascii_graphic());
    if fits && (may_be_empty || !value.is_empty()) {
        Ok(())
    } else {
        Err(QueryError::Field(name))
    }
}

/// A refused value, shortened and without control characters: it goes
/// into logs and the answer.
fn truncated(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(40).collect()
}

/// Percent-decoding of a query value (`+` is a space).
fn decode(value: &str) -> String {
    percent_decode(value, true)
}

/// Percent-decoding, `+` as a space when `plus_is_space`; bad escapes stay
/// as they are, and the result is read as UTF-8, lossily.
fn percent_decode(value: &str, plus_is_space: bool) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' if plus_is_space => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(hex_digit),
                bytes.get(i + 2).and_then(hex_digit),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(byte: &u8) -> Option<u8> {
    char::from(*byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v161() -> Headers<'static> {
        Headers {
            version: Some("16.1"),
            policy_key: Some("3942919513"),
            accept_multipart: None,
        }
    }

    #[test]
    fn the_plain_form_reads_command_device_and_parameters() {
        let request = parse(
            "Cmd=SmartReply&User=alice%40corp.example&DeviceId=ApplF17XK0XXHG7F&DeviceType=iPhone\
             &ItemId=5%3A12&CollectionId=5&SaveInSent=T&Unknown=1",
            v161(),
        )
        .unwrap();
        assert_eq!(request.command, Command::SmartReply);
        assert_eq!(request.version, Version::V16_1);
        assert_eq!(request.user, "alice@corp.example");
        assert_eq!(request.device_id, "ApplF17XK0XXHG7F");
        assert_eq!(request.device_type, "iPhone");
        assert_eq!(request.policy_key, Some(3_942_919_513));
        assert_eq!(request.params.item_id.as_deref(), Some("5:12"));
        assert!(request.params.save_in_sent && !request.params.accept_multipart);
    }

    #[test]
    fn bad_request_lines_are_refused_by_name() {
        let no_version = Headers::default();
        let cases = [
            (
                "DeviceId=a&DeviceType=b",
                v161(),
                QueryError::Missing("Cmd"),
            ),
            (
                "Cmd=Sync&DeviceType=b",
                v161(),
                QueryError::Missing("DeviceId"),
            ),
            (
                "Cmd=Sync&DeviceId=a",
                no_version,
                QueryError::Missing("MS-ASProtocolVersion"),
            ),
            (
                "Cmd=Launch&DeviceId=a",
                v161(),
                QueryError::Command("Launch".into()),
            ),
            (
                "Cmd=Sync&DeviceId=a%20b",
                v161(),
                QueryError::Field("DeviceId"),
            ),
            ("Cmd=Sync&DeviceId=", v161(), QueryError::Field("DeviceId")),
        ];
        for (query, headers, expected) in cases {
            assert_eq!(parse(query, headers).unwrap_err(), expected, "{query}");
        }
        let old = Headers {
            version: Some("12.1"),
            ..Headers::default()
        };
        assert!(matches!(
            parse("Cmd=Sync&DeviceId=a", old),
            Err(QueryError::Version(_))
        ));
        let bad_key = Headers {
            policy_key: Some("-1"),
            ..v161()
        };
        assert!(matches!(
            parse("Cmd=Sync&DeviceId=a", bad_key),
            Err(QueryError::PolicyKey(_))
        ));
        let long = format!("Cmd=Sync&DeviceId={}", "x".repeat(65));
        assert_eq!(
            parse(&long, v161()).unwrap_err(),
            QueryError::Field("DeviceId")
        );
        assert_eq!(
            parse(&"a".repeat(3_000), v161()).unwrap_err(),
            QueryError::TooLong
        );
    }

    /// The base64 form as MS-ASHTTP lays it out: version, command,
    /// locale, device id, policy key, device type, then parameters.
    fn base64_line(policy: &[u8], params: &[(u8, &[u8])]) -> String {
        let mut bytes = vec![141, 0, 0x09, 0x04];
        bytes.push(4);
        bytes.extend_from_slice(&[0xDE, 0xAD, 0xBE, 0xEF]);
        bytes.push(u8::try_from(policy.len()).unwrap());
        bytes.extend_from_slice(policy);
        bytes.push(2);
        bytes.extend_from_slice(b"WP");
        for (tag, value) in params {
            bytes.push(*tag);
            bytes.push(u8::try_from(value.len()).unwrap());
            bytes.extend_from_slice(value);
        }
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    #[test]
    fn the_base64_form_reads_the_same_fields() {
        let line = base64_line(
            &7_u32.to_le_bytes(),
            &[(1, b"5"), (8, b"alice@corp.example"), (7, &[0x03])],
        );
        // As a phone sends it: percent-encoded.
        let sent = line
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let request = parse(&sent, Headers::default()).unwrap();
        assert_eq!(request.command, Command::Sync);
        assert_eq!(request.version, Version::V14_1);
        assert_eq!(request.device_id, "deadbeef");
        assert_eq!(request.device_type, "WP");
        assert_eq!(request.policy_key, Some(7));
        assert_eq!(request.user, "alice@corp.example");
        assert_eq!(request.params.collection_id.as_deref(), Some("5"));
        assert!(request.params.save_in_sent && request.params.accept_multipart);
        // Unencoded too.
        assert_eq!(parse(&line, Headers::default()).unwrap(), request);
        // A raw `+` is base64's (a policy key of 0x3E3E3E3E encodes to
        // `Pj4+Pg`-style tokens).
        let plus = base64_line(&0x3E3E_3E3E_u32.to_le_bytes(), &[]);
        assert!(plus.contains('+'), "{plus}");
        assert_eq!(
            parse(&plus, Headers::default()).unwrap().policy_key,
            Some(0x3E3E_3E3E)
        );
        // A token without a key takes the header's.
        let header_key = Headers {
            policy_key: Some("42"),
            ..Headers::default()
        };
        assert_eq!(
            parse(&base64_line(&[], &[]), header_key)
                .unwrap()
                .policy_key,
            Some(42)
        );
        let no_key = parse(&base64_line(&[], &[]), Headers::default()).unwrap();
        assert_eq!(no_key.policy_key, None);
    }

    #[test]
    fn a_broken_base64_form_is_refused() {
        let line = base64_line(&[1, 2], &[]);
        assert_eq!(
            parse(&line, Headers::default()).unwrap_err(),
            QueryError::Base64("a policy key is 4 bytes")
        );
        let full = base64::engine::general_purpose::STANDARD
            .decode(base64_line(&[], &[(1, b"5")]))
            .unwrap();
        let cut = base64::engine::general_purpose::STANDARD.encode(&full[..full.len() - 1]);
        assert_eq!(
            parse(&cut, Headers::default()).unwrap_err(),
            QueryError::Base64("it ends early")
        );
        assert_eq!(
            parse("bm90IGEgcmVxdWVzdA", Headers::default()).unwrap_err(),
            QueryError::Base64("not base64")
        );
        let unknown_version =
            base64::engine::general_purpose::STANDARD.encode([121, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(
            parse(&unknown_version, Headers::default()),
            Err(QueryError::Version(_))
        ));
    }

    #[test]
    fn percent_decoding_keeps_what_it_cannot_read() {
        assert_eq!(decode("a%40b+c"), "a@b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%e4%b8%ad"), "中");
    }
}
