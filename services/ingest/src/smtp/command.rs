//! SMTP/LMTP command lines (RFC 5321, RFC 2033), parsed without I/O.
//!
//! The parsing is smtp-proto's (Stalwart's SMTP/LMTP parser), a maintained
//! parser rather than one of our own. This file maps its requests and
//! errors onto the commands our session implements, and keeps the rules
//! that are ours: which parameters we take, no arguments where none are
//! allowed, no empty recipient, UTF-8 only.
//!
//! Known limits of smtp-proto 0.2.5, accepted for now: a mailbox whose
//! domain is an address literal (`user@[192.0.2.1]`) is refused as a
//! syntax error, and a `SIZE=` of more than 20 digits is misread (the
//! message size limit during DATA still holds).

use std::borrow::Cow;

use smtp_proto::response::generate::BitToString as _;
use smtp_proto::{Error, MailFrom, RcptTo, Request};

/// A client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Command {
    /// `HELO` (SMTP only).
    Helo(String),
    /// `EHLO` (SMTP only).
    Ehlo(String),
    /// `LHLO` (LMTP only).
    Lhlo(String),
    /// `MAIL FROM:<path>` with the declared `SIZE=`, if any.
    Mail {
        /// Reverse path (empty for bounces).
        from: String,
        /// Declared size (RFC 1870).
        size: Option<u64>,
    },
    /// `RCPT TO:<path>`.
    Rcpt(String),
    /// `DATA`.
    Data,
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH <mechanism> [initial response]` (RFC 4954).
    Auth {
        /// The SASL mechanism, uppercased (smtp-proto's name for one it
        /// knows, else as the client wrote it).
        mechanism: String,
        /// The initial response, still base64 (`=` is an empty one).
        initial: Option<String>,
    },
    /// `VRFY` (answered without revealing anything).
    Vrfy,
    /// `HELP`.
    Help,
}

/// Why a line is not a command we take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CommandError {
    /// Unknown verb (500).
    #[error("command not recognized")]
    Unknown,
    /// Known verb, bad arguments (501).
    #[error("{0}")]
    Syntax(&'static str),
    /// A parameter we do not implement (555).
    #[error("parameter not supported")]
    Parameter,
}

/// The `MAIL` parameters we take besides `SIZE`: `BODY` (of any type
/// smtp-proto knows) and `SMTPUTF8`, nothing to do for a final receiver.
const MAIL_FLAGS: u64 = smtp_proto::MAIL_BODY_7BIT
    | smtp_proto::MAIL_BODY_8BITMIME
    | smtp_proto::MAIL_BODY_BINARYMIME
    | smtp_proto::MAIL_SMTPUTF8;

/// Parses one command line as read, with its CRLF (or bare LF): smtp-proto
/// parses up to the LF, so a line without one is given a CRLF.
pub(super) fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let text = std::str::from_utf8(line).map_err(|_| CommandError::Syntax("not UTF-8"))?;
    let content = text.strip_suffix('\n').unwrap_or(text);
    // smtp-proto skips a CR wherever it is ("DA\rTA" would be DATA) and stops
    // at the first LF; RFC 5321 (§2.3.8) has them only as the line ending.
    if content
        .strip_suffix('\r')
        .unwrap_or(content)
        .contains(['\r', '\n'])
    {
        return Err(CommandError::Syntax("CR and LF only end a line"));
    }
    let terminated = if text.len() == content.len() {
        Cow::Owned([line, b"\r\n"].concat())
    } else {
        Cow::Borrowed(line)
    };
    let request = match Request::parse(&mut terminated.iter()) {
        Ok(request) => request,
        Err(error) => return refused(error),
    };
    // smtp-proto reads the arguments it needs and skips any others; where
    // RFC 5321 allows none, or only one, more are refused here.
    let words = || text.split_ascii_whitespace().count();
    let no_args = |command: Command| {
        if words() == 1 {
            Ok(command)
        } else {
            Err(CommandError::Syntax("no arguments allowed"))
        }
    };
    let domain = |host: Cow<'_, str>| {
        if words() == 2 {
            Ok(host.into_owned())
        } else {
            Err(CommandError::Syntax(
                "a domain or address literal is required",
            ))
        }
    };
    match request {
        Request::Helo { host } => Ok(Command::Helo(domain(host)?)),
        Request::Ehlo { host } => Ok(Command::Ehlo(domain(host)?)),
        Request::Lhlo { host } => Ok(Command::Lhlo(domain(host)?)),
        Request::Mail { from } => mail(from, text),
        Request::Rcpt { to } => rcpt(to, text),
        Request::Data => no_args(Command::Data),
        Request::Rset => no_args(Command::Rset),
        Request::Noop { .. } => Ok(Command::Noop),
        Request::Quit => no_args(Command::Quit),
        Request::StartTls => no_args(Command::StartTls),
        Request::Auth {
            mechanism,
            initial_response,
        } => {
            if words() > 3 {
                return Err(CommandError::Syntax(
                    "AUTH takes a mechanism and one response",
                ));
            }
            // An unknown mechanism (0) still reaches the session, which
            // answers 504 to anything but PLAIN and LOGIN.
            let mechanism = match mechanism.to_mechanism() {
                "" => text
                    .split_ascii_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_ascii_uppercase(),
                known => known.to_owned(),
            };
            let initial = (!initial_response.is_empty()).then(|| initial_response.into_owned());
            Ok(Command::Auth { mechanism, initial })
        }
        Request::Vrfy { .. } => Ok(Command::Vrfy),
        Request::Help { .. } => Ok(Command::Help),
        Request::Bdat { .. }
        | Request::Expn { .. }
        | Request::Etrn { .. }
        | Request::Atrn { .. }
        | Request::Burl { .. } => Err(CommandError::Unknown),
    }
}

/// smtp-proto's error as ours.
fn refused(error: Error) -> Result<Command, CommandError> {
    Err(match error {
        Error::UnknownCommand => CommandError::Unknown,
        // `syntax` is the command's usage ("EHLO domain", …), which starts
        // with its verb.
        Error::SyntaxError { syntax } => match syntax.split(' ').next() {
            // With or without an argument: the answer reveals nothing.
            Some("VRFY") => return Ok(Command::Vrfy),
            Some("BDAT" | "EXPN" | "ETRN" | "ATRN" | "BURL") => CommandError::Unknown,
            _ => CommandError::Syntax(syntax),
        },
        Error::InvalidSenderAddress => {
            CommandError::Syntax("the sender is not a mailbox (local-part@domain)")
        }
        Error::InvalidRecipientAddress => {
            CommandError::Syntax("the recipient is not a mailbox (local-part@domain)")
        }
        // A bad value of a parameter we take is a syntax error; of any
        // other, it is a parameter we do not implement either way.
        Error::InvalidParameter { param: "SIZE" } => CommandError::Syntax("SIZE needs a number"),
        Error::InvalidParameter { param: "BODY" } => CommandError::Syntax("not a BODY type"),
        Error::InvalidParameter { .. } | Error::UnsupportedParameter { .. } => {
            CommandError::Parameter
        }
        // A line always ends in LF here, and the others are about replies.
        Error::NeedsMoreData { .. } | Error::ResponseTooLong | Error::InvalidResponse { .. } => {
            CommandError::Syntax("incomplete command line")
        }
    })
}

fn mail(from: MailFrom<Cow<'_, str>>, line: &str) -> Result<Command, CommandError> {
    let (address, size, flags) = (from.address, from.size, from.flags);
    // Every other field must be as when no parameter is given (so a
    // parameter whose value reads as its absence, MT-PRIORITY=0, passes).
    let others = MailFrom {
        address: Cow::default(),
        flags: flags & !MAIL_FLAGS,
        size: 0,
        ..from
    };
    if others != MailFrom::default() {
        return Err(CommandError::Parameter);
    }
    Ok(Command::Mail {
        from: mailbox(address, line),
        // smtp-proto has 0 for no SIZE; SIZE=0 reads the same and limits
        // nothing. (0.2.5 misreads more than 20 digits; the body's own
        // limit holds whatever SIZE says.)
        size: (size != 0).then(|| u64::try_from(size).unwrap_or(u64::MAX)),
    })
}

fn rcpt(to: RcptTo<Cow<'_, str>>, line: &str) -> Result<Command, CommandError> {
    let path = mailbox(to.address, line);
    if path.is_empty() {
        return Err(CommandError::Syntax("an empty recipient is not allowed"));
    }
    // We take no RCPT parameter: the rest is as when none is given.
    let others = RcptTo {
        address: Cow::default(),
        ..to
    };
    if others != RcptTo::default() {
        return Err(CommandError::Parameter);
    }
    Ok(Command::Rcpt(path))
}

/// The mailbox of a path. smtp-proto gives `<Postmaster>`, the one mailbox
/// RFC 5321 (§4.5.1) allows without a domain, as empty like `<>`; the
/// session gets it as the client wrote it, as any other address.
fn mailbox(address: Cow<'_, str>, line: &str) -> String {
    if address.is_empty()
        && let Some(postmaster) = postmaster(line)
    {
        return postmaster.to_owned();
    }
    address.into_owned()
}

/// `Postmaster` when that is what the line's `<path>` names (after any
/// source route, quoted or not).
fn postmaster(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once('<')?;
    let (path, _) = rest.split_once('>')?;
    let mailbox = path.rsplit_once(':').map_or(path, |(_, mailbox)| mailbox);
    let mailbox = mailbox.trim_matches('"');
    mailbox
        .eq_ignore_ascii_case("postmaster")
        .then_some(mailbox)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts that every line is refused, as `is` expects.
    fn all_refused(lines: &[&[u8]], is: fn(&CommandError) -> bool) {
        for line in lines {
            let got = parse(line);
            assert!(
                got.as_ref().is_err_and(is),
                "{}: {got:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    fn syntax(error: &CommandError) -> bool {
        matches!(error, CommandError::Syntax(_))
    }

    #[test]
    fn commands_parse_case_insensitively_with_their_arguments() {
        assert_eq!(
            parse(b"ehlo mx.example"),
            Ok(Command::Ehlo("mx.example".into()))
        );
        assert_eq!(
            parse(b"MAIL FROM:<a@b.c> SIZE=1234 BODY=8BITMIME"),
            Ok(Command::Mail {
                from: "a@b.c".into(),
                size: Some(1234)
            })
        );
        assert_eq!(
            parse(b"MAIL FROM: <>"),
            Ok(Command::Mail {
                from: String::new(),
                size: None
            })
        );
        assert_eq!(
            parse(b"rcpt to:<@relay.example:u@d.example>"),
            Ok(Command::Rcpt("u@d.example".into()))
        );
        assert_eq!(parse(b"DATA"), Ok(Command::Data));
        assert_eq!(
            parse(b"auth plain AHUAcA=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AHUAcA==".into())
            })
        );
        assert_eq!(
            parse(b"AUTH LOGIN"),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: None
            })
        );
        assert!(matches!(parse(b"AUTH"), Err(CommandError::Syntax(_))));
        assert!(matches!(
            parse(b"AUTH PLAIN a b"),
            Err(CommandError::Syntax(_))
        ));
        assert_eq!(parse(b"NOOP anything"), Ok(Command::Noop));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        assert_eq!(parse(b"XYZZY"), Err(CommandError::Unknown));
        assert_eq!(parse(b""), Err(CommandError::Unknown));
        assert!(matches!(parse(b"EHLO"), Err(CommandError::Syntax(_))));
        assert!(matches!(
            parse(b"MAIL FROM:a@b"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            parse(b"MAIL FROM:<a@b> SIZE=lots"),
            Err(CommandError::Syntax(_))
        ));
        assert_eq!(
            parse(b"MAIL FROM:<a@b> AUTH=<>"),
            Err(CommandError::Parameter)
        );
        assert!(matches!(parse(b"RCPT TO:<>"), Err(CommandError::Syntax(_))));
        assert!(matches!(parse(b"DATA now"), Err(CommandError::Syntax(_))));
        assert!(matches!(parse(b"MAIL \xff"), Err(CommandError::Syntax(_))));
        assert!(matches!(
            parse("MAIL 中文:<a@b>".as_bytes()),
            Err(CommandError::Syntax(_))
        ));
    }

    #[test]
    fn a_line_parses_with_or_without_its_ending_and_only_there() {
        for line in [
            &b"EHLO mx.example\r\n"[..],
            b"EHLO mx.example\n",
            b"EHLO mx.example",
        ] {
            assert_eq!(parse(line), Ok(Command::Ehlo("mx.example".into())));
        }
        // smtp-proto would skip the CR and take DATA, or stop at the LF;
        // and it would take the U+FFFD it reads for a byte that is not UTF-8.
        all_refused(
            &[
                b"DA\rTA\r\n",
                b"NOOP\nDATA\r\n",
                b"RCPT TO:<\xff@d.example>\r\n",
            ],
            syntax,
        );
    }

    #[test]
    fn commands_take_only_the_arguments_they_have() {
        // RFC 5321 has one SP before the domain: smtp-proto reads the
        // domain after two as empty.
        all_refused(
            &[
                b"RSET now",
                b"QUIT now",
                b"STARTTLS please",
                b"EHLO a b",
                b"LHLO a\tb",
                b"EHLO  mx.example",
            ],
            syntax,
        );
        assert_eq!(parse(b"QUIT  \r\n"), Ok(Command::Quit));
        assert_eq!(parse(b"VRFY"), Ok(Command::Vrfy));
        assert_eq!(parse(b"VRFY \"\""), Ok(Command::Vrfy));
        assert_eq!(parse(b"vrfy alice"), Ok(Command::Vrfy));
        assert_eq!(parse(b"HELP"), Ok(Command::Help));
        assert_eq!(parse(b"HELP MAIL"), Ok(Command::Help));
        assert_eq!(parse(b"NOOP"), Ok(Command::Noop));
        assert_eq!(
            parse(b"HELO [192.0.2.1]"),
            Ok(Command::Helo("[192.0.2.1]".into()))
        );
    }

    #[test]
    fn verbs_we_do_not_implement_are_unknown() {
        all_refused(
            &[
                b"EXPN staff",
                b"EXPN",
                b"BDAT 10 LAST",
                b"BDAT x",
                b"ETRN example.com",
                b"ATRN",
                b"BURL imap://x LAST",
            ],
            |error| *error == CommandError::Unknown,
        );
    }

    #[test]
    fn auth_names_the_mechanism_the_session_decides_on() {
        assert_eq!(
            parse(b"AUTH login dXNlcg=="),
            Ok(Command::Auth {
                mechanism: "LOGIN".into(),
                initial: Some("dXNlcg==".into())
            })
        );
        assert_eq!(
            parse(b"AUTH PLAIN ="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("=".into())
            }),
            "an empty initial response"
        );
        assert_eq!(
            parse(b"AUTH cram-md5"),
            Ok(Command::Auth {
                mechanism: "CRAM-MD5".into(),
                initial: None
            })
        );
        // Unknown to smtp-proto too: the session answers 504.
        assert_eq!(
            parse(b"AUTH x-unheard-of abc"),
            Ok(Command::Auth {
                mechanism: "X-UNHEARD-OF".into(),
                initial: Some("abc".into())
            })
        );
    }

    #[test]
    fn mail_takes_size_body_and_smtputf8_only() {
        assert_eq!(
            parse("MAIL FROM:<é@b.example> SMTPUTF8 BODY=7BIT".as_bytes()),
            Ok(Command::Mail {
                from: "é@b.example".into(),
                size: None
            })
        );
        all_refused(
            &[
                b"MAIL FROM:<a@b> SIZE=18446744073709551616",
                b"MAIL FROM:<a@b> BODY=WHAT",
            ],
            syntax,
        );
        all_refused(
            &[
                b"MAIL FROM:<a@b> RET=FULL",
                b"MAIL FROM:<a@b> RET=BOGUS",
                b"MAIL FROM:<a@b> ENVID=x",
                b"MAIL FROM:<a@b> REQUIRETLS",
                b"MAIL FROM:<a@b> SMTPUTF8=yes",
                b"MAIL FROM:<a@b> XFORWARD=1",
                b"RCPT TO:<u@d.example> NOTIFY=NEVER",
                b"RCPT TO:<u@d.example> NOTIFY=BOGUS",
                b"RCPT TO:<u@d.example> ORCPT=rfc822;u@d.example",
                b"RCPT TO:<u@d.example> X=1",
            ],
            |error| *error == CommandError::Parameter,
        );
    }

    #[test]
    fn paths_must_be_mailboxes() {
        let long_path = format!("RCPT TO:<{}@d.example>", "a".repeat(250));
        let long_domain = format!("EHLO {}", "a".repeat(256));
        all_refused(
            &[
                b"MAIL FROM:<a>",
                b"MAIL FROM:<.a@b.example>",
                b"RCPT TO:<not-an-address>",
                b"RCPT TO:<a..b@d.example>",
                b"RCPT TO:<a@@d.example>",
                long_path.as_bytes(),
                long_domain.as_bytes(),
                // smtp-proto 0.2.5 takes no address literal as a mailbox's
                // domain, although RFC 5321 (§4.1.2) allows one.
                b"MAIL FROM:<u@[192.0.2.1]>",
                b"RCPT TO:<@relay.example:>",
            ],
            syntax,
        );
        // Postmaster needs no domain (RFC 5321 §4.5.1).
        assert_eq!(
            parse(b"RCPT TO:<Postmaster>"),
            Ok(Command::Rcpt("Postmaster".into()))
        );
        assert_eq!(
            parse(b"RCPT TO:<@relay.example:postmaster>"),
            Ok(Command::Rcpt("postmaster".into()))
        );
    }
}
