//! Legacy charsets produced by an independent encoder (glibc's `iconv`,
//! run at test time) come back as the same UTF-8 text: with the right
//! label, with none, and with a wrong one.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::io::Write as _;
use std::process::{Command, Stdio};

use pushmail_transcode::convert::text::to_utf8;

const LIMIT: usize = 1 << 20;

/// `text` in `charset`, by iconv.
fn iconv(text: &str, charset: &str) -> Vec<u8> {
    let mut child = Command::new("iconv")
        .args(["-f", "UTF-8", "-t", charset])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("iconv (libc-bin) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "iconv to {charset} failed");
    out.stdout
}

const SIMPLIFIED: &str = "各位同事：本周五下午三点在第二会议室召开季度总结会议，请提前准备好本部门的工作报告和下季度计划。如有问题请联系行政部。";
const TRADITIONAL: &str = "各位同仁：本週五下午三點在第二會議室召開季度總結會議，請提前準備好本部門的工作報告與下季度計劃。如有問題請聯繫行政部。";
const JAPANESE: &str = "お疲れ様です。金曜日の午後三時から第二会議室で四半期の報告会を行います。資料の準備をお願いいたします。";
const FRENCH: &str = "Bonjour à tous, la réunion trimestrielle aura lieu vendredi à quinze heures. Merci de préparer vos rapports détaillés.";

#[test]
fn declared_charsets_decode_exactly() {
    for (text, charset, label) in [
        (SIMPLIFIED, "GB2312", "gb2312"),
        (SIMPLIFIED, "GBK", "GBK"),
        (SIMPLIFIED, "GB18030", "gb18030"),
        (TRADITIONAL, "BIG5", "big5"),
        (JAPANESE, "SHIFT_JIS", "shift_jis"),
        (JAPANESE, "ISO-2022-JP", "iso-2022-jp"),
        (FRENCH, "ISO-8859-1", "iso-8859-1"),
    ] {
        let decoded = to_utf8(&iconv(text, charset), Some(label), LIMIT).unwrap();
        assert_eq!(decoded.text, text, "{charset}");
        assert!(
            !decoded.detected && !decoded.replaced,
            "{charset}: {decoded:?}"
        );
    }
}

#[test]
fn missing_and_wrong_labels_are_detected() {
    for (text, charset, expected) in [
        (SIMPLIFIED, "GB18030", "GBK"),
        (TRADITIONAL, "BIG5", "Big5"),
        (JAPANESE, "SHIFT_JIS", "Shift_JIS"),
        (JAPANESE, "EUC-JP", "EUC-JP"),
    ] {
        let bytes = iconv(text, charset);
        let unlabelled = to_utf8(&bytes, None, LIMIT).unwrap();
        assert_eq!(
            (unlabelled.text.as_str(), unlabelled.encoding),
            (text, expected),
            "{charset} without a label"
        );
        assert!(unlabelled.detected);
        // Labelled Latin-1 (a common mislabel: it decodes any bytes).
        let mislabelled = to_utf8(&bytes, Some("iso-8859-1"), LIMIT).unwrap();
        assert_eq!(mislabelled.text, text, "{charset} labelled iso-8859-1");
        // Labelled UTF-8, which the bytes are not.
        let wrong = to_utf8(&bytes, Some("utf-8"), LIMIT).unwrap();
        assert_eq!(wrong.text, text, "{charset} labelled utf-8");
    }
    // GBK text labelled GB2312 (mail clients do this): GB2312 is read as GBK.
    let gbk = iconv("镕", "GBK");
    assert_eq!(to_utf8(&gbk, Some("gb2312"), LIMIT).unwrap().text, "镕");
    // Real Latin-1 labelled so stays Latin-1.
    let french = to_utf8(&iconv(FRENCH, "ISO-8859-1"), Some("iso-8859-1"), LIMIT).unwrap();
    assert_eq!(french.text, FRENCH);
}
