//! Our encoding read by libwbxml's `wbxml2xml` (Debian `libwbxml2-utils`,
//! installed by `scripts/provision.sh`), the independent reference: every
//! tag of every listed code page comes back under the name we give it,
//! and what `xml2wbxml` writes we decode to the same tree.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::process::Command;

use pushmail_wbxml::pages::{PAGES, name};
use pushmail_wbxml::{Element, Node, decode, encode};

/// The start tags' local names in `xml`, in order.
fn start_tags(xml: &str) -> Vec<String> {
    xml.split('<')
        .skip(1)
        .filter(|t| !t.starts_with(['/', '?', '!']))
        .map(|t| {
            let tag: String = t
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '>' && *c != '/')
                .collect();
            tag.rsplit(':').next().unwrap().to_owned()
        })
        .collect()
}

fn wbxml2xml(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wbxml");
    let output = dir.path().join("out.xml");
    std::fs::write(&input, bytes).unwrap();
    let status = Command::new("wbxml2xml")
        .args(["-l", "ACTIVESYNC", "-m", "0", "-o"])
        .arg(&output)
        .arg(&input)
        .status()
        .expect("wbxml2xml (libwbxml2-utils) is installed by scripts/provision.sh");
    assert!(status.success(), "wbxml2xml refused our encoding");
    std::fs::read_to_string(output).unwrap()
}

#[test]
fn libwbxml_names_every_listed_tag_as_we_do() {
    for page in PAGES {
        let mut root = Element::new(0, 0x05);
        for (tag, _) in page.tags {
            root = root.with(Element::new(page.number, *tag).with_text("1"));
        }
        let xml = wbxml2xml(&encode(&root).unwrap());
        let expected: Vec<String> = std::iter::once("Sync")
            .chain(page.tags.iter().map(|(_, n)| *n))
            .map(str::to_owned)
            .collect();
        assert_eq!(start_tags(&xml), expected, "page {}: {xml}", page.namespace);
    }
}

#[test]
fn what_xml2wbxml_writes_we_decode() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("ping.xml");
    let output = dir.path().join("ping.wbxml");
    std::fs::write(
        &input,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE ActiveSync PUBLIC \"-//MICROSOFT//DTD ActiveSync//EN\" \
         \"http://www.microsoft.com/\">\n<Ping xmlns=\"Ping:\"><HeartbeatInterval>480</HeartbeatInterval>\
         <Folders><Folder><Id>5</Id><Class>Email</Class></Folder></Folders></Ping>\n",
    )
    .unwrap();
    let status = Command::new("xml2wbxml")
        .args(["-v", "1.3", "-n", "-o"])
        .arg(&output)
        .arg(&input)
        .status()
        .expect("xml2wbxml (libwbxml2-utils) is installed by scripts/provision.sh");
    assert!(status.success());
    let ping = decode(&std::fs::read(&output).unwrap()).unwrap();
    assert_eq!(name(ping.page, ping.tag), Some("Ping"));
    assert_eq!(ping.child(13, 0x08).unwrap().text(), "480");
    let folder = ping.child(13, 0x09).unwrap().child(13, 0x0A).unwrap();
    assert_eq!(folder.child(13, 0x0B).unwrap().text(), "5");
    assert_eq!(
        folder.child(13, 0x0C).unwrap().children,
        [Node::Text("Email".to_owned())]
    );
}
