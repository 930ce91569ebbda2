//! HTML mail bodies for a phone: sanitised HTML that runs nothing and
//! loads nothing remote unless the device allows it, with the message's
//! inline images (`cid:`) pointed at their fetch URLs; and plain text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a body was not converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HtmlError {
    /// More input than the limit allows.
    #[error("HTML of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// Elements nested deeper than real mail goes: parsing such input
    /// takes time quadratic in the depth (20,000 levels: tens of seconds).
    #[error("HTML nested about {depth} elements deep; at most {MAX_DEPTH}")]
    TooDeep { depth: usize },
    /// The text renderer gave up (a width too narrow for the content).
    #[error("cannot render the HTML as text: {0}")]
    Render(String),
}

/// How a body is made safe.
#[derive(Debug, Clone, Default)]
pub struct Sanitise {
    /// Inline images: Content-ID (without `<>`) → the URL the phone fetches it at.
    pub inline: HashMap<String, String>,
    /// Keep `http(s)` images (the device's preference; off, they are dropped:
    /// a remote image tells the sender the mail was opened).
    pub allow_remote: bool,
    /// Largest input accepted, bytes.
    pub limit: usize,
}

/// The body as a small HTML document for a phone's web view.
pub fn mobile_html(html: &str, options: &Sanitise) -> Result<String, HtmlError> {
    check(html, options.limit)?;
    let inline = Arc::new(options.inline.clone());
    let allow_remote = options.allow_remote;
    let body = ammonia::Builder::default()
        .add_url_schemes(["cid", "data"])
        .link_rel(Some("noopener noreferrer nofollow"))
        .attribute_filter(move |element, attribute, value| {
            filter(&inline, allow_remote, element, attribute, value)
        })
        .clean(html)
        .to_string();
    Ok(format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>img{{max-width:100%;height:auto}}table{{max-width:100%}}</style>\
         </head><body>{body}</body></html>"
    ))
}

/// The body as text wrapped at `width` columns.
pub fn plain_text(html: &str, width: usize, limit: usize) -> Result<String, HtmlError> {
    check(html, limit)?;
    html2text::from_read(html.as_bytes(), width.max(20))
        .map_err(|e| HtmlError::Render(e.to_string()))
}

/// Deepest nesting accepted (an estimate from the tags, see [`depth`]).
pub const MAX_DEPTH: usize = 1_000;

fn check(html: &str, limit: usize) -> Result<(), HtmlError> {
    if html.len() > limit {
        return Err(HtmlError::TooLarge {
            size: html.len(),
            limit,
        });
    }
    let depth = depth(html);
    if depth > MAX_DEPTH {
        return Err(HtmlError::TooDeep { depth });
    }
    Ok(())
}

/// Elements without content, and those whose end tag may be left out
/// (sloppy mail never closes its `<p>` or `<li>`): neither deepens the tree.
const FLAT: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr", "p", "li", "dt", "dd", "td", "th", "tr", "tbody", "thead", "tfoot", "option",
    "optgroup", "colgroup", "rt", "rp",
];

/// The deepest nesting the tags suggest: open tags less close tags, not
/// counting [`FLAT`] ones or self-closed ones. An estimate that errs high
/// only for HTML that leaves ordinary containers open.
fn depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while let Some(offset) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + offset + 1;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(bytes.len(), |e| start + e);
        let tag = &bytes[start..end];
        i = end.min(bytes.len().saturating_sub(1)) + 1;
        if i > bytes.len() {
            break;
        }
        match tag.first() {
            Some(b'/') => depth = depth.saturating_sub(1),
            Some(c) if c.is_ascii_alphabetic() => {
                let name_len = tag
                    .iter()
                    .position(|b| !b.is_ascii_alphanumeric())
                    .unwrap_or(tag.len());
                let name = tag[..name_len].to_ascii_lowercase();
                let flat = FLAT.iter().any(|f| f.as_bytes() == name.as_slice());
                if !flat && !tag.ends_with(b"/") {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
            }
            _ => {}
        }
    }
    deepest
}

fn filter<'u>(
    inline: &HashMap<String, String>,
    allow_remote: bool,
    element: &str,
    attribute: &str,
    value: &'u str,
) -> Option<Cow<'u, str>> {
    let lower = value.trim_start().to_ascii_lowercase();
    if (element, attribute) == ("img", "src") {
        if lower.starts_with("cid:") {
            let id = value.trim_start()[4..].trim_matches(|c| c == '<' || c == '>');
            return inline.get(id).map(|url| Cow::Owned(url.clone()));
        }
        if lower.starts_with("data:image/") {
            return Some(Cow::Borrowed(value));
        }
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return allow_remote.then_some(Cow::Borrowed(value));
        }
        return None;
    }
    // cid: and data: are for images only (a data: link can carry a page).
    if lower.starts_with("cid:") || lower.starts_with("data:") {
        return None;
    }
    Some(Cow::Borrowed(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> Sanitise {
        Sanitise {
            inline: HashMap::from([(
                "logo@corp".to_owned(),
                "https://push.example.com/v1/m/1/parts/2".to_owned(),
            )]),
            allow_remote: false,
            limit: 1 << 20,
        }
    }

    #[test]
    fn scripts_handlers_styles_and_remote_loads_are_gone() {
        let hostile = r#"<html><head><style>body{background:url(https://t.example/x)}</style>
            <script>alert(1)</script></head><body onload="steal()">
            <p style="background:url(https://t.example/y)">Hello <b>team</b></p>
            <img src="https://t.example/open.gif" width="1" height="1">
            <img src="cid:logo@corp" alt="logo"><img src="CID:<missing@corp>">
            <a href="javascript:alert(2)">x</a> <a href="https://corp.example/report">report</a>
            <a href="data:text/html,<script>alert(3)</script>">d</a>
            <iframe src="https://t.example/frame"></iframe>
            <img src="x" onerror="alert(4)"></body></html>"#;
        let clean = mobile_html(hostile, &options()).unwrap();
        for gone in [
            "script",
            "alert",
            "onload",
            "onerror",
            "t.example",
            "javascript:",
            "iframe",
            "data:text",
            "missing@corp",
        ] {
            assert!(!clean.contains(gone), "{gone} in {clean}");
        }
        assert!(
            clean.contains(r#"src="https://push.example.com/v1/m/1/parts/2""#),
            "{clean}"
        );
        assert!(clean.contains("https://corp.example/report"));
        assert!(clean.contains("noopener"));
        assert!(clean.contains("<b>team</b>"));
        let remote = Sanitise {
            allow_remote: true,
            ..options()
        };
        assert!(
            mobile_html(hostile, &remote)
                .unwrap()
                .contains("https://t.example/open.gif")
        );
    }

    #[test]
    fn text_keeps_the_words_and_limits_hold() {
        let html = "<h1>季度报告</h1><p>请在<b>周五</b>前提交。</p><table><tr><td>A</td><td>1</td></tr></table>";
        let text = plain_text(html, 40, 1 << 20).unwrap();
        for word in ["季度报告", "周五", "A", "1"] {
            assert!(text.contains(word), "{word} in {text}");
        }
        assert!(matches!(
            plain_text(&"x".repeat(101), 40, 100),
            Err(HtmlError::TooLarge { .. })
        ));
        assert!(matches!(
            mobile_html(
                &"x".repeat(101),
                &Sanitise {
                    limit: 100,
                    ..options()
                }
            ),
            Err(HtmlError::TooLarge { .. })
        ));
    }

    #[test]
    fn deep_nesting_is_refused_at_once_and_ordinary_depth_converts() {
        let nested = |n: usize| format!("{}deep{}", "<div>".repeat(n), "</div>".repeat(n));
        assert!(matches!(
            mobile_html(&nested(20_000), &options()),
            Err(HtmlError::TooDeep { depth: 20_000 })
        ));
        assert!(matches!(
            plain_text(&nested(20_000), 40, 1 << 20),
            Err(HtmlError::TooDeep { .. })
        ));
        let ordinary = nested(500);
        let (html, text) = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                (
                    mobile_html(&ordinary, &options()).is_ok(),
                    plain_text(&ordinary, 40, 1 << 20).map(|t| t.contains("deep")),
                )
            })
            .unwrap()
            .join()
            .expect("no stack overflow");
        assert!(html);
        assert_eq!(text, Ok(true));
        // Unclosed paragraphs and list items do not count as depth.
        let sloppy = "<ul>".to_owned() + &"<li><p>item".repeat(5_000) + "</ul>";
        assert_eq!(depth(&sloppy), 1);
        assert_eq!(depth("<br/><img src=x><div><span/></div>"), 1);
    }
}
