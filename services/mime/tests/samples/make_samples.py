#!/usr/bin/env python3
"""Writes the charset sample mails and their manifest (what a mail client
shows for each): Python's own `email` package for the charsets and labels
it emits, and raw bytes built here for what Outlook, Foxmail, Thunderbird
and broken senders emit (labels Python never writes, raw 8-bit headers,
split RFC 2231 continuations, mislabelled bytes).

The expectations come from the Python strings the mails were made from,
never from pushmail. Rerun after changing a sample:
    python3 services/mime/tests/samples/make_samples.py
"""
import base64
import json
import quopri
import os
import urllib.parse
from email.header import Header
from email.message import EmailMessage
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr

HERE = os.path.dirname(os.path.abspath(__file__))

SIMPLIFIED = "各位同事，附件是第三季度的财务报告，请于周五前审阅。"
# Characters in GBK but not GB2312 (镕, 喆, 珺 are common in names).
GBK_ONLY = "朱镕基和张喆、李珺一起审阅了报告。"
# Characters only GB18030 (four-byte sequences) encodes.
GB18030_ONLY = "欧元符号 € 和扩展汉字 𠀀𠀁 都要显示。"
TRADITIONAL = "明天下午三點在會議室開會，請準時出席並帶上報告。"
# Cantonese characters from the HKSCS extension of Big5.
HKSCS = "佢哋聽日嚟唔嚟開會？啲嘢喺邊度？"
JAPANESE = "明日の会議は午後三時からです。資料を準備してください。"
KOREAN = "내일 오후 세 시에 회의가 있습니다. 자료를 준비해 주세요."

samples = []


def write(name, raw, subject, from_name, snippet, attachments=()):
    with open(os.path.join(HERE, name + ".eml"), "wb") as out:
        out.write(raw)
    samples.append(
        {
            "file": name + ".eml",
            "subject": subject,
            "from_name": from_name,
            "snippet_start": snippet,
            "attachments": list(attachments),
        }
    )


def b_word(charset, text, codec=None):
    data = text.encode(codec or charset) if isinstance(text, str) else text
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?=".encode()


def raw_mail(headers, body, content_type, encoding="base64"):
    """A single-part mail from raw header lines and body bytes."""
    if encoding == "base64":
        body = base64.encodebytes(body)
    lines = headers + [
        b"MIME-Version: 1.0",
        b"Content-Type: " + content_type,
        b"Content-Transfer-Encoding: " + encoding.encode(),
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body.replace(b"\n", b"\r\n") + b"\r\n"


def with_attachment(headers, boundary, text_type, text_encoding, text, attachment_headers, data):
    """A multipart/mixed mail from raw lines: a text part, one attachment."""
    return b"\r\n".join(headers + [
        b"MIME-Version: 1.0",
        b"Content-Type: multipart/mixed; boundary=\"" + boundary + b"\"",
        b"",
        b"--" + boundary,
        b"Content-Type: " + text_type,
        b"Content-Transfer-Encoding: " + text_encoding,
        b"",
        base64.b64encode(text) if text_encoding == b"base64" else text,
        b"--" + boundary,
    ] + attachment_headers + [
        b"Content-Transfer-Encoding: base64",
        b"",
        base64.b64encode(data),
        b"--" + boundary + b"--",
        b"",
    ])


def python_legacy(name, charset, subject, sender, text, attachment):
    """What Python's compat32 API writes for a legacy charset: encoded-word
    headers, a base64 body, an RFC 2231 file name in the same charset."""
    msg = MIMEMultipart(boundary=f"=_{name}")
    msg["Subject"] = Header(subject, charset)
    msg["From"] = formataddr((sender, "sender@example.cn"), charset)
    msg["To"] = "reader@example.cn"
    msg["Message-ID"] = f"<{name}@example.cn>"
    msg.attach(MIMEText(text, "plain", charset))
    part = MIMEApplication(b"%PDF-1.4 not really", "pdf")
    part.add_header("Content-Disposition", "attachment", filename=(charset, "", attachment))
    msg.attach(part)
    write(name, msg.as_bytes(), subject, sender, text[:12], [attachment])


def python_samples():
    python_legacy("py-gb2312", "gb2312", "季度报告：请审阅", "张伟", SIMPLIFIED, "财务报告.pdf")
    python_legacy("py-gbk", "gbk", "关于朱镕基的报告", "张喆", GBK_ONLY, "珺的报告.pdf")
    python_legacy("py-gb18030", "gb18030", "发票 € 𠀀", "王𠀀", GB18030_ONLY, "发票€.pdf")
    python_legacy("py-big5", "big5", "會議通知", "陳大文", TRADITIONAL, "會議記錄.pdf")
    python_legacy("py-iso-2022-jp", "iso-2022-jp", "会議のお知らせ", "山田太郎", JAPANESE, "資料.pdf")
    python_legacy("py-euc-kr", "euc-kr", "회의 안내", "김철수", KOREAN, "자료.pdf")

    msg = EmailMessage()
    msg["Subject"] = "会议纪要：第三季度"
    msg["From"] = formataddr(("李娜", "lina@example.cn"))
    msg["To"] = "reader@example.cn"
    msg.set_content(SIMPLIFIED)
    msg.add_attachment(b"xls", maintype="application", subtype="vnd.ms-excel",
                       filename="第三季度预算表.xls")
    msg.set_boundary("=_py-utf-8")
    write("py-utf-8", msg.as_bytes(), "会议纪要：第三季度", "李娜", SIMPLIFIED[:12],
          ["第三季度预算表.xls"])

    # An HTML-only body in GB2312 and a file name as an encoded word in
    # quotes (what Python writes for a Header-valued parameter).
    msg = MIMEMultipart(boundary="=_py-gb2312-html")
    msg["Subject"] = Header("网页版通知", "gb2312")
    msg["From"] = formataddr(("系统管理员", "admin@example.cn"), "gb2312")
    html = f"<html><head><style>p{{color:red}}</style></head><body><p>{SIMPLIFIED}</p></body></html>"
    msg.attach(MIMEText(html, "html", "gb2312"))
    part = MIMEApplication(b"doc", "msword")
    name = Header("通知.doc", "gb2312").encode()
    part.add_header("Content-Disposition", "attachment", filename=name)
    msg.attach(part)
    write("py-gb2312-html", msg.as_bytes(), "网页版通知", "系统管理员", SIMPLIFIED[:12], ["通知.doc"])


def outlook_and_foxmail_samples():
    # Outlook labels Korean ks_c_5601-1987, quoted-printable body.
    body = quopri.encodestring(KOREAN.encode("cp949"))
    write("outlook-ks_c_5601-1987", raw_mail(
        [b"Subject: " + b_word("ks_c_5601-1987", "회의 안내", "cp949"),
         b"From: " + b_word("ks_c_5601-1987", "김철수", "cp949") + b" <kim@example.kr>"],
        body, b"text/plain; charset=\"ks_c_5601-1987\"", "quoted-printable"),
        "회의 안내", "김철수", KOREAN[:10])

    # Outlook labels GBK text gb2312, and puts the file name in quotes as
    # an encoded word.
    name = b_word("gb2312", "珺的报告.doc", "gbk")
    raw = with_attachment(
        [b"Subject: " + b_word("gb2312", "关于朱镕基的报告", "gbk"),
         b"From: \"" + b_word("gb2312", "张喆", "gbk") + b"\" <zhe@example.cn>"],
        b"----=_NextPart_000", b"text/plain; charset=\"gb2312\"", b"base64", GBK_ONLY.encode("gbk"),
        [b"Content-Type: application/msword; name=\"" + name + b"\"",
         b"Content-Disposition: attachment; filename=\"" + name + b"\""],
        b"doc")
    write("outlook-gb2312-gbk-bytes", raw, "关于朱镕基的报告", "张喆", GBK_ONLY[:12], ["珺的报告.doc"])

    # Hong Kong Outlook: HKSCS characters under a plain big5 label.
    write("outlook-big5-hkscs", raw_mail(
        [b"Subject: " + b_word("big5", "聽日開會", "big5hkscs"),
         b"From: " + b_word("big5", "陳啲", "big5hkscs") + b" <chan@example.hk>"],
        HKSCS.encode("big5hkscs"), b"text/plain; charset=big5"),
        "聽日開會", "陳啲", HKSCS[:10])

    # Foxmail and old Chinese MUAs: raw GBK headers, no encoded words,
    # raw file name in quotes, 8bit body.
    name = "财务报告终稿.xls".encode("gbk")
    raw = with_attachment(
        [b"Subject: " + "第三季度财务报告（终稿）".encode("gbk"),
         b"From: \"" + "刘洋".encode("gbk") + b"\" <liuyang@example.cn>"],
        b"=====001_Dragon", b"text/plain; charset=\"GB2312\"", b"8bit", SIMPLIFIED.encode("gbk"),
        [b"Content-Type: application/octet-stream; name=\"" + name + b"\"",
         b"Content-Disposition: attachment; filename=\"" + name + b"\""],
        b"xls")
    write("foxmail-raw-gbk", raw, "第三季度财务报告（终稿）", "刘洋", SIMPLIFIED[:12], ["财务报告终稿.xls"])


def thunderbird_sample():
    # Thunderbird folds a long subject into several UTF-8 words; some
    # senders cut a character between two words. File names go out as
    # RFC 2231 continuations, here cut inside a character too.
    subject = "第三季度财务报告请审阅"
    data = subject.encode()
    words = [b_word("UTF-8", data[:8]), b_word("UTF-8", data[8:20]), b_word("UTF-8", data[20:])]
    name = "第三季度预算表格最终版本.xlsx".encode()
    pieces = [urllib.parse.quote_from_bytes(name[:10]), urllib.parse.quote_from_bytes(name[10:])]
    raw = with_attachment(
        [b"Subject: " + words[0] + b"\r\n " + words[1] + b"\r\n " + words[2],
         b"From: =?UTF-8?Q?=E5=88=98_=E6=B4=8B?= <liu@example.cn>"],
        b"------------tb", b"text/plain; charset=UTF-8; format=flowed", b"8bit", SIMPLIFIED.encode(),
        [b"Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet;",
         b" name*0*=UTF-8''" + pieces[0].encode() + b";",
         b" name*1*=" + pieces[1].encode(),
         b"Content-Disposition: attachment;",
         b" filename*0*=UTF-8''" + pieces[0].encode() + b";",
         b" filename*1*=" + pieces[1].encode()],
        b"xlsx")
    write("thunderbird-utf-8-split", raw, subject, "刘 洋", SIMPLIFIED[:12],
          ["第三季度预算表格最终版本.xlsx"])


def labelled(name, label, codec, subject, sender, text, filename=None):
    """One sample per label: subject, sender and body all under `label`,
    the bytes in `codec`; an RFC 2231 file name too when given."""
    parts = [
        b"Subject: " + b_word(label, subject.encode(codec)),
        b"From: " + b_word(label, sender.encode(codec)) + b" <s@example.com>",
        b"MIME-Version: 1.0",
    ]
    body = base64.encodebytes(text.encode(codec)).replace(b"\n", b"\r\n")
    if filename is None:
        parts += [
            b"Content-Type: text/plain; charset=\"" + label.encode() + b"\"",
            b"Content-Transfer-Encoding: base64",
            b"",
            body,
        ]
    else:
        quoted = urllib.parse.quote_from_bytes(filename.encode(codec)).encode()
        parts += [
            b"Content-Type: multipart/mixed; boundary=b",
            b"",
            b"--b",
            b"Content-Type: text/plain; charset=" + label.encode(),
            b"Content-Transfer-Encoding: base64",
            b"",
            body,
            b"--b",
            b"Content-Type: application/octet-stream",
            b"Content-Disposition: attachment; filename*=" + label.encode() + b"''" + quoted,
            b"",
            b"data",
            b"--b--",
        ]
    write(name, b"\r\n".join(parts) + b"\r\n", subject, sender, text[:10],
          [filename] if filename else [])


def alias_samples():
    for label in ["x-gbk", "cp936", "ms936", "gb_2312", "chinese", "x-euc-cn", "euc_cn",
                  "GB2312", "windows-936", "x-mac-chinesesimp"]:
        labelled(f"alias-{label}", label, "gbk", "关于朱镕基的报告", "张喆", GBK_ONLY, "报告.doc")
    for label in ["big5-hkscs", "x-big5", "cp950", "ms950", "big-5", "csbig5", "x-x-big5",
                  "BIG5_HKSCS", "x-mac-chinesetrad"]:
        labelled(f"alias-{label}", label, "big5hkscs", "會議通知：聽日開會", "陳大文", TRADITIONAL,
                 "會議記錄.doc")
    for label in ["ks_c_5601-1987", "ks_c_5601", "KS_C_5601-1989", "cp949"]:
        labelled(f"alias-{label}", label, "cp949", "회의 안내", "김철수", KOREAN)
    for label in ["x-sjis", "shift-jis", "cp932", "ms932", "windows-31j"]:
        labelled(f"alias-{label}", label, "cp932", "会議のお知らせ", "山田太郎", JAPANESE)
    for label in ["utf8", "UTF_8", "uft-8"]:
        labelled(f"alias-{label}", label, "utf-8", "会议纪要", "李娜", SIMPLIFIED, "纪要.doc")
    labelled("alias-x-mac-roman", "x-mac-roman", "mac_roman", "Crème brûlée", "Amélie", "Café crème et brûlée.")
    labelled("alias-x-unknown", "x-unknown", "gbk", "第三季度财务报告请审阅", "张伟", SIMPLIFIED)


def mislabelled_samples():
    # GBK (and GB18030) bytes labelled Latin-1 or us-ascii.
    labelled_as = [
        ("mislabelled-gbk-as-iso-8859-1", "iso-8859-1", "gbk", "第三季度财务报告请审阅", "张伟", SIMPLIFIED),
        ("mislabelled-gb18030-as-gb2312", "gb2312", "gb18030", "发票 € 𠀀 请查收", "王𠀀", GB18030_ONLY),
        ("mislabelled-gbk-as-us-ascii", "us-ascii", "gbk", "关于朱镕基的报告请审阅", "张喆", GBK_ONLY),
        ("mislabelled-big5-as-gb2312", "gb2312", "big5", "明天下午三點在會議室開會", "陳大文", TRADITIONAL),
        ("mislabelled-utf-8-as-us-ascii", "us-ascii", "utf-8", "会议纪要", "李娜", SIMPLIFIED),
        ("mislabelled-utf-8-as-gb2312", "gb2312", "utf-8", "会议纪要：第三季度", "李娜", SIMPLIFIED),
        ("mislabelled-gbk-as-utf-8", "utf-8", "gbk", "第三季度财务报告请审阅", "张伟", SIMPLIFIED),
        ("mislabelled-gbk-as-big5", "big5", "gbk", "第三季度财务报告请审阅", "张伟", SIMPLIFIED),
    ]
    for name, label, codec, subject, sender, text in labelled_as:
        labelled(name, label, codec, subject, sender, text)
    # Raw UTF-8 headers (RFC 6532) over a body labelled us-ascii.
    write("mislabelled-raw-utf-8-headers", raw_mail(
        [("Subject: 会议纪要：第三季度").encode(), ("From: 李娜 <lina@example.cn>").encode()],
        SIMPLIFIED.encode(), b"text/plain; charset=us-ascii", "8bit"),
        "会议纪要：第三季度", "李娜", SIMPLIFIED[:12])


def negative_samples():
    # Bytes no charset reads, amid GBK: U+FFFD there and only there.
    broken = "季度".encode("gbk") + b"\xff" + "报告".encode("gbk")
    body = SIMPLIFIED[:6].encode("gbk") + b"\xff\xff" + SIMPLIFIED[6:].encode("gbk")
    write("negative-broken-bytes", raw_mail(
        [b"Subject: " + b_word("gb2312", broken), b"From: =?gb2312?B?1cXOsA==?= <zw@example.cn>"],
        body, b"text/plain; charset=gb2312"),
        "季度\ufffd报告", "张伟", SIMPLIFIED[:6] + "\ufffd" + SIMPLIFIED[6:10])
    # An empty label: the bytes are detected.
    write("negative-empty-label", raw_mail(
        [b"Subject: =??B?" + base64.b64encode("第三季度财务报告请审阅".encode("gbk")) + b"?=",
         b"From: \"\" <nobody@example.cn>"],
        SIMPLIFIED.encode("gbk"), b"text/plain; charset=\"\""),
        "第三季度财务报告请审阅", "", SIMPLIFIED[:12])
    # Hostile labels: control characters, and far too long. The encoded
    # word with a 100-character charset is not an encoded word at all.
    hostile = b"gb\x01k"
    long_label = b"x" * 100
    long_word = b"=?" + long_label + b"?B?" + base64.b64encode(b"abc") + b"?="
    write("negative-hostile-label", raw_mail(
        [b"Subject: " + b_word(hostile.decode(), "第三季度财务报告请审阅".encode("gbk")) + b" " + long_word,
         b"From: " + b_word("gb2312\x7f", "张伟".encode("gbk")) + b" <zw@example.cn>"],
        SIMPLIFIED.encode("gbk"), b"text/plain; charset=\"" + long_label * 3 + b"\x1b[2J\""),
        "第三季度财务报告请审阅 " + long_word.decode(), "张伟", SIMPLIFIED[:12])


def main():
    for old in os.listdir(HERE):
        if old.endswith(".eml"):
            os.remove(os.path.join(HERE, old))
    python_samples()
    outlook_and_foxmail_samples()
    thunderbird_sample()
    alias_samples()
    mislabelled_samples()
    negative_samples()
    with open(os.path.join(HERE, "manifest.json"), "w", encoding="utf-8") as out:
        json.dump(samples, out, ensure_ascii=False, indent=1)
        out.write("\n")


if __name__ == "__main__":
    main()
