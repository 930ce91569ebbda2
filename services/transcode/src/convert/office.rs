//! Word documents and spreadsheets as readable HTML: a `.docx`'s headings,
//! paragraphs and tables; every sheet of an `.xlsx`/`.xls` as a table.
//! Office files are zip archives, and a zip can be a bomb: the entry count,
//! the declared unpacked sizes and each entry's expansion ratio are
//! checked before anything is inflated, and reads stop at the declared
//! size whatever the headers claimed.

use std::fmt::Write as _;
use std::io::{Cursor, Read as _};

use calamine::Reader as _;
use quick_xml::events::Event;

/// What a job may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input, bytes.
    pub max_input_bytes: usize,
    /// Most entries in the archive.
    pub max_entries: usize,
    /// Most bytes all entries may unpack to.
    pub max_unpacked_bytes: u64,
    /// Largest unpacked/packed ratio of one entry.
    pub max_ratio: u64,
    /// Most spreadsheet cells shown (the rest is summarised).
    pub max_cells: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 32 << 20,
            max_entries: 5_000,
            max_unpacked_bytes: 256 << 20,
            max_ratio: 200,
            max_cells: 100_000,
        }
    }
}

/// Why a document was not converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfficeError {
    #[error("document of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("refused as a zip bomb: {0}")]
    Bomb(String),
    #[error("unreadable document: {0}")]
    Corrupt(String),
}

pub(super) type Archive<'a> = zip::ZipArchive<Cursor<&'a [u8]>>;

/// Opens `bytes` as a zip whose every entry is within the limits.
pub(super) fn archive<'a>(bytes: &'a [u8], limits: &Limits) -> Result<Archive<'a>, OfficeError> {
    if bytes.len() > limits.max_input_bytes {
        return Err(OfficeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| OfficeError::Corrupt(e.to_string()))?;
    if zip.len() > limits.max_entries {
        return Err(OfficeError::Bomb(format!("{} entries", zip.len())));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| OfficeError::Corrupt(e.to_string()))?;
        total = total.saturating_add(entry.size());
        if entry.size()
            > entry
                .compressed_size()
                .max(1)
                .saturating_mul(limits.max_ratio)
        {
            return Err(OfficeError::Bomb(format!(
                "{} expands {}×",
                entry.name().unwrap_or_default(),
                entry.size() / entry.compressed_size().max(1)
            )));
        }
    }
    if total > limits.max_unpacked_bytes {
        return Err(OfficeError::Bomb(format!("{total} bytes unpacked")));
    }
    Ok(zip)
}

/// One entry's bytes, never more than it declared.
pub(super) fn entry(zip: &mut Archive<'_>, name: &str) -> Result<Vec<u8>, OfficeError> {
    let file = zip
        .by_name(name)
        .map_err(|e| OfficeError::Corrupt(format!("{name}: {e}")))?;
    let declared = file.size();
    let mut out = Vec::with_capacity(usize::try_from(declared.min(1 << 20)).unwrap_or(0));
    file.take(declared.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| OfficeError::Corrupt(format!("{name}: {e}")))?;
    if out.len() as u64 > declared {
        return Err(OfficeError::Bomb(format!(
            "{name} is longer than it declares"
        )));
    }
    Ok(out)
}

/// An entity or character reference in text, escaped for HTML.
pub(super) fn entity(r: &quick_xml::events::BytesRef<'_>) -> String {
    match r.xml10_content().as_ref() {
        "amp" => "&amp;".to_owned(),
        "lt" => "&lt;".to_owned(),
        "gt" => "&gt;".to_owned(),
        "quot" => "&quot;".to_owned(),
        "apos" => "'".to_owned(),
        _ => r
            .resolve_char_ref()
            .ok()
            .flatten()
            .map(|c| escape(&c.to_string()))
            .unwrap_or_default(),
    }
}

pub(super) fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A `.docx` as HTML: `Heading1`–`Heading6` and `Title` styles as
/// headings, other paragraphs as `<p>`, tables as tables.
pub fn docx_to_html(bytes: &[u8], limits: &Limits) -> Result<String, OfficeError> {
    let mut zip = archive(bytes, limits)?;
    let xml = entry(&mut zip, "word/document.xml")?;
    let xml = String::from_utf8(xml).map_err(|e| OfficeError::Corrupt(e.to_string()))?;
    let corrupt = |e: quick_xml::Error| OfficeError::Corrupt(format!("document.xml: {e}"));
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut html = String::new();
    let mut paragraph = String::new();
    let mut level: Option<u8> = None;
    let mut in_text = false;
    loop {
        match reader.read_event().map_err(corrupt)? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == "pStyle" => {
                let style = e
                    .attributes()
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == "val")
                    .map(|a| a.value.to_string())
                    .unwrap_or_default();
                level = match style.as_str() {
                    "Title" => Some(1),
                    s => s
                        .strip_prefix("Heading")
                        .and_then(|n| n.parse().ok())
                        .filter(|n| (1..=6).contains(n)),
                };
            }
            Event::Start(e) => match e.local_name().as_ref() {
                "p" => {
                    paragraph.clear();
                    level = None;
                }
                "t" => in_text = true,
                "tbl" => html.push_str("<table>"),
                "tr" => html.push_str("<tr>"),
                "tc" => html.push_str("<td>"),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "br" => paragraph.push_str("<br>"),
                "tab" => paragraph.push(' '),
                _ => {}
            },
            Event::Text(t) if in_text => paragraph.push_str(&escape(&t.xml10_content())),
            Event::GeneralRef(r) if in_text => paragraph.push_str(&entity(&r)),
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => {
                    match level {
                        Some(n) => {
                            let _ = write!(html, "<h{n}>{paragraph}</h{n}>");
                        }
                        None if !paragraph.is_empty() => {
                            let _ = write!(html, "<p>{paragraph}</p>");
                        }
                        None => {}
                    }
                    paragraph.clear();
                }
                "tbl" => html.push_str("</table>"),
                "tr" => html.push_str("</tr>"),
                "tc" => html.push_str("</td>"),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(html)
}

/// Every sheet of an `.xlsx` or `.xls` as a table, at most `max_cells`
/// cells in all.
pub fn spreadsheet_to_html(bytes: &[u8], limits: &Limits) -> Result<String, OfficeError> {
    if bytes.starts_with(b"PK") {
        archive(bytes, limits)?;
    } else if bytes.len() > limits.max_input_bytes {
        return Err(OfficeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let mut workbook = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
        .map_err(|e| OfficeError::Corrupt(e.to_string()))?;
    let mut html = String::new();
    let mut cells = 0usize;
    for name in workbook.sheet_names() {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| OfficeError::Corrupt(format!("{name}: {e}")))?;
        let _ = write!(html, "<h2>{}</h2><table>", escape(&name));
        for row in range.rows() {
            if cells >= limits.max_cells {
                break;
            }
            html.push_str("<tr>");
            for cell in row {
                cells += 1;
                let _ = write!(html, "<td>{}</td>", escape(&cell.to_string()));
            }
            html.push_str("</tr>");
        }
        html.push_str("</table>");
        if cells >= limits.max_cells {
            let _ = write!(
                html,
                "<p>(only the first {} cells are shown)</p>",
                limits.max_cells
            );
            break;
        }
    }
    Ok(html)
}
