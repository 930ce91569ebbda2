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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// Largest grid of one sheet, rows × columns between its first and
    /// last filled cells: the reader allocates that grid whole, so two
    /// cells at A1 and XFD1048576 would ask for 512 GiB.
    pub max_sheet_cells: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 32 << 20,
            max_entries: 5_000,
            max_unpacked_bytes: 256 << 20,
            max_ratio: 200,
            max_cells: 100_000,
            max_sheet_cells: 2_000_000,
        }
    }
}

/// Why a document was not converted.
#[derive(Debug, thiserror::Error)]
pub enum OfficeError {
    #[error("document of {size} bytes is over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("refused as a zip bomb: {0}")]
    Bomb(Bomb),
    #[error(
        "sheet {sheet:?} spans {rows} rows × {columns} columns; at most {limit} cells are read"
    )]
    SheetTooLarge {
        sheet: String,
        rows: u64,
        columns: u64,
        limit: u64,
    },
    /// Not a zip archive, or its directory is broken.
    #[error("not a readable zip archive")]
    Archive(#[source] zip::result::ZipError),
    /// An entry is missing or does not inflate.
    #[error("cannot read {name} from the archive")]
    Entry {
        name: String,
        #[source]
        source: zip::result::ZipError,
    },
    /// An XML entry is not UTF-8.
    #[error("{name} is not UTF-8")]
    Utf8 {
        name: String,
        #[source]
        source: std::string::FromUtf8Error,
    },
    /// An XML entry does not parse.
    #[error("{name} is not well-formed XML")]
    Xml {
        name: String,
        #[source]
        source: quick_xml::Error,
    },
    /// The spreadsheet reader refused the workbook.
    #[error("unreadable workbook")]
    Workbook(#[source] calamine::Error),
    /// The spreadsheet reader refused a sheet.
    #[error("unreadable sheet {sheet:?}")]
    Sheet {
        sheet: String,
        #[source]
        source: calamine::Error,
    },
    /// A presentation without a slide.
    #[error("the presentation has no slides")]
    NoSlides,
}

/// What made an archive look like a zip bomb.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Bomb {
    #[error("{entries} entries; at most {limit}")]
    Entries { entries: usize, limit: usize },
    #[error("{name} expands {ratio}×; at most {limit}×")]
    Ratio {
        name: String,
        ratio: u64,
        limit: u64,
    },
    #[error("{total} bytes unpacked; at most {limit}")]
    Unpacked { total: u64, limit: u64 },
    #[error("{name} is longer than it declares")]
    Overlong { name: String },
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
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(OfficeError::Archive)?;
    if zip.len() > limits.max_entries {
        return Err(OfficeError::Bomb(Bomb::Entries {
            entries: zip.len(),
            limit: limits.max_entries,
        }));
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(OfficeError::Archive)?;
        total = total.saturating_add(entry.size());
        if entry.size()
            > entry
                .compressed_size()
                .max(1)
                .saturating_mul(limits.max_ratio)
        {
            return Err(OfficeError::Bomb(Bomb::Ratio {
                name: entry.name().unwrap_or_default().into_owned(),
                ratio: entry.size() / entry.compressed_size().max(1),
                limit: limits.max_ratio,
            }));
        }
    }
    if total > limits.max_unpacked_bytes {
        return Err(OfficeError::Bomb(Bomb::Unpacked {
            total,
            limit: limits.max_unpacked_bytes,
        }));
    }
    Ok(zip)
}

/// One entry's bytes, never more than it declared.
pub(super) fn entry(zip: &mut Archive<'_>, name: &str) -> Result<Vec<u8>, OfficeError> {
    let unreadable = |source| OfficeError::Entry {
        name: name.to_owned(),
        source,
    };
    let file = zip.by_name(name).map_err(unreadable)?;
    let declared = file.size();
    let mut out = Vec::with_capacity(usize::try_from(declared.min(1 << 20)).unwrap_or(0));
    file.take(declared.saturating_add(1))
        .read_to_end(&mut out)
        // What the zip crate reports when an entry does not inflate.
        .map_err(|e| unreadable(zip::result::ZipError::Io(e)))?;
    if out.len() as u64 > declared {
        return Err(OfficeError::Bomb(Bomb::Overlong {
            name: name.to_owned(),
        }));
    }
    Ok(out)
}

/// One XML entry as text.
pub(super) fn xml_entry(zip: &mut Archive<'_>, name: &str) -> Result<String, OfficeError> {
    String::from_utf8(entry(zip, name)?).map_err(|source| OfficeError::Utf8 {
        name: name.to_owned(),
        source,
    })
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
    const DOCUMENT: &str = "word/document.xml";
    let xml = xml_entry(&mut zip, DOCUMENT)?;
    let corrupt = |source| OfficeError::Xml {
        name: DOCUMENT.to_owned(),
        source,
    };
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
/// cells in all. An `.xlsx` has each sheet's extent measured first (its
/// `<dimension ref>` and every filled cell's reference, streamed without a
/// grid) and refused over `max_sheet_cells`. An `.xls` cannot be measured
/// before the reader builds its grids, but the format itself caps a sheet
/// at 65,536 × 256 cells; the worker's memory limit holds the rest.
pub fn spreadsheet_to_html(bytes: &[u8], limits: &Limits) -> Result<String, OfficeError> {
    if bytes.starts_with(b"PK") {
        archive(bytes, limits)?;
        let mut workbook =
            calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| OfficeError::Workbook(e.into()))?;
        for name in workbook.sheet_names() {
            check_extent(&mut workbook, &name, limits)?;
        }
        return sheets_to_html(&mut workbook, limits);
    }
    if bytes.len() > limits.max_input_bytes {
        return Err(OfficeError::TooLarge {
            size: bytes.len(),
            limit: limits.max_input_bytes,
        });
    }
    let mut workbook =
        calamine::Xls::new(Cursor::new(bytes)).map_err(|e| OfficeError::Workbook(e.into()))?;
    sheets_to_html(&mut workbook, limits)
}

/// Refuses `sheet` when the grid its reader would allocate (from the first
/// to the last filled cell, or what `<dimension ref>` declares) is over the
/// budget. Reads the sheet's XML as a stream: no grid is built.
fn check_extent(
    workbook: &mut calamine::Xlsx<Cursor<&[u8]>>,
    sheet: &str,
    limits: &Limits,
) -> Result<(), OfficeError> {
    let corrupt = |e: calamine::XlsxError| OfficeError::Sheet {
        sheet: sheet.to_owned(),
        source: e.into(),
    };
    let mut cells = match workbook.worksheet_cells_reader(sheet) {
        Ok(cells) => cells,
        // A chart sheet has no cells; the reader shows it empty.
        Err(calamine::XlsxError::NotAWorksheet(_)) => return Ok(()),
        Err(e) => return Err(corrupt(e)),
    };
    let too_large = |(first_row, first_col): (u32, u32), (last_row, last_col): (u32, u32)| {
        let rows = u64::from(last_row.saturating_sub(first_row)) + 1;
        let columns = u64::from(last_col.saturating_sub(first_col)) + 1;
        (rows.saturating_mul(columns) > limits.max_sheet_cells).then(|| {
            OfficeError::SheetTooLarge {
                sheet: sheet.to_owned(),
                rows,
                columns,
                limit: limits.max_sheet_cells,
            }
        })
    };
    let declared = cells.dimensions();
    if let Some(refused) = too_large(declared.start, declared.end) {
        return Err(refused);
    }
    let (mut first, mut last) = ((u32::MAX, u32::MAX), (0u32, 0u32));
    while let Some(cell) = cells.next_cell().map_err(corrupt)? {
        if matches!(cell.get_value(), calamine::DataRef::Empty) {
            continue;
        }
        let (row, col) = cell.get_position();
        first = (first.0.min(row), first.1.min(col));
        last = (last.0.max(row), last.1.max(col));
        if let Some(refused) = too_large(first, last) {
            return Err(refused);
        }
    }
    Ok(())
}

fn sheets_to_html<RS, R>(workbook: &mut R, limits: &Limits) -> Result<String, OfficeError>
where
    RS: std::io::Read + std::io::Seek,
    R: calamine::Reader<RS>,
    R::Error: Into<calamine::Error>,
{
    let mut html = String::new();
    let mut cells = 0usize;
    for name in workbook.sheet_names() {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| OfficeError::Sheet {
                sheet: name.clone(),
                source: e.into(),
            })?;
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

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    /// An `.xlsx` whose one sheet has the given cells (`("A1", "x")`) and
    /// declares `dimension`.
    pub(crate) fn xlsx(dimension: &str, cells: &[(&str, &str)]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        let mut put = |name: &str, body: &str| {
            zip.start_file(name, options).unwrap();
            zip.write_all(body.as_bytes()).unwrap();
        };
        put(
            "[Content_Types].xml",
            r#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
        );
        put(
            "_rels/.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
        );
        put(
            "xl/workbook.xml",
            r#"<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
        );
        put(
            "xl/_rels/workbook.xml.rels",
            r#"<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
        );
        let rows: String = cells
            .iter()
            .map(|(r, v)| {
                let row: String = r.chars().filter(char::is_ascii_digit).collect();
                format!(r#"<row r="{row}"><c r="{r}" t="inlineStr"><is><t>{v}</t></is></c></row>"#)
            })
            .collect();
        put(
            "xl/worksheets/sheet1.xml",
            &format!(
                r#"<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="{dimension}"/><sheetData>{rows}</sheetData></worksheet>"#
            ),
        );
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn a_sheet_spanning_the_whole_grid_is_refused_before_any_grid() {
        // The 4.8 KB file of the report: A1 and the sheet's last cell.
        let bomb = xlsx("A1:XFD1048576", &[("A1", "a"), ("XFD1048576", "z")]);
        let started = std::time::Instant::now();
        let refused = spreadsheet_to_html(&bomb, &Limits::default()).unwrap_err();
        assert!(
            matches!(
                refused,
                OfficeError::SheetTooLarge {
                    rows: 1_048_576,
                    columns: 16_384,
                    ..
                }
            ),
            "{refused}"
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // The cells alone say so when the dimension is left out or lies.
        let lying = xlsx("A1", &[("A1", "a"), ("XFD1048576", "z")]);
        assert!(matches!(
            spreadsheet_to_html(&lying, &Limits::default()),
            Err(OfficeError::SheetTooLarge { .. })
        ));
        let small = xlsx("A1:C2", &[("A1", "季度"), ("C2", "42")]);
        let html = spreadsheet_to_html(&small, &Limits::default()).unwrap();
        assert!(html.contains("季度") && html.contains("42"), "{html}");
        let budget = Limits {
            max_sheet_cells: 5,
            ..Limits::default()
        };
        assert!(matches!(
            spreadsheet_to_html(&small, &budget),
            Err(OfficeError::SheetTooLarge {
                rows: 2,
                columns: 3,
                ..
            })
        ));
    }

    #[test]
    fn zips_over_their_entry_and_size_budgets_are_refused() {
        let small = xlsx("A1", &[("A1", "a")]);
        let few = Limits {
            max_entries: 3,
            ..Limits::default()
        };
        assert!(matches!(
            archive(&small, &few),
            Err(OfficeError::Bomb(Bomb::Entries { limit: 3, .. }))
        ));
        let tight = Limits {
            max_unpacked_bytes: 100,
            ..Limits::default()
        };
        assert!(matches!(
            archive(&small, &tight),
            Err(OfficeError::Bomb(Bomb::Unpacked { limit: 100, .. }))
        ));
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        zip.start_file("zeros", zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(&vec![0u8; 10 << 20]).unwrap();
        let zeros = zip.finish().unwrap().into_inner();
        assert!(matches!(
            archive(&zeros, &Limits::default()),
            Err(OfficeError::Bomb(Bomb::Ratio { name, .. })) if name == "zeros"
        ));
        assert!(matches!(
            archive(b"PK\x03\x04 not a zip", &Limits::default()),
            Err(OfficeError::Archive(_))
        ));
    }
}
