use encoding_rs::{MACINTOSH, WINDOWS_1252};

use super::*;

fn encoded(encoding: &'static Encoding, text: &str) -> Vec<u8> {
    let (bytes, _, unmappable) = encoding.encode(text);
    assert!(!unmappable, "{text:?} fits {}", encoding.name());
    bytes.into_owned()
}

const SIMPLIFIED: &str = "各位同事，附件是第三季度的财务报告，请于周五前审阅。";
const TRADITIONAL: &str = "明天下午三點在會議室開會，請準時出席並帶上報告。";
const JAPANESE: &str = "明日の会議は午後三時からです。資料を準備してください。";
const KOREAN: &str = "내일 오후 세 시에 회의가 있습니다. 자료를 준비해 주세요.";

/// (label, bytes, expected text, expected encoding, chosen by)
type Case = (
    Option<&'static str>,
    Vec<u8>,
    String,
    &'static Encoding,
    ChosenBy,
);

#[allow(
    clippy::too_many_lines,
    reason = "one table of cases reads best as one list"
)]
fn cases() -> Vec<Case> {
    use ChosenBy::{Detection, Label};
    let gbk = encoded(GBK, SIMPLIFIED);
    let big5 = encoded(BIG5, TRADITIONAL);
    let owned = |s: &str| s.to_owned();
    vec![
        // Labels that agree with the bytes.
        (
            Some("gb2312"),
            gbk.clone(),
            owned(SIMPLIFIED),
            GB18030,
            Label,
        ),
        (
            Some("x-gbk"),
            gbk.clone(),
            owned(SIMPLIFIED),
            GB18030,
            Label,
        ),
        (
            Some("cp936"),
            gbk.clone(),
            owned(SIMPLIFIED),
            GB18030,
            Label,
        ),
        (Some("big5"), big5.clone(), owned(TRADITIONAL), BIG5, Label),
        (Some("ms950"), big5.clone(), owned(TRADITIONAL), BIG5, Label),
        // HKSCS characters (Cantonese) under a plain `big5` label.
        (
            Some("big5"),
            // Python's big5hkscs codec (encoding_rs encodes no HKSCS).
            b"\xca\x5c\x92\x5d\xc9\x4e\x91\xc1\xa1\x41\x9d\xf8\x9d\xcf\x9d\xf6\xab\xd7\xa1\x43"
                .to_vec(),
            owned("佢哋冇嚟，啲嘢喺度。"),
            BIG5,
            Label,
        ),
        // GB18030-only characters (four-byte sequences) labelled `gb2312`.
        (
            Some("gb2312"),
            encoded(GB18030, "€ 发票 𠀀"),
            owned("€ 发票 𠀀"),
            GB18030,
            Label,
        ),
        (
            Some("cp932"),
            encoded(SHIFT_JIS, JAPANESE),
            owned(JAPANESE),
            SHIFT_JIS,
            Label,
        ),
        (
            Some("iso-2022-jp"),
            encoded(ISO_2022_JP, JAPANESE),
            owned(JAPANESE),
            ISO_2022_JP,
            Label,
        ),
        (
            Some("ks_c_5601-1987"),
            encoded(EUC_KR, KOREAN),
            owned(KOREAN),
            EUC_KR,
            Label,
        ),
        (
            Some("iso-8859-1"),
            b"caf\xe9 cr\xe8me br\xfbl\xe9e".to_vec(),
            owned("café crème brûlée"),
            WINDOWS_1252,
            Label,
        ),
        (
            Some("x-mac-roman"),
            b"\x87\x8e\x92\x97\x9c".to_vec(),
            owned("áéíóú"),
            MACINTOSH,
            Label,
        ),
        // Labels the bytes contradict.
        (
            Some("iso-8859-1"),
            gbk.clone(),
            owned(SIMPLIFIED),
            GBK,
            Detection,
        ),
        (
            Some("us-ascii"),
            gbk.clone(),
            owned(SIMPLIFIED),
            GBK,
            Detection,
        ),
        (
            Some("gb2312"),
            big5.clone(),
            owned(TRADITIONAL),
            BIG5,
            Detection,
        ),
        (Some("big5"), gbk.clone(), owned(SIMPLIFIED), GBK, Detection),
        (
            Some("utf-8"),
            gbk.clone(),
            owned(SIMPLIFIED),
            GBK,
            Detection,
        ),
        (
            Some("us-ascii"),
            SIMPLIFIED.as_bytes().to_vec(),
            owned(SIMPLIFIED),
            UTF_8,
            Detection,
        ),
        (
            Some("gb2312"),
            "会议纪要".as_bytes().to_vec(),
            owned("会议纪要"),
            UTF_8,
            Detection,
        ),
        (
            Some("us-ascii"),
            encoded(ISO_2022_JP, JAPANESE),
            owned(JAPANESE),
            ISO_2022_JP,
            Detection,
        ),
        (
            Some("utf-8"),
            b"caf\xe9".to_vec(),
            owned("café"),
            WINDOWS_1252,
            Detection,
        ),
        // No label, or one that names nothing: detection.
        (None, gbk.clone(), owned(SIMPLIFIED), GBK, Detection),
        (
            Some("x-unknown"),
            big5.clone(),
            owned(TRADITIONAL),
            BIG5,
            Detection,
        ),
        (Some(""), gbk.clone(), owned(SIMPLIFIED), GBK, Detection),
        (
            Some("\u{1b}[31m gb\u{0}2312 \r\n"),
            big5,
            owned(TRADITIONAL),
            BIG5,
            Detection,
        ),
        (
            Some(&*"x".repeat(10_000).leak()),
            gbk,
            owned(SIMPLIFIED),
            GBK,
            Detection,
        ),
    ]
}

#[test]
fn labels_are_trusted_when_the_bytes_agree_and_overridden_when_not() {
    let mut wrong = Vec::new();
    for (label, bytes, text, encoding, chosen_by) in cases() {
        let decoded = decode_detailed(label, &bytes);
        let got = (
            decoded.text.as_ref(),
            decoded.encoding.name(),
            decoded.chosen_by,
            decoded.replaced,
        );
        if got != (text.as_str(), encoding.name(), chosen_by, false) {
            let label: Option<String> = label.map(|l| l.chars().take(20).collect());
            wrong.push(format!("label {label:?}, {}: got {got:?}", encoding.name()));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn broken_bytes_become_replacement_characters_only_where_broken() {
    // A GBK subject with a byte no CJK charset reads: the hanzi around it
    // survive, not Latin-1 mojibake.
    let mut bytes = encoded(GBK, "季度报告");
    bytes.splice(4..4, [0xFF]);
    let decoded = decode_detailed(Some("gb2312"), &bytes);
    assert_eq!(decoded.text, "季度\u{fffd}报告");
    assert!(decoded.replaced);
    // UTF-8 with one broken sequence stays UTF-8, whatever the label.
    let mut bytes = "会议纪要".as_bytes().to_vec();
    bytes.insert(6, 0xFF);
    for label in [None, Some("utf-8"), Some("iso-8859-1")] {
        assert_eq!(decode(label, &bytes), "会议\u{fffd}纪要", "{label:?}");
    }
}

#[test]
fn ascii_is_borrowed_and_a_bom_decides() {
    assert!(matches!(
        decode(Some("gb2312"), b"plain text"),
        Cow::Borrowed("plain text")
    ));
    assert!(matches!(
        decode(None, "已是 UTF-8".as_bytes()),
        Cow::Borrowed("已是 UTF-8")
    ));
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend("hé".encode_utf16().flat_map(u16::to_le_bytes));
    let decoded = decode_detailed(Some("gbk"), &utf16);
    assert_eq!(
        (decoded.text.as_ref(), decoded.encoding, decoded.chosen_by),
        ("hé", UTF_16LE, ChosenBy::Bom)
    );
    let utf16be: Vec<u8> = "你好".encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert_eq!(decode(Some("utf-16be"), &utf16be), "你好");
}

#[test]
fn a_body_that_contradicts_its_label_corrects_the_headers_words() {
    let short = encoded(GBK, "张喆");
    // Alone, four bytes under a Latin-1 label are too few to overrule it.
    assert_ne!(decode(Some("iso-8859-1"), &short), "张喆");
    let body = encoded(GBK, SIMPLIFIED);
    let (context, text) = Context::from_body(Some("iso-8859-1"), &body);
    assert_eq!(text, SIMPLIFIED);
    assert_eq!(context.decode(Some("ISO-8859-1"), &short), "张喆");
    // Raw bytes and unknown labels are read as the body was.
    assert_eq!(context.decode(None, &short), "张喆");
    assert_eq!(context.decode(Some("x-unknown"), &short), "张喆");
    // Another label keeps its own reading.
    assert_eq!(context.decode(Some("utf-8"), "张伟".as_bytes()), "张伟");
    assert_eq!(context.decode(Some("big5"), &encoded(BIG5, "會議")), "會議");
    // A body that agrees with its label changes nothing.
    let (agreeing, _) = Context::from_body(Some("gb2312"), &body);
    assert_eq!(agreeing, Context::with_raw_label("gb18030"));
    let (ascii, _) = Context::from_body(None, b"plain");
    assert_eq!(ascii, Context::default());
}
