//! Charset labels as mail carries them → an `encoding_rs` encoding: the
//! WHATWG Encoding Standard's labels, then the aliases mail libraries emit
//! that the standard leaves out (`cp936`, `x-euc-cn`, `ms950`, `big-5`,
//! `shift-jis`, `utf8`, `x-mac-chinesesimp`, …), spelled with any case,
//! quotes, `-`/`_`/`.` or none.

use encoding_rs::{
    BIG5, EUC_JP, EUC_KR, Encoding, GB18030, GBK, ISO_2022_JP, MACINTOSH, REPLACEMENT, SHIFT_JIS,
    UTF_8, X_MAC_CYRILLIC, X_USER_DEFINED,
};

/// Longer than any real label: such a "label" is not one, and is not
/// worth normalising.
const MAX_LABEL: usize = 64;

/// Aliases by their compact form (lowercase ASCII letters and digits
/// only), for labels the WHATWG list lacks or spells only one way. `None`
/// marks labels that say "unknown": the bytes are detected.
const ALIASES: &[(&str, Option<&Encoding>)] = &[
    // Every mail client reads GB2312 and GBK labels as GB18030, their
    // superset: senders label GBK (and GB18030) text `gb2312`.
    ("gb2312", Some(GB18030)),
    // Python's email package writes `eucgb2312_cn` and `big5_tw`.
    ("eucgb2312cn", Some(GB18030)),
    ("gb231280", Some(GB18030)),
    ("gb23121980", Some(GB18030)),
    ("xgb2312", Some(GB18030)),
    ("cngb", Some(GB18030)),
    ("gbk", Some(GB18030)),
    ("xgbk", Some(GB18030)),
    ("cp936", Some(GB18030)),
    ("ms936", Some(GB18030)),
    ("windows936", Some(GB18030)),
    ("euccn", Some(GB18030)),
    ("xeuccn", Some(GB18030)),
    ("chinese", Some(GB18030)),
    ("gb18030", Some(GB18030)),
    ("gb180302000", Some(GB18030)),
    ("gb180302005", Some(GB18030)),
    ("gb180302022", Some(GB18030)),
    ("xmacchinesesimp", Some(GB18030)),
    // encoding_rs's Big5 is Big5-HKSCS, what Hong Kong senders mean.
    ("big5", Some(BIG5)),
    ("big5tw", Some(BIG5)),
    ("xbig5", Some(BIG5)),
    ("xxbig5", Some(BIG5)),
    ("cnbig5", Some(BIG5)),
    ("csbig5", Some(BIG5)),
    ("big5hkscs", Some(BIG5)),
    ("big5hkscs2004", Some(BIG5)),
    ("big5hkscs2008", Some(BIG5)),
    ("hkscs", Some(BIG5)),
    ("cp950", Some(BIG5)),
    ("ms950", Some(BIG5)),
    ("windows950", Some(BIG5)),
    ("xmacchinesetrad", Some(BIG5)),
    ("ksc56011987", Some(EUC_KR)),
    ("ksc56011989", Some(EUC_KR)),
    ("ksc5601", Some(EUC_KR)),
    ("euckr", Some(EUC_KR)),
    ("xeuckr", Some(EUC_KR)),
    ("cp949", Some(EUC_KR)),
    ("ms949", Some(EUC_KR)),
    ("windows949", Some(EUC_KR)),
    ("uhc", Some(EUC_KR)),
    ("xmackorean", Some(EUC_KR)),
    ("shiftjis", Some(SHIFT_JIS)),
    ("sjis", Some(SHIFT_JIS)),
    ("xsjis", Some(SHIFT_JIS)),
    ("cp932", Some(SHIFT_JIS)),
    ("ms932", Some(SHIFT_JIS)),
    ("windows932", Some(SHIFT_JIS)),
    ("windows31j", Some(SHIFT_JIS)),
    ("mskanji", Some(SHIFT_JIS)),
    ("xmacjapanese", Some(SHIFT_JIS)),
    ("eucjp", Some(EUC_JP)),
    ("xeucjp", Some(EUC_JP)),
    ("ujis", Some(EUC_JP)),
    // ISO-2022-JP-2 and -3 are supersets whose common text is plain
    // ISO-2022-JP.
    ("iso2022jp", Some(ISO_2022_JP)),
    ("iso2022jp2", Some(ISO_2022_JP)),
    ("iso2022jp3", Some(ISO_2022_JP)),
    ("jis", Some(ISO_2022_JP)),
    ("utf8", Some(UTF_8)),
    ("uft8", Some(UTF_8)),
    ("utf", Some(UTF_8)),
    ("unicode11utf8", Some(UTF_8)),
    ("unicode20utf8", Some(UTF_8)),
    ("xunicode20utf8", Some(UTF_8)),
    ("xmacroman", Some(MACINTOSH)),
    ("macroman", Some(MACINTOSH)),
    ("xmaccyrillic", Some(X_MAC_CYRILLIC)),
    ("xmacukrainian", Some(X_MAC_CYRILLIC)),
    ("xunknown", None),
    ("unknown", None),
    ("unknown8bit", None),
    ("xunknown8bit", None),
    ("default", None),
    ("none", None),
    ("8bit", None),
];

/// The encoding `label` names, or `None` when it names none we can decode
/// (unknown, `x-unknown`, garbage): the caller then detects. GB2312 and
/// GBK resolve to GB18030; labels `encoding_rs` would map to its
/// "replacement" or "x-user-defined" encodings resolve to `None`, since
/// neither recovers text.
pub fn resolve(label: &str) -> Option<&'static Encoding> {
    let label = clean(label)?;
    let compact: String = label
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let found = match ALIASES.iter().find(|(alias, _)| *alias == compact) {
        Some((_, encoding)) => *encoding,
        None => Encoding::for_label(label.as_bytes()).or_else(|| by_pattern(&compact)),
    }?;
    if found == GBK {
        return Some(GB18030);
    }
    (found != REPLACEMENT && found != X_USER_DEFINED).then_some(found)
}

/// The label without what mail wraps it in: whitespace, quotes, a
/// trailing `;`, and an RFC 2231 language (`utf-8*en`). `None` when what
/// is left cannot be a label (empty, over-long, not printable ASCII).
fn clean(label: &str) -> Option<&str> {
    let label = label
        .trim()
        .trim_end_matches(';')
        .trim_matches(['"', '\''])
        .trim();
    let label = label.split('*').next().unwrap_or_default();
    let printable = label.bytes().all(|b| b.is_ascii_graphic());
    (!label.is_empty() && label.len() <= MAX_LABEL && printable).then_some(label)
}

/// Single-byte families whose numbers senders spell every way:
/// `iso8859_15`, `iso_8859-2`, `cp1251`, `win1250`.
fn by_pattern(compact: &str) -> Option<&'static Encoding> {
    let number = |prefix: &str| {
        compact
            .strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    };
    if let Some(n) = number("iso8859") {
        return Encoding::for_label(format!("iso-8859-{n}").as_bytes());
    }
    ["windows", "win", "cp", "xcp", "ms"]
        .iter()
        .find_map(|prefix| number(prefix))
        .filter(|n| n.starts_with("125") || *n == "874" || *n == "866")
        .and_then(|n| Encoding::for_label(format!("windows-{n}").as_bytes()))
        .or_else(|| {
            number("cp")
                .filter(|n| *n == "866")
                .and_then(|_| Encoding::for_label(b"ibm866"))
        })
}

#[cfg(test)]
mod tests {
    use encoding_rs::{IBM866, ISO_8859_2, ISO_8859_15, WINDOWS_874, WINDOWS_1251, WINDOWS_1252};

    use super::*;

    #[test]
    fn mail_library_aliases_resolve() {
        let table: &[(&str, Option<&Encoding>)] = &[
            ("gb2312", Some(GB18030)),
            ("GB2312", Some(GB18030)),
            ("\"gb2312\"", Some(GB18030)),
            ("gb2312;", Some(GB18030)),
            ("gb_2312", Some(GB18030)),
            ("gb_2312-80", Some(GB18030)),
            ("eucgb2312_cn", Some(GB18030)),
            ("GBK", Some(GB18030)),
            ("x-gbk", Some(GB18030)),
            ("cp936", Some(GB18030)),
            ("MS936", Some(GB18030)),
            ("windows-936", Some(GB18030)),
            ("chinese", Some(GB18030)),
            ("x-euc-cn", Some(GB18030)),
            ("euc_cn", Some(GB18030)),
            ("EUC-CN", Some(GB18030)),
            ("gb18030", Some(GB18030)),
            ("GB18030-2005", Some(GB18030)),
            ("csGB2312", Some(GB18030)),
            ("iso-ir-58", Some(GB18030)),
            ("x-mac-chinesesimp", Some(GB18030)),
            ("big5", Some(BIG5)),
            ("Big-5", Some(BIG5)),
            ("big_5", Some(BIG5)),
            ("big5_tw", Some(BIG5)),
            ("big5-hkscs", Some(BIG5)),
            ("BIG5_HKSCS", Some(BIG5)),
            ("x-big5", Some(BIG5)),
            ("x-x-big5", Some(BIG5)),
            ("cn-big5", Some(BIG5)),
            ("csbig5", Some(BIG5)),
            ("cp950", Some(BIG5)),
            ("ms950", Some(BIG5)),
            ("x-mac-chinesetrad", Some(BIG5)),
            ("ks_c_5601-1987", Some(EUC_KR)),
            ("ks_c_5601_1987", Some(EUC_KR)),
            ("KS_C_5601", Some(EUC_KR)),
            ("ksc5601", Some(EUC_KR)),
            ("ks-c-5601-1989", Some(EUC_KR)),
            ("cp949", Some(EUC_KR)),
            ("euc_kr", Some(EUC_KR)),
            ("x-sjis", Some(SHIFT_JIS)),
            ("shift-jis", Some(SHIFT_JIS)),
            ("Shift_JIS", Some(SHIFT_JIS)),
            ("cp932", Some(SHIFT_JIS)),
            ("windows-31j", Some(SHIFT_JIS)),
            ("x-mac-japanese", Some(SHIFT_JIS)),
            ("euc_jp", Some(EUC_JP)),
            ("ISO-2022-JP", Some(ISO_2022_JP)),
            ("iso-2022-jp-2", Some(ISO_2022_JP)),
            ("utf8", Some(UTF_8)),
            ("UTF_8", Some(UTF_8)),
            ("utf-8*en", Some(UTF_8)),
            (" utf-8 ", Some(UTF_8)),
            ("x-mac-roman", Some(MACINTOSH)),
            ("x-mac-cyrillic", Some(X_MAC_CYRILLIC)),
            ("us-ascii", Some(WINDOWS_1252)),
            ("iso-8859-1", Some(WINDOWS_1252)),
            ("ISO8859_15", Some(ISO_8859_15)),
            ("iso_8859_2", Some(ISO_8859_2)),
            ("cp1251", Some(WINDOWS_1251)),
            ("win1251", Some(WINDOWS_1251)),
            ("cp874", Some(WINDOWS_874)),
            ("cp866", Some(IBM866)),
        ];
        for (label, expected) in table {
            assert_eq!(resolve(label), *expected, "{label:?}");
        }
    }

    #[test]
    fn labels_that_name_nothing_decodable_resolve_to_none() {
        let long = "x".repeat(MAX_LABEL + 1);
        let long_gb = format!("gb2312{}", " ".repeat(200));
        for label in [
            "",
            " ",
            "\"\"",
            "x-unknown",
            "unknown-8bit",
            "X-UNKNOWN",
            "default",
            "no-such-charset",
            "utf-7",
            "iso-2022-kr",
            "hz-gb-2312",
            "x-user-defined",
            "x-mac-greek",
            "gb\u{7}2312",
            "gb2312\r\nX-Injected: 1",
            "gb2312\u{0}",
            "日本語",
            "cp12345",
            "iso8859-",
            long.as_str(),
        ] {
            assert_eq!(resolve(label), None, "{label:?}");
        }
        assert_eq!(
            resolve(&long_gb),
            Some(GB18030),
            "trailing blanks are trimmed"
        );
    }
}
