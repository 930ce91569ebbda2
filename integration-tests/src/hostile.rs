//! Attachments built to take a converter down, written by Python's own
//! `zipfile` and `zlib` (not by our code, so a bug in our reader of a
//! format is not mirrored in the writer): the spreadsheet whose two cells
//! ask for a 512 GiB grid, a PDF whose one stream inflates to 200 MiB, an
//! Office file that expands 1000×, one with 10,000 entries, one that is
//! not a zip at all, and an HTML body of 30,000 `<div/>` (30,000 levels
//! to an HTML5 parser). Used by the attack suite and the transcode bench.

use std::path::Path;

/// One hostile file and how it is mailed.
#[derive(Debug, Clone)]
pub struct Hostile {
    /// What it is, for reports and assertion messages.
    pub name: &'static str,
    pub file_name: &'static str,
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

/// The HTML body of 30,000 self-closed `div`s.
pub fn nested_divs() -> String {
    "<div/>".repeat(30_000)
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// The hostile attachments, written into `dir`.
pub fn attachments(dir: &Path) -> Vec<Hostile> {
    crate::documents::python(
        dir,
        r#"
import zipfile, zlib
ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
rels = 'xmlns="http://schemas.openxmlformats.org/package/2006/relationships"'
with zipfile.ZipFile('sheet.xlsx', 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('[Content_Types].xml', '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>')
    z.writestr('_rels/.rels', '<?xml version="1.0"?><Relationships ' + rels + '><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    z.writestr('xl/workbook.xml', '<?xml version="1.0"?><workbook ' + ns + ' xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets></workbook>')
    z.writestr('xl/_rels/workbook.xml.rels', '<?xml version="1.0"?><Relationships ' + rels + '><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
    z.writestr('xl/worksheets/sheet1.xml', '<?xml version="1.0"?><worksheet ' + ns + '><dimension ref="A1:XFD1048576"/><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>a</t></is></c></row><row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>z</t></is></c></row></sheetData></worksheet>')

data = zlib.compress(b'\0' * (200 << 20), 9)
head = (b'%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n'
        b'2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n'
        b'3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>\nendobj\n')
with open('bomb.pdf', 'wb') as f:
    f.write(head + b'4 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n' % len(data)
            + data + b'\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n')

with zipfile.ZipFile('bomb.docx', 'w', zipfile.ZIP_DEFLATED) as z:
    z.writestr('word/document.xml', ' ' * (100 << 20))

with zipfile.ZipFile('entries.docx', 'w', zipfile.ZIP_STORED) as z:
    for i in range(10000):
        z.writestr('e%d' % i, '')
    z.writestr('word/document.xml', '<w:document/>')

with open('broken.docx', 'wb') as f:
    f.write(b'PK\x03\x04' + b'\xff' * 4096)
"#,
    );
    let read = |name: &str| std::fs::read(dir.join(name)).expect("a written file");
    vec![
        Hostile {
            name: "spreadsheet spanning A1:XFD1048576",
            file_name: "sheet.xlsx",
            content_type: XLSX,
            bytes: read("sheet.xlsx"),
        },
        Hostile {
            name: "PDF with a 200 MiB Flate stream",
            file_name: "bomb.pdf",
            content_type: "application/pdf",
            bytes: read("bomb.pdf"),
        },
        Hostile {
            name: "docx expanding 1000×",
            file_name: "bomb.docx",
            content_type: DOCX,
            bytes: read("bomb.docx"),
        },
        Hostile {
            name: "docx of 10,000 entries",
            file_name: "entries.docx",
            content_type: DOCX,
            bytes: read("entries.docx"),
        },
        Hostile {
            name: "docx that is no zip",
            file_name: "broken.docx",
            content_type: DOCX,
            bytes: read("broken.docx"),
        },
        Hostile {
            name: "30,000 <div/> as an attachment",
            file_name: "divs.html",
            content_type: "text/html",
            bytes: nested_divs().into_bytes(),
        },
    ]
}
