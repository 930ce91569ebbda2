//! Autodiscover: a user types an address and a password, and the phone
//! finds the server. Two forms: the XML POST of Exchange 2007 and later
//! (`/autodiscover/autodiscover.xml`, any casing; the mobilesync response
//! schema of MS-ASCMD §2.2.2.1), and the JSON form Outlook mobile asks
//! first (`/autodiscover/autodiscover.json?Email=…&Protocol=ActiveSync`
//! and `/autodiscover/autodiscover.json/v1.0/{address}?Protocol=…`).
//!
//! Both answer the same URL for every address, so they are served
//! without credentials: an answer says nothing about whether an address
//! has an account (no enumeration), and the login that matters is the
//! one at the ActiveSync URL.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use quick_xml::events::Event;

/// The only request schema answered.
const MOBILESYNC: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/mobilesync/responseschema/2006";
const RESPONSE_SCHEMA: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006";

/// Longest address echoed back.
const MAX_ADDRESS: usize = 254;

/// What an XML request asked.
#[derive(Debug, Default, PartialEq, Eq)]
struct Asked {
    address: String,
    schema: String,
}

/// Why an XML request gets an error answer (its code, MS-OXDSCLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// 600: not a request this server reads.
    InvalidRequest,
    /// 601: a response schema other than mobilesync.
    ProviderUnavailable,
}

impl Failure {
    fn code(self) -> u16 {
        match self {
            Self::InvalidRequest => 600,
            Self::ProviderUnavailable => 601,
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::InvalidRequest => "Invalid Request",
            Self::ProviderUnavailable => "Provider is not available",
        }
    }
}

/// Reads `EMailAddress` and `AcceptableResponseSchema`, wherever they are.
fn read(body: &[u8]) -> Result<Asked, Failure> {
    let text = std::str::from_utf8(body).map_err(|_| Failure::InvalidRequest)?;
    let mut reader = quick_xml::Reader::from_str(text);
    let mut asked = Asked::default();
    let mut field: Option<&'static str> = None;
    loop {
        match reader.read_event().map_err(|_| Failure::InvalidRequest)? {
            Event::Start(start) => {
                field = match start.local_name().as_ref() {
                    "EMailAddress" => Some("EMailAddress"),
                    "AcceptableResponseSchema" => Some("AcceptableResponseSchema"),
                    _ => None,
                };
            }
            Event::Text(t) => push(&mut asked, field, &t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_xml_entity(&r.xml10_content())
                        .ok_or(Failure::InvalidRequest)?
                        .to_owned(),
                    Err(_) => return Err(Failure::InvalidRequest),
                };
                push(&mut asked, field, &resolved);
            }
            Event::End(_) => field = None,
            Event::Eof => break,
            _ => {}
        }
        if asked.address.len() > MAX_ADDRESS || asked.schema.len() > 1_024 {
            return Err(Failure::InvalidRequest);
        }
    }
    let address = asked.address.trim();
    let plausible = address.contains('@') && !address.chars().any(char::is_control);
    if !plausible {
        return Err(Failure::InvalidRequest);
    }
    if asked.schema.trim() != MOBILESYNC {
        return Err(Failure::ProviderUnavailable);
    }
    Ok(Asked {
        address: address.to_owned(),
        schema: asked.schema.trim().to_owned(),
    })
}

fn push(asked: &mut Asked, field: Option<&str>, text: &str) {
    match field {
        Some("EMailAddress") => asked.address.push_str(text),
        Some("AcceptableResponseSchema") => asked.schema.push_str(text),
        _ => {}
    }
}

fn xml(body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response
}

/// The answer to an XML Autodiscover request for the service at `url`.
pub fn answer_xml(url: &str, body: &[u8]) -> Response {
    let escape = |s: &str| quick_xml::escape::escape(s).into_owned();
    let inner = match read(body) {
        Ok(asked) => format!(
            "<Response xmlns=\"{MOBILESYNC}\"><Culture>en:us</Culture><User>\
             <DisplayName>{address}</DisplayName><EMailAddress>{address}</EMailAddress></User>\
             <Action><Settings><Server><Type>MobileSync</Type><Url>{url}</Url><Name>{url}</Name>\
             </Server></Settings></Action></Response>",
            address = escape(&asked.address),
            url = escape(url),
        ),
        Err(failure) => {
            tracing::info!(code = failure.code(), "autodiscover request refused");
            format!(
                "<Response><Error><ErrorCode>{}</ErrorCode><Message>{}</Message>\
                 <DebugData/></Error></Response>",
                failure.code(),
                failure.message()
            )
        }
    };
    xml(format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Autodiscover xmlns=\"{RESPONSE_SCHEMA}\">{inner}</Autodiscover>\n"
    ))
}

/// The answer to a JSON Autodiscover request for `protocol`.
pub fn answer_json(url: &str, protocol: Option<&str>) -> Response {
    match protocol {
        Some(p) if p.eq_ignore_ascii_case("ActiveSync") => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"Protocol": "ActiveSync", "Url": url})),
        )
            .into_response(),
        other => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({
                "ErrorCode": "InvalidProtocol",
                "ErrorMessage": format!(
                    "The given protocol value '{}' is invalid. Supported values are 'ActiveSync'.",
                    other.unwrap_or_default().chars().take(40).collect::<String>()
                ),
            })),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(address: &str, schema: &str) -> Vec<u8> {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006\">\
             <Request><EMailAddress>{address}</EMailAddress>\
             <AcceptableResponseSchema>{schema}</AcceptableResponseSchema></Request></Autodiscover>"
        )
        .into_bytes()
    }

    #[test]
    fn a_mobilesync_request_is_read_and_others_get_their_error_code() {
        let asked = read(&request("alice@corp.example", MOBILESYNC)).unwrap();
        assert_eq!(asked.address, "alice@corp.example");
        let escaped = read(&request("o&apos;brien&#64;corp.example", MOBILESYNC)).unwrap();
        assert_eq!(escaped.address, "o'brien@corp.example");
        let outlook =
            "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
        assert_eq!(
            read(&request("alice@corp.example", outlook)),
            Err(Failure::ProviderUnavailable)
        );
        assert_eq!(
            read(&request("alice", MOBILESYNC)),
            Err(Failure::InvalidRequest)
        );
        assert_eq!(
            read(b"<Autodiscover><Request>"),
            Err(Failure::InvalidRequest)
        );
        assert_eq!(read(b"\xff\xfe"), Err(Failure::InvalidRequest));
        let long = format!("{}@corp.example", "a".repeat(300));
        assert_eq!(
            read(&request(&long, MOBILESYNC)),
            Err(Failure::InvalidRequest)
        );
        assert_eq!(
            read(&request("&unknown;@corp.example", MOBILESYNC)),
            Err(Failure::InvalidRequest)
        );
    }
}
