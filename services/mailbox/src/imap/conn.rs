//! One IMAP session to the account's server, on async-imap: connect (with
//! the egress policy and TLS shared with ingest), log in, say who we are
//! (`ID`, RFC 2971: 163/126-style providers refuse `SELECT` without it),
//! turn QRESYNC on where offered, and run commands whose responses the
//! typed calls of async-imap do not cover (QRESYNC SELECT, LIST-STATUS,
//! APPENDUID), reading them with its parser (imap-proto) until the tagged
//! answer. Every read is timed out.

use std::time::Duration;

use async_imap::imap_proto::{Response, Status};
use pushmail_common::redact::Secret;
use pushmail_common::upstream::{MailStream, Security, Tls};
use tokio::io::AsyncWriteExt as _;
use tokio_util::either::Either;

use crate::backend::BackendError;

/// Who the server is told we are (RFC 2971).
const CLIENT_NAME: &str = "pushmail";

/// How to reach and log in to an account's IMAP server.
#[derive(Debug, Clone)]
pub struct ImapAccount {
    /// Server host name (checked against its certificate).
    pub host: String,
    /// Server port.
    pub port: u16,
    /// Transport security.
    pub security: Security,
    /// Login.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// What the server offers that changes how we talk to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Caps {
    pub(crate) condstore: bool,
    pub(crate) qresync: bool,
    pub(crate) uidplus: bool,
    pub(crate) moves: bool,
    pub(crate) special_use: bool,
    pub(crate) list_status: bool,
}

/// A logged-in session.
pub(crate) struct Conn {
    session: async_imap::Session<MailStream>,
    pub(crate) caps: Caps,
    timeout: Duration,
}

fn unavailable(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> BackendError {
    BackendError::Unavailable(std::io::Error::other(error))
}

fn from_imap(error: async_imap::error::Error) -> BackendError {
    use async_imap::error::Error;
    match error {
        Error::Io(io) => BackendError::Unavailable(io),
        Error::ConnectionLost => BackendError::Unavailable(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "the mail server closed the connection",
        )),
        Error::No(text) | Error::Bad(text) => BackendError::Refused {
            command: "IMAP",
            text,
        },
        other => BackendError::Protocol(other.to_string()),
    }
}

impl Conn {
    /// Connects and logs in as `account`.
    pub(crate) async fn open(
        tls: &Tls,
        account: &ImapAccount,
        timeout: Duration,
    ) -> Result<Self, BackendError> {
        let tcp = within(timeout, tls.connect_tcp(&account.host, account.port))
            .await?
            .map_err(BackendError::Unavailable)?;
        let stream: MailStream = match account.security {
            Security::Implicit => Either::Right(
                within(timeout, tls.connect(&account.host, tcp))
                    .await?
                    .map_err(BackendError::Unavailable)?,
            ),
            Security::None | Security::StartTls => Either::Left(tcp),
        };
        let mut client = async_imap::Client::new(stream);
        within(timeout, client.read_response())
            .await?
            .map_err(BackendError::Unavailable)?
            .ok_or_else(|| unavailable("the mail server closed before its greeting"))?;
        if account.security == Security::StartTls {
            within(timeout, client.run_command_and_check_ok("STARTTLS", None))
                .await?
                .map_err(from_imap)?;
            let Either::Left(tcp) = client.into_inner() else {
                return Err(BackendError::Protocol("TLS twice".to_owned()));
            };
            let tls = within(timeout, tls.connect(&account.host, tcp))
                .await?
                .map_err(BackendError::Unavailable)?;
            client = async_imap::Client::new(Either::Right(tls));
        }
        let session = within(
            timeout,
            client.login(&account.username, account.password.expose()),
        )
        .await?
        .map_err(|(error, _)| match error {
            async_imap::error::Error::No(text) => BackendError::Credentials(text),
            other => from_imap(other),
        })?;
        let mut conn = Self {
            session,
            caps: Caps::default(),
            timeout,
        };
        conn.negotiate().await?;
        Ok(conn)
    }

    /// Capabilities, `ID` and `ENABLE QRESYNC`.
    async fn negotiate(&mut self) -> Result<(), BackendError> {
        let timeout = self.timeout;
        let caps = tokio::time::timeout(timeout, self.session.capabilities())
            .await
            .map_err(|_| unavailable("no CAPABILITY answer in time"))?
            .map_err(from_imap)?;
        let has = |name: &str| caps.has_str(name);
        self.caps = Caps {
            condstore: has("CONDSTORE") || has("QRESYNC"),
            qresync: has("QRESYNC") && has("ENABLE"),
            uidplus: has("UIDPLUS"),
            moves: has("MOVE"),
            special_use: has("SPECIAL-USE"),
            list_status: has("LIST-STATUS"),
        };
        if has("ID") {
            let version = env!("CARGO_PKG_VERSION");
            tokio::time::timeout(
                timeout,
                self.session
                    .id([("name", Some(CLIENT_NAME)), ("version", Some(version))]),
            )
            .await
            .map_err(|_| unavailable("no ID answer in time"))?
            .map_err(from_imap)?;
        }
        if self.caps.qresync {
            self.run("ENABLE", "ENABLE QRESYNC").await?;
        }
        Ok(())
    }

    /// Runs `command` and reads to its tagged answer, showing `each`
    /// every response (the tagged OK last); NO and BAD are
    /// [`BackendError::Refused`] naming `verb`.
    pub(crate) async fn exchange(
        &mut self,
        verb: &'static str,
        command: &str,
        each: impl FnMut(&Response<'_>) + Send,
    ) -> Result<(), BackendError> {
        let tag = tokio::time::timeout(self.timeout, self.session.run_command(command))
            .await
            .map_err(|_| unavailable("the mail server did not take a command in time"))?
            .map_err(from_imap)?;
        self.finish(verb, &tag.0, each).await
    }

    /// [`Conn::exchange`] for a command whose answers do not matter.
    pub(crate) async fn run(
        &mut self,
        verb: &'static str,
        command: &str,
    ) -> Result<(), BackendError> {
        self.exchange(verb, command, |_| {}).await
    }

    /// `APPEND` of `content` (a literal) to `mailbox` with `flags`.
    pub(crate) async fn append(
        &mut self,
        mailbox: &str,
        flags: &str,
        content: &[u8],
        each: impl FnMut(&Response<'_>) + Send,
    ) -> Result<(), BackendError> {
        let command = format!("APPEND {} ({flags}) {{{}}}", quoted(mailbox), content.len());
        let tag = self
            .session
            .run_command(&command)
            .await
            .map_err(from_imap)?;
        let first = got(tokio::time::timeout(self.timeout, self.session.read_response()).await)?;
        match first.parsed() {
            Response::Continue { .. } => {}
            Response::Done {
                status, outcome, ..
            } if *status != Status::Ok => {
                return Err(refused("APPEND", outcome));
            }
            _ => {
                return Err(BackendError::Protocol(
                    "APPEND was not asked for its literal".into(),
                ));
            }
        }
        let write = async {
            let stream = self.session.get_mut();
            stream.write_all(content).await?;
            stream.write_all(b"\r\n").await?;
            stream.flush().await
        };
        tokio::time::timeout(self.timeout.max(Duration::from_secs(60)), write)
            .await
            .map_err(|_| unavailable("the message could not be written in time"))?
            .map_err(BackendError::Unavailable)?;
        self.finish("APPEND", &tag.0, each).await
    }

    async fn finish(
        &mut self,
        verb: &'static str,
        tag: &str,
        mut each: impl FnMut(&Response<'_>) + Send,
    ) -> Result<(), BackendError> {
        loop {
            let response =
                got(tokio::time::timeout(self.timeout, self.session.read_response()).await)?;
            let parsed = response.parsed();
            match parsed {
                Response::Done {
                    tag: done,
                    status,
                    outcome,
                } if done.0 == tag => {
                    if *status == Status::Ok {
                        each(parsed);
                        return Ok(());
                    }
                    return Err(refused(verb, outcome));
                }
                Response::Data {
                    status: Status::Bye,
                    outcome,
                } => {
                    let text = outcome.information.as_deref().unwrap_or("BYE").to_owned();
                    return Err(BackendError::Unavailable(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        text,
                    )));
                }
                _ => each(parsed),
            }
        }
    }

    /// Logs out (best effort).
    pub(crate) async fn logout(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.session.logout()).await;
    }
}

/// `what`, or Unavailable after `timeout`.
async fn within<T>(timeout: Duration, what: impl Future<Output = T>) -> Result<T, BackendError> {
    tokio::time::timeout(timeout, what).await.map_err(|_| {
        BackendError::Unavailable(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the mail server did not answer in time",
        ))
    })
}

/// A timed read's response. Generic because async-imap does not name its
/// response type.
fn got<T>(
    read: Result<std::io::Result<Option<T>>, tokio::time::error::Elapsed>,
) -> Result<T, BackendError> {
    read.map_err(|_| unavailable("the mail server did not answer in time"))?
        .map_err(BackendError::Unavailable)?
        .ok_or_else(|| unavailable("the mail server closed the connection"))
}

fn refused(verb: &'static str, outcome: &async_imap::imap_proto::Outcome<'_>) -> BackendError {
    BackendError::Refused {
        command: verb,
        text: outcome
            .information
            .as_deref()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// `text` as an IMAP quoted string.
pub(crate) fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// UIDs as an IMAP sequence set, runs folded (`1:5,7,9:12`).
pub(crate) fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_fold_runs() {
        assert_eq!(uid_set(&[9, 1, 2, 3, 5, 10, 11, 3]), "1:3,5,9:11");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn names_are_quoted() {
        assert_eq!(quoted(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
