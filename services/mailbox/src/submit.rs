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
