//! SMTP/LMTP command lines (RFC 5321, RFC 2033), parsed without I/O.

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
        /// The SASL mechanism, uppercased.
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

/// Parses one line (without its CRLF).
pub(super) fn parse(line: &[u8]) -> Result<Command, CommandError> {
    let line = std::str::from_utf8(line).map_err(|_| CommandError::Syntax("not UTF-8"))?;
    let (verb, rest) = match line.find(' ') {
        Some(at) => (&line[..at], line[at + 1..].trim()),
        None => (line.trim_end(), ""),
    };
    let no_args = |command: Command| {
        if rest.is_empty() {
            Ok(command)
        } else {
            Err(CommandError::Syntax("no arguments allowed"))
        }
    };
    let domain = || {
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            Err(CommandError::Syntax(
                "a domain or address literal is required",
            ))
        } else {
            Ok(rest.to_owned())
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => Ok(Command::Helo(domain()?)),
        "EHLO" => Ok(Command::Ehlo(domain()?)),
        "LHLO" => Ok(Command::Lhlo(domain()?)),
        "MAIL" => mail(rest),
        "RCPT" => {
            let (path, params) = path_after(rest, "TO:")?;
            if path.is_empty() {
                return Err(CommandError::Syntax("an empty recipient is not allowed"));
            }
            if !params.is_empty() {
                return Err(CommandError::Parameter);
            }
            Ok(Command::Rcpt(path))
        }
        "DATA" => no_args(Command::Data),
        "RSET" => no_args(Command::Rset),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => no_args(Command::Quit),
        "STARTTLS" => no_args(Command::StartTls),
        "AUTH" => {
            let mut words = rest.split_ascii_whitespace();
            let mechanism = words
                .next()
                .ok_or(CommandError::Syntax("a SASL mechanism is required"))?
                .to_ascii_uppercase();
            let initial = words.next().map(str::to_owned);
            if words.next().is_some() {
                return Err(CommandError::Syntax(
                    "AUTH takes a mechanism and one response",
                ));
            }
            Ok(Command::Auth { mechanism, initial })
        }
        "VRFY" => Ok(Command::Vrfy),
        "HELP" => Ok(Command::Help),
        _ => Err(CommandError::Unknown),
    }
}

fn mail(rest: &str) -> Result<Command, CommandError> {
    let (from, params) = path_after(rest, "FROM:")?;
    let mut size = None;
    for param in params.split_ascii_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        match key.to_ascii_uppercase().as_str() {
            "SIZE" => {
                size = Some(
                    value
                        .parse()
                        .map_err(|_| CommandError::Syntax("SIZE needs a number"))?,
                );
            }
            // Advertised; nothing to do for a final receiver.
            "BODY" | "SMTPUTF8" => {}
            _ => return Err(CommandError::Parameter),
        }
    }
    Ok(Command::Mail { from, size })
}

/// `TO:<path> params` → (path without brackets, params).
fn path_after<'a>(rest: &'a str, keyword: &str) -> Result<(String, &'a str), CommandError> {
    let syntax = CommandError::Syntax("expected <path>");
    if !rest
        .get(..keyword.len())
        .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
    {
        return Err(syntax);
    }
    let rest = rest[keyword.len()..].trim_start();
    let inner = rest.strip_prefix('<').ok_or(syntax.clone())?;
    let end = inner.find('>').ok_or(syntax)?;
    let path = &inner[..end];
    // A source route (`@a,@b:user@c`) is obsolete; the mailbox is what counts.
    let path = path.rsplit_once(':').map_or(path, |(_, mailbox)| mailbox);
    Ok((path.to_owned(), inner[end + 1..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
