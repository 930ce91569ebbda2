//! PowerPoint (`.pptx`) as readable HTML: each slide in the order the
//! presentation lists it, its title as a heading, its text boxes as
//! paragraphs and its tables as tables. Same zip-bomb checks as the other
//! Office formats.

use std::collections::HashMap;
use std::fmt::Write as _;

use quick_xml::events::{BytesStart, Event};

use super::office::{Archive, Limits, OfficeError, archive, entity, entry, escape, xml_entry};

/// Most slides shown.
const MAX_SLIDES: usize = 500;

/// A `.pptx` as HTML, one `<section>` per slide.
pub fn pptx_to_html(bytes: &[u8], limits: &Limits) -> Result<String, OfficeError> {
    let mut zip = archive(bytes, limits)?;
    let slides = slide_order(&mut zip)?;
    if slides.is_empty() {
        return Err(OfficeError::NoSlides);
    }
    let mut html = String::new();
    for (n, name) in slides.iter().take(MAX_SLIDES).enumerate() {
        let xml = xml_entry(&mut zip, name)?;
        let _ = write!(html, "<section><h2>Slide {}</h2>", n + 1);
        slide(&xml, &mut html).map_err(|source| OfficeError::Xml {
            name: name.clone(),
            source,
        })?;
        html.push_str("</section>");
    }
    if slides.len() > MAX_SLIDES {
        let _ = write!(html, "<p>… {} more slides</p>", slides.len() - MAX_SLIDES);
    }
    Ok(html)
}

fn attr(e: &BytesStart<'_>, local: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == local)
        .map(|a| a.value.to_string())
}

/// Slide entries in presentation order (`p:sldIdLst` through the
/// relationships); by file number when those are unreadable, since
/// reordering slides in PowerPoint renames no files.
fn slide_order(zip: &mut Archive<'_>) -> Result<Vec<String>, OfficeError> {
    let mut by_number: Vec<(u32, String)> = zip
        .file_names()
        .filter_map(|name| {
            let name = name.ok()?;
            let n = name
                .strip_prefix("ppt/slides/slide")?
                .strip_suffix(".xml")?
                .parse()
                .ok()?;
            Some((n, name.into_owned()))
        })
        .collect();
    by_number.sort();
    let fallback = || by_number.iter().map(|(_, n)| n.clone()).collect();
    let (Ok(presentation), Ok(rels)) = (
        entry(zip, "ppt/presentation.xml"),
        entry(zip, "ppt/_rels/presentation.xml.rels"),
    ) else {
        return Ok(fallback());
    };
    let mut targets = HashMap::new();
    let mut reader = quick_xml::Reader::from_reader(rels.as_slice());
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Empty(e) | Event::Start(e)) if e.local_name().as_ref() == "Relationship" => {
                if let (Some(id), Some(target)) = (attr(&e, "Id"), attr(&e, "Target")) {
                    targets.insert(id, target);
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    let mut order = Vec::new();
    let mut reader = quick_xml::Reader::from_reader(presentation.as_slice());
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Empty(e) | Event::Start(e)) if e.local_name().as_ref() == "sldId" => {
                // `r:id` names the relationship; the bare `id` is a number.
                let target = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == "id" && a.key.prefix().is_some())
                    .and_then(|a| targets.get(a.value.as_ref()))
                    .cloned();
                if let Some(target) = target {
                    let name = format!(
                        "ppt/{}",
                        target.trim_start_matches('/').trim_start_matches("ppt/")
                    );
                    if by_number.iter().any(|(_, n)| *n == name) {
                        order.push(name);
                    }
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(if order.is_empty() { fallback() } else { order })
}

/// Appends one slide's text: the title placeholder's paragraphs as `<h3>`,
/// table cells as cells, the rest as paragraphs.
fn slide(xml: &str, html: &mut String) -> Result<(), quick_xml::Error> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut paragraph = String::new();
    let mut in_text = false;
    let mut title = false;
    let mut in_cell = false;
    loop {
        match reader.read_event()? {
            Event::Start(e) => match e.local_name().as_ref() {
                "sp" => title = false,
                "ph" => title = is_title(&e),
                "p" => paragraph.clear(),
                "t" => in_text = true,
                "tbl" => html.push_str("<table>"),
                "tr" => html.push_str("<tr>"),
                "tc" => {
                    html.push_str("<td>");
                    in_cell = true;
                }
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "ph" => title = is_title(&e),
                "br" => paragraph.push_str("<br>"),
                _ => {}
            },
            Event::Text(t) if in_text => paragraph.push_str(&escape(&t.xml10_content())),
            Event::GeneralRef(r) if in_text => paragraph.push_str(&entity(&r)),
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" if !paragraph.is_empty() => {
                    if in_cell {
                        html.push_str(&paragraph);
                        html.push(' ');
                    } else if title {
                        let _ = write!(html, "<h3>{paragraph}</h3>");
                    } else {
                        let _ = write!(html, "<p>{paragraph}</p>");
                    }
                    paragraph.clear();
                }
                "tbl" => html.push_str("</table>"),
                "tr" => html.push_str("</tr>"),
                "tc" => {
                    html.push_str("</td>");
                    in_cell = false;
                }
                _ => {}
            },
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

fn is_title(e: &BytesStart<'_>) -> bool {
    matches!(attr(e, "type").as_deref(), Some("title" | "ctrTitle"))
}
