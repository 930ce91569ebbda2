//! One SMTP or LMTP conversation: greeting, EHLO/LHLO, an optional
//! STARTTLS, then transactions. A message is acknowledged (250) only after
//! its events are durable; anything transient answers 4xx so the sending
//! server keeps the mail and retries.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use pushmail_common::clock::now_ms;
use tokio::io::{AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::auth::{self, AuthError, Origin, Proof, SaslError};
use super::command::{self, Command, CommandError};
use super::lines::{self, Body, Line};
use super::recipients::Resolved;
use super::{Mode, Shared};
use crate::arrival::{AnnounceError, Arrival, Source};
use pushmail_proto::binding::v1 as pb;

type Stream = Either<TcpStream, tokio_rustls::server::TlsStream<TcpStream>>;

/// Longest command line kept (RFC 5321 allows 512; extensions add a bit).
const MAX_COMMAND_LINE: usize = 2_048;
/// Bad commands tolerated before the connection is closed.
const MAX_ERRORS: u32 = 10;
/// Failed logins tolerated on one connection (binding also budgets them
/// per username and source across connections).
const MAX_AUTH_FAILURES: u32 = 3;
/// The answer to a recipient this connection may not deliver to, whether
/// or not it exists: nothing tells a prober which addresses are real.
const NOT_ACCEPTED: &str = "550 5.1.1 Recipient not accepted here";
/// The answer, to a connection that proved nothing, for any recipient it
/// is not authorised for (existing or not).
const AUTH_REQUIRED: &str = "530 5.7.0 Authentication required";

/// A recipient accepted with `RCPT`.
#[derive(Debug, Clone)]
struct Recipient {
    tenant: String,
    account: String,
    /// What authorised it: part of the mail's idempotency key.
    origin: Origin,
}

#[derive(Debug, Default)]
struct Transaction {
    recipients: Vec<Recipient>,
}

/// How a message went for one account.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Published,
    /// Try again later.
    Retry(String),
    /// Will never be accepted.
    Refused(String),
}

impl Outcome {
    fn reply(&self) -> String {
        match self {
            Self::Published => "250 2.0.0 Ok: published".to_owned(),
            Self::Retry(why) => format!("451 4.3.0 Try again later: {why}"),
            Self::Refused(why) => format!("554 5.6.0 Message refused: {why}"),
        }
    }
}

struct Conn {
    shared: Arc<Shared>,
    /// `None` only while STARTTLS moves the stream into the handshake.
    reader: Option<BufReader<Stream>>,
    out: Vec<u8>,
    peer: SocketAddr,
    greeted: bool,
    tls: bool,
    transaction: Option<Transaction>,
    errors: u32,
    /// Login and client certificate, once presented.
    proof: Proof,
    auth_failures: u32,
}

/// Why a conversation ended early.
enum Stop {
    /// Say this and close.
    Close(&'static str),
    /// The peer is gone.
    Gone,
}

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Self {
        Self::Gone
    }
}

/// Serves one connection until QUIT, a timeout, shutdown or the peer leaves.
pub(super) async fn serve(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let mut conn = Conn {
        shared,
        reader: Some(BufReader::new(Either::Left(tcp))),
        out: Vec::new(),
        peer,
        greeted: false,
        tls: false,
        transaction: None,
        errors: 0,
        proof: Proof::default(),
        auth_failures: 0,
    };
    let greeting = format!(
        "220 {} {} pushmail ready",
        conn.shared.settings.hostname,
        match conn.shared.mode {
            Mode::Smtp => "ESMTP",
            Mode::Lmtp => "LMTP",
        }
    );
    conn.say(&greeting);
    let stop = conn.converse(&shutdown).await;
    if let Err(Stop::Close(reply)) = stop {
        conn.say(reply);
    }
    let _ = conn.flush().await;
    if let Some(reader) = &mut conn.reader {
        let _ = reader.get_mut().shutdown().await;
    }
}

impl Conn {
    fn io(&mut self) -> Result<&mut BufReader<Stream>, Stop> {
        self.reader.as_mut().ok_or(Stop::Gone)
    }

    fn say(&mut self, reply: &str) {
        self.out.extend_from_slice(reply.as_bytes());
        self.out.extend_from_slice(b"\r\n");
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        if self.out.is_empty() {
            return Ok(());
        }
        let timeout = self.shared.settings.timeout;
        let out = std::mem::take(&mut self.out);
        let stream = self.io()?.get_mut();
        tokio::time::timeout(timeout, async {
            stream.write_all(&out).await?;
            stream.flush().await
        })
        .await
        .map_err(|_| Stop::Gone)??;
        Ok(())
    }

    /// Replies wait while pipelined commands are still buffered (RFC 2920).
    async fn flush_if_idle(&mut self) -> Result<(), Stop> {
        if self.io()?.buffer().is_empty() {
            self.flush().await?;
        }
        Ok(())
    }

    async fn converse(&mut self, shutdown: &CancellationToken) -> Result<(), Stop> {
        let timeout = self.shared.settings.timeout;
        let mut line = Vec::new();
        loop {
            self.flush_if_idle().await?;
            line.clear();
            let read = tokio::select! {
                () = shutdown.cancelled() => {
                    return Err(Stop::Close("421 4.3.2 Service shutting down, try again later"));
                }
                read = tokio::time::timeout(
                    timeout,
                    lines::read_line(self.reader.as_mut().ok_or(Stop::Gone)?, &mut line, MAX_COMMAND_LINE),
                ) => read,
            };
            let read = read.map_err(|_| Stop::Close("421 4.4.2 Idle too long, closing"))??;
            match read {
                Line::Closed => return Err(Stop::Gone),
                Line::Overflow => return Err(Stop::Close("500 5.5.2 Line too long, closing")),
                Line::TooLong => {
                    self.error("500 5.5.2 Line too long")?;
                    continue;
                }
                Line::Complete => {}
            }
            match command::parse(&line) {
                Ok(Command::Quit) => {
                    self.say("221 2.0.0 Bye");
                    return Ok(());
                }
                Ok(command) => self.command(command, shutdown).await?,
                Err(CommandError::Unknown) => self.error("500 5.5.2 Command not recognized")?,
                Err(CommandError::Parameter) => {
                    self.error("555 5.5.4 Parameter not recognized")?;
                }
                Err(CommandError::Syntax(why)) => {
                    let reply = format!("501 5.5.4 Syntax error: {why}");
                    self.error(&reply)?;
                }
            }
        }
    }

    /// Answers a client error, closing after too many.
    fn error(&mut self, reply: &str) -> Result<(), Stop> {
        self.errors += 1;
        if self.errors > MAX_ERRORS {
            return Err(Stop::Close("421 4.7.0 Too many errors, closing"));
        }
        self.say(reply);
        Ok(())
    }

    async fn command(
        &mut self,
        command: Command,
        shutdown: &CancellationToken,
    ) -> Result<(), Stop> {
        let mode = self.shared.mode;
        match command {
            Command::Helo(_) | Command::Ehlo(_) if mode == Mode::Lmtp => {
                self.error("500 5.5.1 This is LMTP: use LHLO")
            }
            Command::Lhlo(_) if mode == Mode::Smtp => {
                self.error("500 5.5.1 This is SMTP: use EHLO")
            }
            Command::Helo(_) => {
                self.hello();
                let reply = format!("250 {}", self.shared.settings.hostname);
                self.say(&reply);
                Ok(())
            }
            Command::Ehlo(_) | Command::Lhlo(_) => {
                self.hello();
                self.extensions();
                Ok(())
            }
            Command::StartTls => self.start_tls().await,
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial).await,
            Command::Mail { size, .. } => self.mail(size),
            Command::Rcpt(address) => self.rcpt(&address).await,
            Command::Data => self.data(shutdown).await,
            Command::Rset => {
                self.transaction = None;
                self.say("250 2.0.0 Ok");
                Ok(())
            }
            Command::Noop => {
                self.say("250 2.0.0 Ok");
                Ok(())
            }
            Command::Vrfy => {
                // Which addresses exist is nobody's business.
                self.say("252 2.5.0 Cannot VRFY; send the message and see");
                Ok(())
            }
            Command::Help => {
                self.say("214 2.0.0 See RFC 5321");
                Ok(())
            }
            Command::Quit => unreachable!("handled by the loop"),
        }
    }

    fn hello(&mut self) {
        // A new greeting resets the session (RFC 5321 §4.1.4).
        self.greeted = true;
        self.transaction = None;
    }

    fn extensions(&mut self) {
        let settings = &self.shared.settings;
        let mut lines = vec![
            settings.hostname.clone(),
            "PIPELINING".to_owned(),
            format!("SIZE {}", settings.max_message_bytes),
            "8BITMIME".to_owned(),
            "ENHANCEDSTATUSCODES".to_owned(),
            "SMTPUTF8".to_owned(),
        ];
        if self.shared.tls.is_some() && !self.tls {
            lines.push("STARTTLS".to_owned());
        }
        // Credentials only over TLS (RFC 4954 §4).
        if self.tls && self.shared.relay_auth.is_some() && self.proof.login.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_owned());
        }
        let last = lines.len() - 1;
        for (i, line) in lines.into_iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            self.say(&format!("250{sep}{line}"));
        }
    }

    async fn start_tls(&mut self) -> Result<(), Stop> {
        let Some(acceptor) = self.shared.tls.clone() else {
            return self.error("454 4.7.0 TLS not available");
        };
        if self.tls {
            return self.error("503 5.5.1 TLS already active");
        }
        self.say("220 2.0.0 Ready to start TLS");
        self.flush().await?;
        // Anything pipelined after STARTTLS arrived in plain text and is
        // dropped with the buffer (the CVE-2011-0411 injection).
        let reader = self.reader.take().ok_or(Stop::Gone)?;
        let Either::Left(tcp) = reader.into_inner() else {
            return Err(Stop::Gone);
        };
        let tls = tokio::time::timeout(self.shared.settings.timeout, acceptor.accept(tcp))
            .await
            .map_err(|_| Stop::Gone)??;
        self.proof.certificate = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(pushmail_common::tls::fingerprint);
        self.reader = Some(BufReader::new(Either::Right(tls)));
        self.tls = true;
        self.greeted = false;
        self.transaction = None;
        Ok(())
    }

    fn mail(&mut self, size: Option<u64>) -> Result<(), Stop> {
        let settings = &self.shared.settings;
        if !self.greeted {
            return self.error("503 5.5.1 Say hello first");
        }
        if settings.require_tls && !self.tls {
            return self.error("530 5.7.0 Must issue a STARTTLS command first");
        }
        if self.transaction.is_some() {
            return self.error("503 5.5.1 Nested MAIL command");
        }
        if size.is_some_and(|s| s > settings.max_message_bytes as u64) {
            let reply = format!(
                "552 5.3.4 Message size exceeds fixed maximum of {} bytes",
                settings.max_message_bytes
            );
            self.say(&reply);
            return Ok(());
        }
        self.transaction = Some(Transaction::default());
        self.say("250 2.1.0 Ok");
        Ok(())
    }

    async fn rcpt(&mut self, address: &str) -> Result<(), Stop> {
        let max = self.shared.settings.max_recipients;
        let Some(transaction) = &self.transaction else {
            return self.error("503 5.5.1 Need MAIL before RCPT");
        };
        if transaction.recipients.len() >= max {
            self.say("452 4.5.3 Too many recipients");
            return Ok(());
        }
        let require_auth = self.shared.settings.require_auth;
        match self.shared.recipients.resolve(address).await {
            // A watched mailbox is announced by its watcher; taking its mail
            // here too would announce it twice under other keys. It gets
            // the answer an unknown address gets.
            Ok(Resolved::Account { kind, .. }) if kind != pb::AccountKind::EnterpriseForwarded => {
                self.not_accepted();
            }
            Ok(Resolved::Account {
                tenant,
                account,
                policy,
                ..
            }) => {
                match auth::authorise(&self.proof, self.peer.ip(), &tenant, &policy, require_auth) {
                    Some(origin) => {
                        if let Some(transaction) = &mut self.transaction {
                            transaction.recipients.push(Recipient {
                                tenant,
                                account,
                                origin,
                            });
                        }
                        self.say("250 2.1.5 Ok");
                    }
                    None => self.not_accepted(),
                }
            }
            Ok(Resolved::Unknown) => self.not_accepted(),
            Ok(Resolved::BadAddress) => self.say("501 5.1.3 Bad recipient address syntax"),
            Err(err) => {
                tracing::warn!(error = %pushmail_common::report::Report(&err), "recipient lookup failed");
                self.say("451 4.3.0 Recipient lookup unavailable, try again later");
            }
        }
        Ok(())
    }

    /// A recipient this connection may not deliver to, or none at all:
    /// one answer either way.
    fn not_accepted(&mut self) {
        let proven = self.proof.login.is_some() || self.proof.certificate.is_some();
        if self.shared.settings.require_auth && !proven {
            self.say(AUTH_REQUIRED);
        } else {
            self.say(NOT_ACCEPTED);
        }
    }

    /// `AUTH PLAIN` / `AUTH LOGIN`, with the responses the client sends
    /// after `334` where it gave none inline.
    async fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Result<(), Stop> {
        let Some(relay_auth) = self.shared.relay_auth.clone() else {
            return self.error("502 5.5.1 AUTH not available");
        };
        if !self.greeted {
            return self.error("503 5.5.1 Say hello first");
        }
        if !self.tls {
            return self
                .error("538 5.7.11 Encryption required for requested authentication mechanism");
        }
        if self.proof.login.is_some() {
            return self.error("503 5.5.1 Already authenticated");
        }
        if self.transaction.is_some() {
            return self.error("503 5.5.1 AUTH not permitted during a mail transaction");
        }
        let login = match mechanism {
            "PLAIN" => {
                let response = match initial {
                    Some(response) => response,
                    None => self.challenge("").await?,
                };
                auth::plain(&response)
            }
            "LOGIN" => {
                let username = match initial {
                    Some(response) => response,
                    None => self.challenge("VXNlcm5hbWU6").await?,
                };
                let password = self.challenge("UGFzc3dvcmQ6").await?;
                auth::login(&username, &password)
            }
            _ => return self.error("504 5.5.4 Unrecognized authentication type"),
        };
        let login = match login {
            Ok(login) => login,
            Err(SaslError::Cancelled) => return self.error("501 5.0.0 Authentication cancelled"),
            Err(SaslError::Malformed) => {
                return self.error("501 5.5.2 Cannot decode the authentication response");
            }
        };
        match relay_auth.authenticate(&login, self.peer.ip()).await {
            Ok(authenticated) => {
                tracing::info!(peer = %self.peer, tenant = %authenticated.tenant, "relay authenticated");
                self.proof.login = Some(authenticated);
                self.say("235 2.7.0 Authentication successful");
                Ok(())
            }
            Err(AuthError::Refused) => {
                self.auth_failures += 1;
                if self.auth_failures >= MAX_AUTH_FAILURES {
                    return Err(Stop::Close(
                        "421 4.7.0 Too many authentication failures, closing",
                    ));
                }
                self.error("535 5.7.8 Authentication credentials invalid")
            }
            Err(AuthError::LockedOut) => Err(Stop::Close(
                "421 4.7.0 Too many authentication failures, try again later",
            )),
            Err(err @ AuthError::Unavailable(_)) => {
                tracing::warn!(error = %pushmail_common::report::Report(&err), "relay login could not be checked");
                self.say("454 4.7.0 Temporary authentication failure, try again later");
                Ok(())
            }
        }
    }

    /// Sends `334 <prompt>` and reads the client's one-line answer.
    async fn challenge(&mut self, prompt: &str) -> Result<String, Stop> {
        let reply = format!("334 {prompt}");
        self.say(reply.trim_end());
        self.flush().await?;
        let mut line = Vec::new();
        let read = tokio::time::timeout(
            self.shared.settings.timeout,
            lines::read_line(self.io()?, &mut line, MAX_COMMAND_LINE),
        )
        .await
        .map_err(|_| Stop::Close("421 4.4.2 Idle too long, closing"))??;
        match read {
            Line::Closed => Err(Stop::Gone),
            Line::Overflow => Err(Stop::Close("500 5.5.2 Line too long, closing")),
            // A base64 answer longer than a command line is no login.
            Line::TooLong => Ok("!".to_owned()),
            Line::Complete => Ok(String::from_utf8_lossy(lines::trim_eol(&line)).into_owned()),
        }
    }

    async fn data(&mut self, shutdown: &CancellationToken) -> Result<(), Stop> {
        let Some(transaction) = self.transaction.take() else {
            return self.error("503 5.5.1 Need MAIL and RCPT before DATA");
        };
        if transaction.recipients.is_empty() {
            return self.error("554 5.5.1 No valid recipients");
        }
        self.say("354 End data with <CR><LF>.<CR><LF>");
        self.flush().await?;
        let max = self.shared.settings.max_message_bytes;
        let body = tokio::select! {
            // Nothing was acknowledged: the sender keeps the mail.
            () = shutdown.cancelled() => return Err(Stop::Gone),
            body = tokio::time::timeout(
                self.shared.settings.timeout,
                lines::read_body(self.reader.as_mut().ok_or(Stop::Gone)?, max),
            ) => body.map_err(|_| Stop::Close("421 4.4.2 Data timeout, closing"))??,
        };
        let raw = match body {
            Body::Closed => return Err(Stop::Gone),
            Body::Overflow => {
                return Err(Stop::Close("552 5.3.4 Line too long in message, closing"));
            }
            Body::TooLarge => {
                let reply = format!("552 5.3.4 Message size exceeds fixed maximum of {max} bytes");
                self.answer(&transaction, |_| reply.clone());
                return Ok(());
            }
            Body::Message(raw) => raw,
        };
        let outcomes = self.deliver(&transaction, &raw).await;
        match self.shared.mode {
            Mode::Lmtp => self.answer(&transaction, |r| outcomes[&r.account].reply()),
            Mode::Smtp => {
                // One reply for all: the worst outcome, so a retry covers
                // every account (republishing is deduped downstream by the
                // idempotency key).
                let worst = outcomes
                    .values()
                    .find(|o| matches!(o, Outcome::Retry(_)))
                    .or_else(|| outcomes.values().find(|o| matches!(o, Outcome::Refused(_))))
                    .unwrap_or(&Outcome::Published);
                let reply = worst.reply();
                self.say(&reply);
            }
        }
        Ok(())
    }

    /// One reply per accepted recipient (LMTP), or one (SMTP).
    fn answer(&mut self, transaction: &Transaction, reply: impl Fn(&Recipient) -> String) {
        match self.shared.mode {
            Mode::Lmtp => {
                for recipient in &transaction.recipients {
                    let line = reply(recipient);
                    self.say(&line);
                }
            }
            Mode::Smtp => {
                if let Some(first) = transaction.recipients.first() {
                    let line = reply(first);
                    self.say(&line);
                }
            }
        }
    }

    /// Stores the message once and publishes one event per account.
    async fn deliver(&self, transaction: &Transaction, raw: &[u8]) -> BTreeMap<String, Outcome> {
        let source = match self.shared.mode {
            Mode::Smtp => Source::Smtp,
            Mode::Lmtp => Source::Lmtp,
        };
        let span = tracing::info_span!(
            "ingest.receive",
            protocol = ?source,
            peer = %self.peer,
            recipients = transaction.recipients.len(),
            size = raw.len(),
        );
        async {
            let mut accounts: BTreeMap<String, &Recipient> = BTreeMap::new();
            for recipient in &transaction.recipients {
                accounts
                    .entry(recipient.account.clone())
                    .or_insert(recipient);
            }
            let stored = match self.shared.announcer.store(raw).await {
                Ok(stored) => stored,
                Err(err) => {
                    let outcome = failed(&err);
                    return accounts.into_keys().map(|a| (a, outcome.clone())).collect();
                }
            };
            let received_at_ms = now_ms();
            let publishes = accounts.values().map(|recipient| {
                let arrival = Arrival {
                    tenant: recipient.tenant.clone(),
                    account: recipient.account.clone(),
                    mailbox: "INBOX".to_owned(),
                    uid_validity: 0,
                    uid: 0,
                    source,
                    received_at_ms,
                    full_size: None,
                    origin: Some(recipient.origin.key()),
                };
                let stored = &stored;
                async move {
                    let outcome = match self.shared.announcer.publish(&arrival, stored).await {
                        Ok(_) => Outcome::Published,
                        Err(err) => failed(&err),
                    };
                    (arrival.account, outcome)
                }
            });
            futures::future::join_all(publishes)
                .await
                .into_iter()
                .collect()
        }
        .instrument(span)
        .await
    }
}

fn failed(err: &AnnounceError) -> Outcome {
    if err.is_transient() {
        tracing::warn!(error = %pushmail_common::report::Report(err), "message not published; the sender will retry");
        Outcome::Retry("event publication failed".to_owned())
    } else {
        Outcome::Refused(err.to_string())
    }
}
