//! The SMS wake-up's Service Indication decodes with an independent WBXML
//! decoder (libwbxml's `wbxml2xml`, from Debian's libwbxml2-utils), and the
//! WSP push PDU around it carries what a phone's push router dispatches on.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_sms_encoding::wap::{ServiceIndication, push_pdu, segments, wbxml};

fn decode(document: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("si.wbxml");
    let output = dir.path().join("si.xml");
    std::fs::write(&input, document).unwrap();
    let status = std::process::Command::new("wbxml2xml")
        .arg("-m")
        .arg("0")
        .arg("-o")
        .arg(&output)
        .arg(&input)
        .status()
        .expect("wbxml2xml (Debian package libwbxml2-utils; `make test` installs it)");
    assert!(status.success(), "wbxml2xml refused the document");
    std::fs::read_to_string(output).unwrap()
}

fn indication(text: &str) -> ServiceIndication {
    ServiceIndication {
        href: "https://push.example.com/v1/messages/acct-1/INBOX/42".to_owned(),
        si_id: "acct-1/INBOX".to_owned(),
        created: 1_795_716_000,
        expires: 1_795_802_400,
        text: text.to_owned(),
    }
}

#[test]
fn the_service_indication_decodes_with_libwbxml() {
    let xml = decode(&wbxml(&indication("New mail from Boss: Q3 report")));
    assert!(xml.contains("-//WAPFORUM//DTD SI 1.0//EN"), "{xml}");
    assert!(
        xml.contains(r#"href="https://push.example.com/v1/messages/acct-1/INBOX/42""#),
        "{xml}"
    );
    assert!(xml.contains(r#"si-id="acct-1/INBOX""#), "{xml}");
    assert!(xml.contains(r#"created="2026-11-26T18:00:00Z""#), "{xml}");
    assert!(
        xml.contains(r#"si-expires="2026-11-27T18:00:00Z""#),
        "{xml}"
    );
    assert!(xml.contains(r#"action="signal-medium""#), "{xml}");
    assert!(
        xml.contains(">New mail from Boss: Q3 report</indication>"),
        "{xml}"
    );
}

#[test]
fn utf8_text_and_plain_hrefs_survive() {
    let mut si = indication("新邮件：季度报告");
    si.href = "pushmail:sync".to_owned();
    let xml = decode(&wbxml(&si));
    assert!(xml.contains("新邮件：季度报告"), "{xml}");
    assert!(xml.contains(r#"href="pushmail:sync""#), "{xml}");
}

#[test]
fn the_binary_sms_parts_reassemble_into_the_push_pdu() {
    let si = indication(&"A long subject line that will not fit ".repeat(6));
    let pdu = push_pdu(&si, 7);
    let parts = segments(&pdu, 9);
    assert!(parts.len() > 1);
    let joined: Vec<u8> = parts.iter().flat_map(|p| p.user_data.clone()).collect();
    assert_eq!(joined, pdu);
    // The WSP header: TID, Push, headers, then the WBXML the decoder reads.
    assert_eq!(&joined[1..3], &[0x06, 0x03]);
    let xml = decode(&joined[6..]);
    assert!(xml.contains("A long subject line"), "{xml}");
}
