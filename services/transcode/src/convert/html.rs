//! HTML mail bodies for a phone: sanitised HTML that runs nothing and
//! loads nothing remote unless the device allows it, with the message's
//! inline images (`cid:`) pointed at their fetch URLs; and plain text.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// Why a body was not converted.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum HtmlError {
    /// More input than the limit allows.
    #[error("HTML of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    /// Elements nested deeper than real mail goes: parsing such input
    /// takes time quadratic in the depth (20,000 levels: tens of seconds).
    #[error("HTML nested about {depth} elements deep; at most {limit}")]
    TooDeep { depth: usize, limit: usize },
    /// The text renderer gave up (a width too narrow for the content).
    #[error("cannot render the HTML as text")]
    Render(#[source] html2text::Error),
}

/// How a body is made safe.
#[derive(Debug, Clone)]
pub struct Sanitise {
    /// Inline images: Content-ID (without `<>`) → the URL the phone fetches it at.
    pub inline: HashMap<String, String>,
    /// Keep `http(s)` images (the device's preference; off, they are dropped:
    /// a remote image tells the sender the mail was opened).
    pub allow_remote: bool,
    /// Largest input accepted, bytes.
    pub limit: usize,
    /// Deepest element nesting accepted (see [`depth`]).
    pub max_depth: usize,
}

impl Default for Sanitise {
    fn default() -> Self {
        Self {
            inline: HashMap::new(),
            allow_remote: false,
            limit: 0,
            max_depth: MAX_DEPTH,
        }
    }
}

/// The body as a small HTML document for a phone's web view.
pub fn mobile_html(html: &str, options: &Sanitise) -> Result<String, HtmlError> {
    check(html, options.limit, options.max_depth)?;
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
pub fn plain_text(
    html: &str,
    width: usize,
    limit: usize,
    max_depth: usize,
) -> Result<String, HtmlError> {
    check(html, limit, max_depth)?;
    html2text::from_read(html.as_bytes(), width.max(20)).map_err(HtmlError::Render)
}

/// Deepest nesting accepted by default (an estimate from the tags, see [`depth`]).
pub const MAX_DEPTH: usize = 1_000;

fn check(html: &str, limit: usize, max_depth: usize) -> Result<(), HtmlError> {
    if html.len() > limit {
        return Err(HtmlError::TooLarge {
            size: html.len(),
            limit,
        });
    }
    let depth = depth(html);
    if depth > max_depth {
        return Err(HtmlError::TooDeep {
            depth,
            limit: max_depth,
        });
    }
    Ok(())
}

/// Elements without content (the HTML5 "void" elements): the only ones a
/// `/>` or a missing end tag leaves flat in HTML.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Elements whose end tag may be left out and which the parser closes
/// when a sibling opens (sloppy mail never closes its `<p>` or `<li>`).
const SELF_ENDING: &[&str] = &[
    "p", "li", "dt", "dd", "td", "th", "tr", "tbody", "thead", "tfoot", "option", "optgroup",
    "colgroup", "rt", "rp",
];

/// Roots of foreign content, inside which `/>` does close an element.
const FOREIGN: &[&str] = &["svg", "math"];

/// The deepest nesting the tags suggest, counted the way an HTML5 parser
/// nests: open tags less close tags, not counting void elements nor those
/// whose end is implied by a sibling. A `/>` on any other HTML element is
/// ignored by HTML5 (`<div/>` opens a `div` that stays open), so it nests
/// here too; only inside `<svg>`/`<math>` does `/>` close. An estimate
/// that errs high (text inside comments and scripts counts), never low.
fn depth(html: &str) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest, mut foreign, mut i) = (0usize, 0usize, 0usize, 0usize);
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
        let closing = tag.first() == Some(&b'/');
        let name_part = if closing { &tag[1..] } else { tag };
        if !name_part.first().is_some_and(u8::is_ascii_alphabetic) {
            continue;
        }
        let name_len = name_part
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .unwrap_or(name_part.len());
        let name = name_part[..name_len].to_ascii_lowercase();
        let is = |list: &[&str]| list.iter().any(|f| f.as_bytes() == name.as_slice());
        if closing {
            if foreign > 0 && is(FOREIGN) {
                foreign -= 1;
            }
            if !is(VOID) && !is(SELF_ENDING) {
                depth = depth.saturating_sub(1);
            }
            continue;
        }
        let self_closed = tag.ends_with(b"/");
        if is(VOID) || is(SELF_ENDING) || (foreign > 0 && self_closed) {
            continue;
        }
        if is(FOREIGN) {
            if self_closed {
                continue;
            }
            foreign += 1;
        }
        depth += 1;
        deepest = deepest.max(depth);
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
            max_depth: MAX_DEPTH,
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
        let text = plain_text(html, 40, 1 << 20, MAX_DEPTH).unwrap();
        for word in ["季度报告", "周五", "A", "1"] {
            assert!(text.contains(word), "{word} in {text}");
        }
        assert!(matches!(
            plain_text(&"x".repeat(101), 40, 100, MAX_DEPTH),
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
            Err(HtmlError::TooDeep { depth: 20_000, .. })
        ));
        assert!(matches!(
            plain_text(&nested(20_000), 40, 1 << 20, MAX_DEPTH),
            Err(HtmlError::TooDeep { .. })
        ));
        let ordinary = nested(500);
        let (html, text) = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                (
                    mobile_html(&ordinary, &options()).is_ok(),
                    plain_text(&ordinary, 40, 1 << 20, MAX_DEPTH).map(|t| t.contains("deep")),
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
        assert_eq!(depth("<br/><img src=x><div><span/></div>"), 2);
    }

    #[test]
    fn self_closed_html_elements_nest_as_html5_nests_them() {
        // HTML5 ignores `/>` on a div: 30,000 of them are 30,000 levels.
        let divs = "<div/>".repeat(30_000);
        assert_eq!(depth(&divs), 30_000);
        let started = std::time::Instant::now();
        assert!(matches!(
            mobile_html(&divs, &options()),
            Err(HtmlError::TooDeep { depth: 30_000, .. })
        ));
        assert!(matches!(
            plain_text(&divs, 40, 1 << 20, MAX_DEPTH),
            Err(HtmlError::TooDeep { .. })
        ));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Inside SVG a `/>` closes: an icon's paths are flat.
        let icon = format!("<svg>{}</svg><p>x", "<path d=\"M0 0\"/>".repeat(5_000));
        assert_eq!(depth(&icon), 1);
        assert_eq!(depth("<svg/><div>"), 1);
        // Closing tags of void and self-ending elements change nothing.
        assert_eq!(depth("<div><p>a</p><br></br></div><div>"), 1);
        // The configured depth is the bound.
        let shallow = Sanitise {
            max_depth: 10,
            ..options()
        };
        assert!(mobile_html(&"<div>".repeat(11), &shallow).is_err());
        assert!(mobile_html(&"<div>".repeat(10), &shallow).is_ok());
    }
}
