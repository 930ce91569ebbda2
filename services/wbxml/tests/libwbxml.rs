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

/// Where libwbxml spells a tag otherwise than MS-ASWBXML does, beyond
/// case and the `Parent_` prefixes it adds (`Recurrence_Type` for `Type`).
const LIBWBXML_SPELLINGS: &[(u8, &str, &str)] = &[
    (1, "AssistantPhoneNumber", "AssistantTelephoneNumber"),
    (1, "BusinessAddressCity", "BusinessCity"),
    (1, "BusinessAddressCountry", "BusinessCountry"),
    (1, "BusinessAddressPostalCode", "BusinessPostalCode"),
    (1, "BusinessAddressState", "BusinessState"),
    (1, "BusinessAddressStreet", "BusinessStreet"),
    (1, "HomeAddressCity", "HomeCity"),
    (1, "HomeAddressCountry", "HomeCountry"),
    (1, "HomeAddressPostalCode", "HomePostalCode"),
    (1, "HomeAddressState", "HomeState"),
    (1, "HomeAddressStreet", "HomeStreet"),
    (1, "OtherAddressCity", "OtherCity"),
    (1, "OtherAddressCountry", "OtherCountry"),
    (1, "OtherAddressPostalCode", "OtherPostalCode"),
    (1, "OtherAddressState", "OtherState"),
    (1, "OtherAddressStreet", "OtherStreet"),
    (2, "Att0Id", "AttOId"),
    (2, "Status", "FlagStatus"),
    (
        14,
        "RequireStorageCardEncryption",
        "DeviceEncryptionEnabled",
    ),
    (
        18,
        "RightsManagementInformation",
        "ihsManagementInformation",
    ),
    (24, "Owner", "RMOwner"),
];

/// Pages newer than libwbxml's tables (Find, of 16.1): it reads their
/// tokens but names every tag `unknown`; `pyactivesync.rs` checks them
/// against another independent table.
const PAGES_NEWER_THAN_LIBWBXML: &[u8] = &[25];

/// Tags newer than libwbxml's tables (it names them `unknown`).
const NEWER_THAN_LIBWBXML: &[(u8, &str)] = &[(14, "AccountOnlyRemoteWipe"), (7, "Version")];

fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

fn same_tag(page: u8, ours: &str, theirs: &str) -> bool {
    fold(ours) == fold(theirs)
        || theirs
            .rsplit_once('_')
            .is_some_and(|(_, tail)| tail == ours)
        || LIBWBXML_SPELLINGS.contains(&(page, ours, theirs))
        || (theirs == "unknown" && NEWER_THAN_LIBWBXML.contains(&(page, ours)))
}

#[test]
fn libwbxml_names_every_tag_of_every_page_as_we_do() {
    let mut checked = 0;
    for page in PAGES {
        let mut root = Element::new(0, 0x05);
        for (tag, _) in page.tags() {
            root = root.with(Element::new(page.number, tag).with_text("1"));
        }
        let xml = wbxml2xml(&encode(&root).unwrap());
        let theirs = start_tags(&xml);
        let ours: Vec<&str> = std::iter::once("Sync")
            .chain(page.tags().map(|(_, n)| n))
            .collect();
        assert_eq!(theirs.len(), ours.len(), "page {}: {xml}", page.namespace);
        if PAGES_NEWER_THAN_LIBWBXML.contains(&page.number) {
            assert!(
                theirs.iter().skip(1).all(|t| t == "unknown"),
                "libwbxml knows page {} now: check it here: {xml}",
                page.number
            );
            continue;
        }
        if page.number != 0 {
            // libwbxml writes `Gal:` where MS-ASWBXML writes `GAL:`.
            let namespace = format!("xmlns=\"{}:\"", page.namespace).to_ascii_lowercase();
            assert!(
                xml.to_ascii_lowercase().contains(&namespace),
                "page {}: {xml}",
                page.number
            );
        }
        for (ours, theirs) in ours.iter().zip(&theirs) {
            assert!(
                same_tag(page.number, ours, theirs),
                "page {} ({}): we say {ours}, libwbxml {theirs}",
                page.number,
                page.namespace
            );
            checked += 1;
        }
    }
    assert_eq!(PAGES.len(), 26);
    assert!(checked > 500, "{checked}");
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
