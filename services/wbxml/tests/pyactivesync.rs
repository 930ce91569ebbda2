//! Our code pages against pyactivesync's (PyPI), a second table written
//! apart from ours and from libwbxml's: every tag it lists has the same
//! token here. It is the only independent table here for Find (page 25,
//! of 16.1), which libwbxml does not know.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::process::Command;

use pushmail_wbxml::pages::name;

const DUMP: &str = "
import json
from pyactivesync._codepages import CODEPAGES, PAGE_INDEX
print(json.dumps({'pages': PAGE_INDEX, 'tags': CODEPAGES}))
";

fn python() -> String {
    std::env::var("PUSHMAIL_PYTHON")
        .unwrap_or_else(|_| "/var/cache/pushmail/pyvenv/bin/python".to_owned())
}

#[test]
fn pyactivesync_gives_every_tag_it_knows_the_token_we_do() {
    let out = Command::new(python())
        .args(["-c", DUMP])
        .output()
        .expect("pyactivesync's Python (scripts/provision.sh makes it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let number = |value: &serde_json::Value| u8::try_from(value.as_u64().unwrap()).unwrap();
    let mut checked = 0;
    for (namespace, tags) in tables["tags"].as_object().unwrap() {
        let page = number(&tables["pages"][namespace]);
        for (tag_name, token) in tags.as_object().unwrap() {
            let token = number(token);
            // Case apart (pyactivesync writes `MIME` where MS-ASWBXML
            // writes `Mime`).
            assert!(
                name(page, token).is_some_and(|ours| ours.eq_ignore_ascii_case(tag_name)),
                "{namespace} (page {page}) token {token:#04x}: we say {:?}, pyactivesync {tag_name}",
                name(page, token)
            );
            checked += 1;
        }
    }
    assert_eq!(tables["pages"]["Find"], 25);
    assert!(checked > 250, "{checked}");
}
