//! Submission of a composed message to the account's own submission
//! server (587 with STARTTLS, 465 with implicit TLS), logged in with the
//! account's credentials. The SMTP exchange is mail-send's (on smtp-proto,
//! as ingest's SMTP server); the connection is ours (`common::upstream`:
//! the egress policy, the trust store, the operator's CAs), so a message
//! goes only where a mail server may be. Every recipient must be accepted
//! before the message is: one refused recipient sends nothing at all.

use std::time::Duration;

use mail_send::smtp::AssertReply as _;
use mail_send::smtp::message::Parameters;
use mail_send::{Credentials, SmtpClient};
use pushmail_common::redact::Secret;
use pushmail_common::upstream::{Security, Tls};
use tokio::io::{AsyncRead, AsyncWrite};

/// How to reach and log in to a submission server.
#[derive(Debug, Clone)]
pub struct SubmissionAccount {
    /// Host name (checked against its certificate).
    pub host: String,
    /// Port.
    pub port: u16,
    /// STARTTLS or implicit TLS (plain text only for tests and internal
    /// relays).
    pub security: Security,
    /// Login.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// A submission failed; nothing was sent.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The server could not be reached, or dropped the connection, or did
    /// not answer in time.
    #[error("the submission server is unavailable")]
    Unavailable(#[source] std::io::Error),
    /// The server refused the account's credentials.
    #[error("the submission server refused the account's credentials")]
    Credentials(#[source] mail_send::Error),
    /// A recipient was refused; nothing was sent to anyone.
    #[error("the submission server refused recipient {recipient}: {reply}")]
    Recipient {
        /// Which.
        recipient: String,
        /// What the server said.
        reply: String,
    },
    /// The server refused the sender or the message; `temporary` for a 4xx.
    #[error("the submission server refused the message: {reply}")]
    Refused {
        /// What the server said.
        reply: String,
        /// Worth trying again later.
        temporary: bool,
    },
    /// The server broke the protocol, or offers no usable login.
    #[error("the submission server cannot be used")]
    Protocol(#[source] mail_send::Error),
    /// The connection failed while the message itself was being sent or
    /// acknowledged: the server may have accepted it.
    #[error("the message may have been sent: the submission server's answer to it was lost")]
    Unknown(#[source] mail_send::Error),
}

/// Submits messages.
#[derive(Debug, Clone)]
pub struct Submitter {
    tls: Tls,
    timeout: Duration,
    hello: String,
}

impl Submitter {
    /// Connects through `tls`, waiting at most `timeout` for any answer,
    /// greeting as `hello` (this platform's host name).
    pub fn new(tls: Tls, timeout: Duration, hello: impl Into<String>) -> Self {
        Self {
            tls,
            timeout,
            hello: hello.into(),
        }
    }

    /// Sends `message` from `from` to `recipients`.
    pub async fn submit(
        &self,
        account: &SubmissionAccount,
        from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(), SubmitError> {
        let tcp = tokio::time::timeout(
            self.timeout,
            self.tls.connect_tcp(&account.host, account.port),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(SubmitError::Unavailable)?;
        match account.security {
            Security::Implicit => {
                let stream =
                    tokio::time::timeout(self.timeout, self.tls.connect(&account.host, tcp))
                        .await
                        .map_err(|_| timed_out())?
                        .map_err(SubmitError::Unavailable)?;
                let mut client = self.client(stream);
                greeting(&mut client).await?;
                self.deliver(client, account, from, recipients, message)
                    .await
            }
            Security::StartTls => {
                let mut client = self.client(tcp);
                greeting(&mut client).await?;
                client.ehlo(&self.hello).await.map_err(failed)?;
                client
                    .cmd(b"STARTTLS\r\n")
                    .await
                    .map_err(failed)?
                    .assert_code(220)
                    .map_err(failed)?;
                let stream = tokio::time::timeout(
                    self.timeout,
                    self.tls.connect(&account.host, client.stream),
                )
                .await
                .map_err(|_| timed_out())?
                .map_err(SubmitError::Unavailable)?;
                self.deliver(self.client(stream), account, from, recipients, message)
                    .await
            }
            Security::None => {
                let mut client = self.client(tcp);
                greeting(&mut client).await?;
                self.deliver(client, account, from, recipients, message)
                    .await
            }
        }
    }

    fn client<T: AsyncRead + AsyncWrite + Unpin>(&self, stream: T) -> SmtpClient<T> {
        SmtpClient {
            stream,
            timeout: self.timeout,
        }
    }

    /// EHLO, AUTH, the envelope and the message, on an established stream.
    async fn deliver<T: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut client: SmtpClient<T>,
        account: &SubmissionAccount,
        from: &str,
        recipients: &[String],
        message: &[u8],
    ) -> Result<(), SubmitError> {
        let capabilities = client.ehlo(&self.hello).await.map_err(failed)?;
        let credentials = Credentials::new(
            account.username.clone(),
            account.password.expose().to_owned(),
        );
        client
            .authenticate(&credentials, &capabilities)
            .await
            .map_err(|error| match error {
                mail_send::Error::AuthenticationFailed(_) | mail_send::Error::Auth(_) => {
                    SubmitError::Credentials(error)
                }
                other => failed(other),
            })?;
        client
            .mail_from(from, &Parameters::default())
            .await
            .map_err(refused)?;
        for recipient in recipients {
            if let Err(error) = client.rcpt_to(recipient, &Parameters::default()).await {
                // Nothing half-sent: the transaction is abandoned.
                let _ = client.rset().await;
                let _ = client.quit().await;
                return Err(SubmitError::Recipient {
                    recipient: recipient.clone(),
                    reply: reply_text(&error),
                });
            }
        }
        client.data(message).await.map_err(|error| match error {
            mail_send::Error::UnexpectedReply(_) => refused(error),
            // Past the final "." the server may have taken it: never
            // reported as "nothing sent".
            other => SubmitError::Unknown(other),
        })?;
        let _ = client.quit().await;
        Ok(())
    }
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin>(
    client: &mut SmtpClient<T>,
) -> Result<(), SubmitError> {
    client
        .read()
        .await
        .map_err(failed)?
        .assert_positive_completion()
        .map_err(refused)
}

fn timed_out() -> SubmitError {
    SubmitError::Unavailable(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the submission server did not answer in time",
    ))
}

/// A failure of the exchange itself.
fn failed(error: mail_send::Error) -> SubmitError {
    match error {
        mail_send::Error::Io(io) => SubmitError::Unavailable(io),
        mail_send::Error::Timeout => timed_out(),
        mail_send::Error::UnexpectedReply(_) => refused(error),
        other => SubmitError::Protocol(other),
    }
}

/// The server said no.
fn refused(error: mail_send::Error) -> SubmitError {
    match error {
        mail_send::Error::UnexpectedReply(reply) => SubmitError::Refused {
            temporary: (400..500).contains(&reply.code()),
            reply: format!("{} {}", reply.code(), reply.message()),
        },
        other => failed(other),
    }
}

fn reply_text(error: &mail_send::Error) -> String {
    match error {
        mail_send::Error::UnexpectedReply(reply) => format!("{} {}", reply.code(), reply.message()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use pushmail_common::egress::EgressConfig;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
    use tokio::net::TcpListener;

    use super::*;

    /// How the scripted server ends a transaction.
    #[derive(Clone, Copy)]
    enum Ending {
        /// Hangs up after the message's final dot, before answering it: a
        /// lost answer, the one case where the outcome is unknown.
        HangUpAfterData,
        /// Answers 250 as a server that took it.
        Accept,
    }

    /// One SMTP session from a script, for faults no real server can be
    /// made to show on cue; returns the commands it read.
    async fn scripted(ending: Ending) -> (u16, tokio::task::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            let mut seen = Vec::new();
            write.write_all(b"220 scripted ESMTP\r\n").await.unwrap();
            while let Ok(Some(line)) = lines.next_line().await {
                seen.push(line.clone());
                let verb = line.to_ascii_uppercase();
                let reply: &[u8] = if verb.starts_with("EHLO") {
                    b"250-scripted\r\n250 AUTH PLAIN\r\n"
                } else if verb == "AUTH PLAIN" {
                    b"334 \r\n"
                } else if verb.starts_with("AUTH")
                    || seen.len() > 1 && seen[seen.len() - 2] == "AUTH PLAIN"
                {
                    b"235 2.7.0 ok\r\n"
                } else if verb.starts_with("RCPT") && line.contains("nobody@") {
                    b"550 5.1.1 no such user\r\n"
                } else if verb == "DATA" {
                    write.write_all(b"354 go on\r\n").await.unwrap();
                    while let Ok(Some(body)) = lines.next_line().await {
                        if body == "." {
                            break;
                        }
                    }
                    seen.push("<message>".to_owned());
                    match ending {
                        Ending::HangUpAfterData => return seen,
                        Ending::Accept => b"250 2.0.0 queued\r\n",
                    }
                } else if verb == "QUIT" {
                    let _ = write.write_all(b"221 bye\r\n").await;
                    return seen;
                } else {
                    b"250 ok\r\n"
                };
                write.write_all(reply).await.unwrap();
            }
            seen
        });
        (port, task)
    }

    fn submitter() -> Submitter {
        let tls = Tls::new(&[])
            .unwrap()
            .with_egress(EgressConfig::loopback().policy().unwrap());
        Submitter::new(tls, Duration::from_secs(5), "pushmail.test")
    }

    fn account(port: u16) -> SubmissionAccount {
        SubmissionAccount {
            host: "127.0.0.1".to_owned(),
            port,
            security: Security::None,
            username: "me@example.net".to_owned(),
            password: Secret::new("pw"),
        }
    }

    const MESSAGE: &[u8] = b"From: me@example.net\r\nSubject: hi\r\n\r\nhello\r\n";

    #[tokio::test]
    async fn a_server_that_hangs_up_after_the_message_leaves_the_outcome_unknown() {
        let (port, server) = scripted(Ending::HangUpAfterData).await;
        let result = submitter()
            .submit(
                &account(port),
                "me@example.net",
                &["bob@example.net".to_owned()],
                MESSAGE,
            )
            .await;
        assert!(matches!(result, Err(SubmitError::Unknown(_))), "{result:?}");
        assert!(server.await.unwrap().contains(&"<message>".to_owned()));
    }

    #[tokio::test]
    async fn one_refused_recipient_sends_nothing() {
        let (port, server) = scripted(Ending::Accept).await;
        let recipients = [
            "bob@example.net".to_owned(),
            "nobody@example.net".to_owned(),
        ];
        let result = submitter()
            .submit(&account(port), "me@example.net", &recipients, MESSAGE)
            .await;
        match result {
            Err(SubmitError::Recipient { recipient, reply }) => {
                assert_eq!(recipient, "nobody@example.net");
                assert!(reply.starts_with("550"), "{reply}");
            }
            other => panic!("{other:?}"),
        }
        let seen = server.await.unwrap();
        assert!(
            !seen.iter().any(|c| c == "DATA" || c == "<message>"),
            "{seen:?}"
        );
        assert!(seen.iter().any(|c| c == "RSET"), "{seen:?}");
    }

    #[tokio::test]
    async fn an_accepted_message_is_sent_once() {
        let (port, server) = scripted(Ending::Accept).await;
        submitter()
            .submit(
                &account(port),
                "me@example.net",
                &["bob@example.net".to_owned()],
                MESSAGE,
            )
            .await
            .unwrap();
        let seen = server.await.unwrap();
        assert_eq!(
            seen.iter().filter(|c| *c == "<message>").count(),
            1,
            "{seen:?}"
        );
    }
}
