//! An attachment's file name from the raw `Content-Disposition` and
//! `Content-Type` values: RFC 2231 extended parameters (`filename*=`),
//! their continuations (`filename*0*=`, `filename*1*=`, joined as bytes
//! before decoding, since senders split multi-byte characters), and plain
//! ones with encoded words or raw 8-bit bytes. mail-parser decodes each
//! continuation on its own, and with its own charset table.

use crate::charset::Context;
use crate::words::{hex_byte, text};

/// Most parameters read from one header: more is hostile input.
const MAX_PARAMS: usize = 64;

/// One `name=value` parameter, the value unquoted.
struct Param {
    name: String,
    value: Vec<u8>,
}

/// The file name `filename` (in `disposition`) or `name` (in
/// `content_type`) gives, decoded in the message's `context`.
pub(crate) fn file_name(
    disposition: Option<&[u8]>,
    content_type: Option<&[u8]>,
    context: &Context,
) -> Option<String> {
    [(disposition, "filename"), (content_type, "name")]
        .into_iter()
        .find_map(|(raw, name)| named(&params(raw?), name, context))
        .filter(|name| !name.is_empty())
}

/// The file name of a part whose parameters are already split (an IMAP
/// BODYSTRUCTURE lists them so, still encoded): `filename` among the
/// disposition's, then `name` among the content type's, decoded as
/// [`file_name`] does; raw 8-bit bytes are judged on their own.
pub fn file_name_from_params(
    disposition: &[(&str, &[u8])],
    content_type: &[(&str, &[u8])],
) -> Option<String> {
    let split = |pairs: &[(&str, &[u8])]| -> Vec<Param> {
        pairs
            .iter()
            .take(MAX_PARAMS)
            .map(|(name, value)| Param {
                name: name.to_ascii_lowercase(),
                value: value.to_vec(),
            })
            .collect()
    };
    let context = Context::default();
    [
        (split(disposition), "filename"),
        (split(content_type), "name"),
    ]
    .into_iter()
    .find_map(|(params, name)| named(&params, name, &context))
    .filter(|name| !name.is_empty())
}

/// Parameter `name` of `params`: extended (with continuations) first, as
/// RFC 2231 asks, then plain.
fn named(params: &[Param], name: &str, context: &Context) -> Option<String> {
    let extended = format!("{name}*");
    if let Some(param) = params.iter().find(|p| p.name == extended) {
        let (label, bytes) = extended_value(&param.value);
        return Some(context.decode(label, &bytes).into_owned());
    }
    let mut pieces: Vec<(u32, bool, &[u8])> = params
        .iter()
        .filter_map(|p| {
            let rest = p.name.strip_prefix(&extended)?;
            let (number, encoded) = match rest.strip_suffix('*') {
                Some(number) => (number, true),
                None => (rest, false),
            };
            Some((number.parse().ok()?, encoded, p.value.as_slice()))
        })
        .collect();
    if pieces.is_empty() {
        let plain = params.iter().find(|p| p.name == name)?;
        return Some(text(&plain.value, context));
    }
    pieces.sort_by_key(|(n, ..)| *n);
    let mut label = None;
    let mut bytes = Vec::new();
    for (n, encoded, value) in pieces {
        if !encoded {
            bytes.extend_from_slice(value);
        } else if n == 0 {
            let (first_label, first) = extended_value(value);
            label = first_label;
            bytes.extend(first);
        } else {
            bytes.extend(percent_decoded(value));
        }
    }
    Some(context.decode(label, &bytes).into_owned())
}

/// `charset'language'%XX…` → the charset and the bytes.
fn extended_value(value: &[u8]) -> (Option<&str>, Vec<u8>) {
    let mut parts = value.splitn(3, |b| *b == b'\'');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(label), Some(_language), Some(encoded)) => (
            std::str::from_utf8(label).ok().filter(|l| !l.is_empty()),
            percent_decoded(encoded),
        ),
        _ => (None, percent_decoded(value)),
    }
}

fn percent_decoded(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        match (value[i], hex_byte(value.get(i + 1..).unwrap_or_default())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// The parameters after the value's first `;`.
fn params(raw: &[u8]) -> Vec<Param> {
    let mut out = Vec::new();
    let mut rest = raw;
    while out.len() < MAX_PARAMS {
        let Some(semicolon) = rest.iter().position(|b| *b == b';') else {
            break;
        };
        rest = &rest[semicolon + 1..];
        let Some(eq) = rest.iter().position(|b| *b == b'=' || *b == b';') else {
            break;
        };
        if rest[eq] == b';' {
            continue;
        }
        let name = String::from_utf8_lossy(rest[..eq].trim_ascii()).to_ascii_lowercase();
        let after = rest[eq + 1..].trim_ascii_start();
        let (value, used) = value(after);
        out.push(Param { name, value });
        rest = &after[used..];
    }
    out
}

/// A parameter value at the start of `raw` (quoted or a token), and how
/// many bytes of `raw` it took.
fn value(raw: &[u8]) -> (Vec<u8>, usize) {
    let Some(quoted) = raw.strip_prefix(b"\"") else {
        let end = raw
            .iter()
            .position(|b| *b == b';' || b.is_ascii_whitespace())
            .unwrap_or(raw.len());
        return (raw[..end].to_vec(), end);
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < quoted.len() {
        // A backslash after a non-ASCII byte is the second byte of a GBK
        // or Big5 character, not an escape (Outlook writes such names raw).
        let escapes = i == 0 || quoted[i - 1].is_ascii();
        match quoted[i] {
            b'"' => return (out, i + 2),
            b'\\' if escapes && i + 1 < quoted.len() => {
                out.push(quoted[i + 1]);
                i += 2;
                continue;
            }
            b'\r' | b'\n' => {}
            byte => out.push(byte),
        }
        i += 1;
    }
    (out, raw.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_parameters_decode_as_header_ones_do() {
        let gbk: &[u8] = b"=?GBK?B?1tC5+i5kb2N4?=";
        assert_eq!(
            file_name_from_params(&[], &[("NAME", gbk)]).as_deref(),
            Some("\u{4e2d}\u{56fd}.docx")
        );
        let extended: &[(&str, &[u8])] = &[
            ("filename*0*", b"utf-8''%E5%AD%A3"),
            ("filename*1*", b"%E5%BA%A6.pdf"),
        ];
        assert_eq!(
            file_name_from_params(extended, &[("name", b"other.pdf")]).as_deref(),
            Some("\u{5b63}\u{5ea6}.pdf")
        );
        assert_eq!(file_name_from_params(&[], &[("charset", b"utf-8")]), None);
    }

    fn name_in(disposition: &[u8]) -> Option<String> {
        file_name(Some(disposition), None, &Context::default())
    }

    #[test]
    fn file_names_in_every_form() {
        let table: &[(&[u8], &str)] = &[
            (b"attachment; filename=\"q3.xls\"", "q3.xls"),
            (b"attachment; filename=report.pdf; size=10", "report.pdf"),
            (
                b"attachment; filename*=gb2312''%BC%BE%B6%C8%B1%A8%B8%E6.doc",
                "季度报告.doc",
            ),
            (
                b"attachment; filename*=x-gbk'zh-cn'%BC%BE%B6%C8.txt",
                "季度.txt",
            ),
            // A character split across continuations.
            (
                b"attachment;\r\n filename*0*=gbk''%BC%BE%B6;\r\n filename*1*=%C8.txt",
                "季度.txt",
            ),
            (
                b"attachment; filename*1=\".txt\"; filename*0*=utf-8''%E5%AD%A3",
                "季.txt",
            ),
            (
                b"attachment; filename=\"=?gb2312?B?vL62yA==?=.doc\"",
                "季度.doc",
            ),
            // Outlook: raw GBK in quotes.
            (b"attachment; filename=\"\xbc\xbe\xb6\xc8.doc\"", "季度.doc"),
            (b"attachment; filename=\"a\\\"b.txt\"", "a\"b.txt"),
            // The extended form wins over the plain one.
            (
                b"attachment; filename=\"fallback.doc\"; filename*=utf-8''%E5%AD%A3.doc",
                "季.doc",
            ),
        ];
        for (raw, expected) in table {
            assert_eq!(
                name_in(raw).as_deref(),
                Some(*expected),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn hints_fallbacks_and_broken_parameters() {
        // Raw Big5 whose second byte is a backslash, read with the body's
        // charset.
        assert_eq!(
            file_name(
                Some(b"attachment; filename=\"\xca\x5c.doc\""),
                None,
                &Context::with_raw_label("big5")
            ),
            Some("佢.doc".into())
        );
        assert_eq!(name_in(b"attachment"), None);
        assert_eq!(name_in(b"attachment; filename="), None);
        assert_eq!(
            name_in(b"attachment; filename=\"unterminated"),
            Some("unterminated".into())
        );
        assert_eq!(
            file_name(
                Some(b"inline"),
                Some(b"image/png; name=\"\xc9\xe8\xbc\xc6.png\""),
                &Context::default()
            ),
            Some("设计.png".into())
        );
        let many = format!("attachment{}; filename=late.txt", "; x=1".repeat(100));
        assert_eq!(name_in(many.as_bytes()), None);
    }
}
