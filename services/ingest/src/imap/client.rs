//! The IMAP4rev1 client side (RFC 3501, IDLE from RFC 2177) a watcher
//! needs: login (LOGIN, or AUTHENTICATE PLAIN), SELECT, STATUS, UID
//! SEARCH, UID FETCH, IDLE and NOOP, and NOTIFY (RFC 5465) for news of
//! other mailboxes. Responses are read with bounded lines and bounded
//! literals, every exchange is timed out, and a server that sends nonsense
//! or hangs up mid-FETCH is an error, never a panic.
//!
//! Hand-written rather than taken from a maintained client because the
//! maintained one costs more where this client lives: a process holds
//! thousands of idle watchers, and `make bench` (`imap_bench`) measures
//! the memory per idle connection of both in one run; async-imap 0.12
//! needs about 1.8 times what this client does (`bench/reports/imap.md`).

use std::time::Duration;

use base64::Engine as _;
use tokio::io::{
    AsyncBufReadExt as _, AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, BufReader,
};

/// Longest response line (without literals).
const MAX_LINE: usize = 64 * 1024;
/// Small read buffer: a watcher spends its life idle, and thousands are
/// held per process.
const BUFFER: usize = 1_024;

/// An IMAP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The connection failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The server did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server said NO or BAD.
    #[error("server refused {command}: {line}")]
    Refused {
        /// The command's verb.
        command: String,
        /// The tagged answer.
        line: String,
    },
    /// The server said BYE.
    #[error("server closed the session: {0}")]
    Bye(String),
    /// The server sent something that is not IMAP.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The server refuses credentials on this unencrypted link.
    #[error(
        "the server refuses a plaintext login (LOGINDISABLED): set the account's TLS mode to STARTTLS or implicit TLS"
    )]
    PlaintextLoginDisabled,
}

/// One response: its text (literals replaced by `{n}` markers) and the
/// literals in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Response {
    /// The line(s), literals elided.
    pub text: String,
    /// Literal contents.
    pub literals: Vec<Vec<u8>>,
}

impl Response {
    /// The number after `name ` in the text (e.g. `UID 42`).
    pub(crate) fn number_after(&self, name: &str) -> Option<u64> {
        let upper = self.text.to_ascii_uppercase();
        let mut from = 0;
        while let Some(at) = upper[from..].find(name) {
            let start = from + at;
            let before_ok = start == 0 || matches!(upper.as_bytes()[start - 1], b' ' | b'(' | b'[');
            let rest = &upper[start + name.len()..];
            if before_ok && let Some(rest) = rest.strip_prefix(' ') {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = digits.parse() {
                    return Some(n);
                }
            }
            from = start + name.len();
        }
        None
    }
}

/// What SELECT told us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// The mailbox's UIDVALIDITY.
    pub uid_validity: u32,
    /// The next UID to be assigned, when the server says.
    pub uid_next: Option<u32>,
    /// Messages in the mailbox.
    pub exists: u32,
}

/// Which part of a message to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole message.
    Whole,
    /// The header section only (for one too large to fetch).
    Header,
}

/// How an IDLE ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// The mailbox changed (EXISTS).
    Changed,
    /// The wait ran out; nothing happened.
    Quiet,
}

/// One IMAP session.
pub struct Imap<S> {
    io: BufReader<S>,
    tag: u32,
    timeout: Duration,
    capabilities: Vec<String>,
    /// An unsolicited STATUS came (NOTIFY: another mailbox changed) and
    /// was not yet taken.
    notified: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Imap<S> {
    /// Reads the greeting.
    pub(crate) async fn greet(stream: S, timeout: Duration) -> Result<Self, ImapError> {
        let mut imap = Self::resume(stream, timeout);
        let greeting = imap.response().await?;
        let upper = greeting.text.to_ascii_uppercase();
        if upper.starts_with("* BYE") {
            return Err(ImapError::Bye(greeting.text));
        }
        if !upper.starts_with("* OK") && !upper.starts_with("* PREAUTH") {
            return Err(ImapError::Protocol(format!("greeting: {}", greeting.text)));
        }
        imap.learn_capabilities(&greeting.text);
        Ok(imap)
    }

    /// Continues a session on an upgraded stream (after `STARTTLS`).
    pub(crate) fn resume(stream: S, timeout: Duration) -> Self {
        Self {
            io: BufReader::with_capacity(BUFFER, stream),
            tag: 0,
            timeout,
            capabilities: Vec::new(),
            notified: false,
        }
    }

    /// Whether the server announced `name`.
    pub fn has(&self, name: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(name))
    }

    /// Asks for the capabilities (unless the greeting listed them).
    pub async fn capabilities(&mut self) -> Result<(), ImapError> {
        if self.capabilities.is_empty() {
            let responses = self.run("CAPABILITY").await?;
            for response in responses {
                self.learn_capabilities(&response.text);
            }
        }
        Ok(())
    }

    fn learn_capabilities(&mut self, text: &str) {
        let upper = text.to_ascii_uppercase();
        let list = if let Some(at) = upper.find("[CAPABILITY ") {
            let rest = &text[at + 12..];
            &rest[..rest.find(']').unwrap_or(rest.len())]
        } else if let Some(rest) = upper.strip_prefix("* CAPABILITY ") {
            &text[text.len() - rest.len()..]
        } else {
            return;
        };
        self.capabilities = list.split_ascii_whitespace().map(str::to_owned).collect();
    }

    /// Asks for `STARTTLS` and hands back the stream to upgrade. Bytes the
    /// server sent ahead of the handshake would be an injection attempt.
    pub(crate) async fn start_tls(mut self) -> Result<S, ImapError> {
        self.capabilities().await?;
        if !self.has("STARTTLS") {
            return Err(ImapError::Protocol("server does not offer STARTTLS".into()));
        }
        self.run("STARTTLS").await?;
        if !self.io.buffer().is_empty() {
            return Err(ImapError::Protocol(
                "data after STARTTLS before the handshake".into(),
            ));
        }
        Ok(self.io.into_inner())
    }

    /// Logs in: LOGIN, or AUTHENTICATE PLAIN where LOGIN is disabled or the
    /// credentials are not plain ASCII. On a link that is not `encrypted`
    /// (an account whose TLS mode is explicitly none) a server announcing
    /// LOGINDISABLED gets no credentials at all: it is saying the link is
    /// not safe for them, and AUTHENTICATE PLAIN would send them as clearly.
    pub async fn login(
        &mut self,
        user: &str,
        password: &str,
        encrypted: bool,
    ) -> Result<(), ImapError> {
        self.capabilities().await?;
        if !encrypted && self.has("LOGINDISABLED") {
            return Err(ImapError::PlaintextLoginDisabled);
        }
        let ascii = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b));
        if !self.has("LOGINDISABLED") && ascii(user) && ascii(password) {
            self.run(&format!("LOGIN {} {}", quoted(user), quoted(password)))
                .await?;
        } else {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            if self.has("SASL-IR") {
                self.run(&format!("AUTHENTICATE PLAIN {token}")).await?;
            } else {
                self.run_with_continuation("AUTHENTICATE PLAIN", &token)
                    .await?;
            }
        }
        // Capabilities may change after login.
        self.capabilities.clear();
        self.capabilities().await
    }

    /// Opens `mailbox` read-write (so IDLE sees new mail; nothing is changed:
    /// bodies are fetched with PEEK).
    pub async fn select(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        let responses = self.run(&format!("SELECT {}", quoted(mailbox))).await?;
        let mut selected = Selected {
            uid_validity: 0,
            uid_next: None,
            exists: 0,
        };
        for response in &responses {
            if let Some(v) = response.number_after("UIDVALIDITY") {
                selected.uid_validity = u32::try_from(v).unwrap_or(0);
            }
            if let Some(n) = response.number_after("UIDNEXT") {
                selected.uid_next = u32::try_from(n).ok();
            }
            if let Some(n) = exists(response) {
                selected.exists = n;
            }
        }
        if selected.uid_validity == 0 {
            return Err(ImapError::Protocol("SELECT gave no UIDVALIDITY".into()));
        }
        Ok(selected)
    }

    /// A mailbox other than the selected one, without selecting it:
    /// `STATUS (UIDVALIDITY UIDNEXT)`. A server that leaves UIDNEXT out
    /// answers `uid_next` `None`; `exists` is not asked (0).
    pub async fn status(&mut self, mailbox: &str) -> Result<Selected, ImapError> {
        let before = self.notified;
        let responses = self
            .run(&format!("STATUS {} (UIDVALIDITY UIDNEXT)", quoted(mailbox)))
            .await?;
        let (mine, others): (Vec<_>, Vec<_>) = responses
            .iter()
            .filter(|r| status_of(r).is_some())
            .partition(|r| status_of(r).is_some_and(|name| names(name, mailbox)));
        // The answer is not news; one about another mailbox is.
        self.notified = before || !others.is_empty();
        let mut status = Selected {
            uid_validity: 0,
            uid_next: None,
            exists: 0,
        };
        for response in mine {
            if let Some(v) = response.number_after("UIDVALIDITY") {
                status.uid_validity = u32::try_from(v).unwrap_or(0);
            }
            if let Some(n) = response.number_after("UIDNEXT") {
                status.uid_next = u32::try_from(n).ok();
            }
        }
        if status.uid_validity == 0 {
            return Err(ImapError::Protocol("STATUS gave no UIDVALIDITY".into()));
        }
        Ok(status)
    }

    /// UIDs above `after`, ascending (`n:*` always matches the last
    /// message, so it is filtered).
    pub(crate) async fn uids_after(&mut self, after: u32) -> Result<Vec<u32>, ImapError> {
        self.search(&format!("UID {}:*", after.saturating_add(1)))
            .await
            .map(|uids| uids.into_iter().filter(|&u| u > after).collect())
    }

    /// UIDs of messages that arrived since `day` (IMAP date, `26-Nov-2026`).
    pub(crate) async fn uids_since(&mut self, day: &str) -> Result<Vec<u32>, ImapError> {
        self.search(&format!("SINCE {day}")).await
    }

    async fn search(&mut self, criteria: &str) -> Result<Vec<u32>, ImapError> {
        let responses = self.run(&format!("UID SEARCH {criteria}")).await?;
        let mut uids = Vec::new();
        for response in responses {
            if let Some(rest) = strip_prefix_ci(&response.text, "* SEARCH") {
                for word in rest.split_ascii_whitespace() {
                    uids.push(
                        word.parse()
                            .map_err(|_| ImapError::Protocol(format!("SEARCH result {word:?}")))?,
                    );
                }
            }
        }
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The size of message `uid`, or `None` if it is gone.
    pub async fn size(&mut self, uid: u32) -> Result<Option<u64>, ImapError> {
        let responses = self
            .run(&format!("UID FETCH {uid} (UID RFC822.SIZE)"))
            .await?;
        Ok(fetched(&responses, uid).and_then(|r| r.number_after("RFC822.SIZE")))
    }

    /// Message `uid` (or its header), at most `max` bytes; `None` if it is
    /// gone (expunged meanwhile).
    pub async fn fetch(
        &mut self,
        uid: u32,
        part: Part,
        max: usize,
    ) -> Result<Option<Vec<u8>>, ImapError> {
        let section = match part {
            Part::Whole => "BODY.PEEK[]",
            Part::Header => "BODY.PEEK[HEADER]",
        };
        let responses = self
            .run_limited(&format!("UID FETCH {uid} (UID {section})"), max)
            .await?;
        Ok(fetched(&responses, uid).map(|r| r.literals.first().cloned().unwrap_or_default()))
    }

    /// The Message-IDs of `uids` (`None` for a message without one).
    pub(crate) async fn message_ids(
        &mut self,
        uids: &[u32],
    ) -> Result<Vec<(u32, Option<String>)>, ImapError> {
        let mut out = Vec::new();
        for chunk in uids.chunks(200) {
            let set: Vec<String> = chunk.iter().map(u32::to_string).collect();
            let responses = self
                .run(&format!(
                    "UID FETCH {} (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])",
                    set.join(",")
                ))
                .await?;
            for response in responses.iter().filter(|r| is_fetch(r)) {
                let Some(uid) = response
                    .number_after("UID")
                    .and_then(|u| u32::try_from(u).ok())
                else {
                    continue;
                };
                let header = response
                    .literals
                    .first()
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                out.push((uid, message_id(header)));
            }
        }
        Ok(out)
    }

    /// Asks to be told of new and expunged mail in `mailboxes` (STATUS
    /// responses, at any time: [`Self::take_notified`]) besides the
    /// selected mailbox's (EXISTS), RFC 5465. A server without NOTIFY, or
    /// one that refuses these mailboxes, answers an error and the caller
    /// polls instead.
    pub async fn notify(&mut self, mailboxes: &[String]) -> Result<(), ImapError> {
        let names: Vec<String> = mailboxes.iter().map(|m| quoted(m)).collect();
        self.run(&format!(
            "NOTIFY SET (selected (MessageNew MessageExpunge)) (mailboxes {} (MessageNew MessageExpunge))",
            names.join(" ")
        ))
        .await
        .map(|_| ())
    }

    /// Whether another mailbox changed since last asked (NOTIFY).
    pub fn take_notified(&mut self) -> bool {
        std::mem::take(&mut self.notified)
    }

    /// Waits in IDLE up to `wait` for the mailbox to change.
    pub async fn idle(&mut self, wait: Duration) -> Result<Woken, ImapError> {
        let tag = self.next_tag();
        self.send(&format!("{tag} IDLE")).await?;
        let first = self.response().await?;
        if !first.text.starts_with('+') {
            return Err(self.refusal("IDLE", &tag, first));
        }
        let mut woken = Woken::Quiet;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.response_untimed()).await;
            match next {
                Err(_) => break,
                Ok(response) => {
                    let response = response?;
                    check_bye(&response)?;
                    if exists(&response).is_some() {
                        woken = Woken::Changed;
                        break;
                    }
                    if status_of(&response).is_some() {
                        self.notified = true;
                        break;
                    }
                }
            }
        }
        self.send("DONE").await?;
        for response in self.until_tagged("IDLE", &tag).await? {
            if exists(&response).is_some() {
                woken = Woken::Changed;
            }
        }
        Ok(woken)
    }

    /// NOOP, for servers without IDLE: whether the mailbox grew.
    pub async fn noop(&mut self) -> Result<Woken, ImapError> {
        let responses = self.run("NOOP").await?;
        Ok(if responses.iter().any(|r| exists(r).is_some()) {
            Woken::Changed
        } else {
            Woken::Quiet
        })
    }

    /// Ends the session politely.
    pub async fn logout(&mut self) -> Result<(), ImapError> {
        self.run("LOGOUT").await.map(|_| ()).or_else(|e| match e {
            ImapError::Bye(_) => Ok(()),
            e => Err(e),
        })
    }

    fn next_tag(&mut self) -> String {
        self.tag += 1;
        format!("p{}", self.tag)
    }

    async fn send(&mut self, line: &str) -> Result<(), ImapError> {
        let stream = self.io.get_mut();
        let write = async {
            stream.write_all(line.as_bytes()).await?;
            stream.write_all(b"\r\n").await?;
            stream.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| ImapError::Timeout(self.timeout))??;
        Ok(())
    }

    async fn run(&mut self, command: &str) -> Result<Vec<Response>, ImapError> {
        self.run_limited(command, MAX_LINE).await
    }

    /// Runs a command whose literals may be up to `max` bytes each.
    async fn run_limited(&mut self, command: &str, max: usize) -> Result<Vec<Response>, ImapError> {
        let tag = self.next_tag();
        self.send(&format!("{tag} {command}")).await?;
        let verb = command.split(' ').take(2).collect::<Vec<_>>().join(" ");
        self.until_tagged_limited(&verb, &tag, max).await
    }

    async fn run_with_continuation(
        &mut self,
        command: &str,
        reply: &str,
    ) -> Result<Vec<Response>, ImapError> {
        let tag = self.next_tag();
        self.send(&format!("{tag} {command}")).await?;
        let first = self.response().await?;
        if !first.text.starts_with('+') {
            return Err(self.refusal(command, &tag, first));
        }
        self.send(reply).await?;
        self.until_tagged(command, &tag).await
    }

    fn refusal(&self, command: &str, tag: &str, response: Response) -> ImapError {
        if response.text.starts_with(tag) {
            ImapError::Refused {
                command: command.to_owned(),
                line: response.text,
            }
        } else {
            ImapError::Protocol(format!(
                "{command}: expected a continuation, got {}",
                response.text
            ))
        }
    }

    async fn until_tagged(&mut self, command: &str, tag: &str) -> Result<Vec<Response>, ImapError> {
        self.until_tagged_limited(command, tag, MAX_LINE).await
    }

    async fn until_tagged_limited(
        &mut self,
        command: &str,
        tag: &str,
        max: usize,
    ) -> Result<Vec<Response>, ImapError> {
        let mut untagged = Vec::new();
        loop {
            let response = tokio::time::timeout(self.timeout, self.read(max))
                .await
                .map_err(|_| ImapError::Timeout(self.timeout))??;
            if let Some(status) = response
                .text
                .strip_prefix(tag)
                .and_then(|r| r.strip_prefix(' '))
            {
                if strip_prefix_ci(status, "OK").is_some() {
                    return Ok(untagged);
                }
                return Err(ImapError::Refused {
                    command: command.to_owned(),
                    line: response.text,
                });
            }
            if response.text.starts_with('*') {
                check_bye(&response)?;
                if status_of(&response).is_some() {
                    // News of another mailbox (NOTIFY) may come with any
                    // command's answer; `status` sorts out its own.
                    self.notified = true;
                }
                untagged.push(response);
            } else if !response.text.starts_with('+') {
                return Err(ImapError::Protocol(format!(
                    "unexpected line: {}",
                    response.text
                )));
            }
        }
    }

    async fn response(&mut self) -> Result<Response, ImapError> {
        tokio::time::timeout(self.timeout, self.read(MAX_LINE))
            .await
            .map_err(|_| ImapError::Timeout(self.timeout))?
    }

    async fn response_untimed(&mut self) -> Result<Response, ImapError> {
        self.read(MAX_LINE).await
    }

    /// One response with its literals, each at most `max` bytes.
    async fn read(&mut self, max: usize) -> Result<Response, ImapError> {
        let mut response = Response::default();
        loop {
            let mut line = Vec::new();
            let n = (&mut self.io)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)
                .await?;
            if n == 0 {
                return Err(ImapError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
            if !line.ends_with(b"\n") {
                return Err(ImapError::Protocol("response line too long".into()));
            }
            let text = String::from_utf8_lossy(trim_eol(&line)).into_owned();
            match literal_size(&text) {
                Some(size) if size > max => {
                    return Err(ImapError::Protocol(format!(
                        "a literal of {size} bytes (at most {max} expected)"
                    )));
                }
                Some(size) => {
                    let mut literal = vec![0; size];
                    self.io.read_exact(&mut literal).await?;
                    response.text.push_str(&text);
                    response.literals.push(literal);
                }
                None => {
                    response.text.push_str(&text);
                    return Ok(response);
                }
            }
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `{123}` (or `{123+}`) at the end of a line announces a literal.
fn literal_size(text: &str) -> Option<usize> {
    let inner = text.strip_suffix('}')?;
    let open = inner.rfind('{')?;
    inner[open + 1..].trim_end_matches('+').parse().ok()
}

/// The mailbox a `* STATUS` response names, as sent (quoted or not).
fn status_of(response: &Response) -> Option<&str> {
    let rest = strip_prefix_ci(&response.text, "* STATUS ")?;
    Some(match rest.strip_prefix('"') {
        Some(quoted) => {
            let mut end = 0;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            &quoted[..end]
        }
        None => rest.split(' ').next().unwrap_or(""),
    })
}

/// Whether `sent` (a STATUS response's name, still escaped if it was
/// quoted) names `mailbox`; INBOX in any case.
fn names(sent: &str, mailbox: &str) -> bool {
    let unescaped = sent.replace("\\\"", "\"").replace("\\\\", "\\");
    unescaped == mailbox
        || (unescaped.eq_ignore_ascii_case("INBOX") && mailbox.eq_ignore_ascii_case("INBOX"))
}

fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.get(..prefix.len())
        .filter(|head| head.eq_ignore_ascii_case(prefix))
        .map(|_| &text[prefix.len()..])
}

fn check_bye(response: &Response) -> Result<(), ImapError> {
    match strip_prefix_ci(&response.text, "* BYE") {
        Some(_) => Err(ImapError::Bye(response.text.clone())),
        None => Ok(()),
    }
}

/// `* 12 EXISTS` → 12.
fn exists(response: &Response) -> Option<u32> {
    let rest = response.text.strip_prefix("* ")?;
    let (n, word) = rest.split_once(' ')?;
    word.trim()
        .eq_ignore_ascii_case("EXISTS")
        .then(|| n.parse().ok())
        .flatten()
}

fn is_fetch(response: &Response) -> bool {
    response
        .text
        .strip_prefix("* ")
        .and_then(|rest| rest.split_once(' '))
        .is_some_and(|(n, rest)| {
            n.parse::<u32>().is_ok() && strip_prefix_ci(rest, "FETCH").is_some()
        })
}

/// The FETCH response for `uid` among `responses`.
fn fetched(responses: &[Response], uid: u32) -> Option<&Response> {
    responses
        .iter()
        .filter(|r| is_fetch(r))
        .find(|r| r.number_after("UID") == Some(u64::from(uid)))
}

/// The Message-ID from a `Message-ID:` header field (unfolded), brackets
/// removed.
pub fn message_id(header: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(header);
    let mut value = None::<String>;
    for line in text.split('\n') {
        let line = line.trim_end_matches('\r');
        if let Some(v) = &mut value {
            if line.starts_with([' ', '\t']) {
                v.push_str(line.trim());
                continue;
            }
            break;
        }
        if let Some((name, rest)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("message-id")
        {
            value = Some(rest.trim().to_owned());
        }
    }
    let id = value?
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim()
        .to_owned();
    (!id.is_empty()).then_some(id)
}

/// An IMAP quoted string.
fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn session(
        script: &'static [u8],
    ) -> (Imap<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        server.write_all(script).await.unwrap();
        let imap = Imap::greet(client, Duration::from_secs(2)).await.unwrap();
        (imap, server)
    }

    #[tokio::test]
    async fn select_search_and_fetch_read_literals() {
        let (mut imap, _server) = session(
            b"* OK [CAPABILITY IMAP4rev1 IDLE] ready\r\n\
              * 3 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\n* OK [UIDNEXT 12] next\r\np1 OK [READ-WRITE] done\r\n\
              * SEARCH 9 11\r\np2 OK done\r\n\
              * 3 FETCH (UID 11 BODY[] {19}\r\nSubject: hi\r\n\r\nyo\r\n)\r\np3 OK done\r\n\
              * 1 FETCH (UID 9 BODY[HEADER.FIELDS (MESSAGE-ID)] {26}\r\nMessage-ID:\r\n <a@b.c>\r\n\r\n)\r\np4 OK\r\n",
        )
        .await;
        assert!(imap.has("idle"));
        let selected = imap.select("INBOX").await.unwrap();
        assert_eq!(
            selected,
            Selected {
                uid_validity: 77,
                uid_next: Some(12),
                exists: 3
            }
        );
        assert_eq!(
            imap.uids_after(9).await.unwrap(),
            vec![11],
            "9:* is filtered"
        );
        let body = imap.fetch(11, Part::Whole, 100).await.unwrap().unwrap();
        assert_eq!(body, b"Subject: hi\r\n\r\nyo\r\n");
        assert_eq!(
            imap.message_ids(&[9]).await.unwrap(),
            vec![(9, Some("a@b.c".into()))]
        );
    }

    #[tokio::test]
    async fn status_reads_another_mailbox_and_a_missing_one_is_refused() {
        let (mut imap, _server) = session(
            b"* OK [CAPABILITY IMAP4rev1] ready\r\n\
              * STATUS \"Work\" (UIDVALIDITY 5 UIDNEXT 40)\r\np1 OK done\r\n\
              p2 NO [NONEXISTENT] Mailbox doesn't exist: Gone\r\n",
        )
        .await;
        assert_eq!(
            imap.status("Work").await.unwrap(),
            Selected {
                uid_validity: 5,
                uid_next: Some(40),
                exists: 0
            }
        );
        assert!(matches!(
            imap.status("Gone").await,
            Err(ImapError::Refused { .. })
        ));
    }

    #[tokio::test]
    async fn news_of_another_mailbox_wakes_an_idle_and_is_taken_once() {
        let (mut imap, _server) = session(
            b"* OK [CAPABILITY IMAP4rev1 IDLE NOTIFY] ready\r\n\
              p1 OK done\r\n\
              + idling\r\n* STATUS \"Work \\\"x\\\"\" (UIDNEXT 41 MESSAGES 3)\r\np2 OK done\r\n\
              * STATUS Work (UIDVALIDITY 5 UIDNEXT 41)\r\n* STATUS INBOX (UIDNEXT 9)\r\np3 OK done\r\n",
        )
        .await;
        imap.notify(&["Work \"x\"".to_owned()]).await.unwrap();
        assert!(!imap.take_notified());
        assert_eq!(
            imap.idle(Duration::from_secs(5)).await.unwrap(),
            Woken::Quiet
        );
        assert!(imap.take_notified(), "a STATUS woke the IDLE");
        assert!(!imap.take_notified(), "taken once");
        let work = imap.status("Work").await.unwrap();
        assert_eq!((work.uid_validity, work.uid_next), (5, Some(41)));
        assert!(imap.take_notified(), "INBOX's STATUS with it is news");
    }

    #[test]
    fn status_responses_name_their_mailbox_quoted_or_not() {
        let named = |text: &str| {
            status_of(&Response {
                text: text.to_owned(),
                literals: Vec::new(),
            })
            .map(str::to_owned)
        };
        assert_eq!(named("* STATUS Work (UIDNEXT 4)").as_deref(), Some("Work"));
        let quoted = named("* STATUS \"A \\\"b\\\" c\" (UIDNEXT 4)").unwrap();
        assert!(names(&quoted, "A \"b\" c"), "{quoted}");
        assert!(names("inbox", "INBOX"));
        assert!(!names("Work", "work"), "only INBOX is case-blind");
        assert_eq!(named("* 3 EXISTS"), None);
    }

    /// What the client wrote, once the server side has read it all.
    async fn written(mut server: tokio::io::DuplexStream) -> String {
        let mut seen = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            let mut buf = [0u8; 256];
            while let Ok(n) = tokio::io::AsyncReadExt::read(&mut server, &mut buf).await {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        String::from_utf8(seen).unwrap()
    }

    #[tokio::test]
    async fn no_credentials_go_over_a_plain_link_the_server_disables_login_on() {
        let (mut imap, server) =
            session(b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED SASL-IR AUTH=PLAIN] hi\r\n").await;
        assert!(matches!(
            imap.login("u", "secret", false).await,
            Err(ImapError::PlaintextLoginDisabled)
        ));
        drop(imap);
        let sent = written(server).await;
        assert!(!sent.contains("secret"), "{sent}");
        let plain = base64::engine::general_purpose::STANDARD.encode("\0u\0secret");
        assert!(!sent.contains(&plain), "{sent}");
        assert_eq!(sent, "", "nothing at all was sent");
    }

    #[tokio::test]
    async fn login_uses_authenticate_plain_where_login_is_disabled_or_not_ascii() {
        let plain = base64::engine::general_purpose::STANDARD.encode("\0u\0p");
        // LOGINDISABLED with SASL-IR: the initial response goes inline.
        let (mut imap, server) = session(
            b"* OK [CAPABILITY IMAP4rev1 LOGINDISABLED SASL-IR AUTH=PLAIN] hi\r\n\
              p1 OK authenticated\r\n* CAPABILITY IMAP4rev1 IDLE\r\np2 OK\r\n",
        )
        .await;
        imap.login("u", "p", true).await.unwrap();
        assert!(imap.has("IDLE"), "capabilities are asked again after login");
        drop(imap);
        let sent = written(server).await;
        assert!(
            sent.starts_with(&format!("p1 AUTHENTICATE PLAIN {plain}\r\n")),
            "{sent}"
        );

        // A non-ASCII password without SASL-IR: the response follows the `+`.
        let (mut imap, server) = session(
            b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n+ \r\np1 OK yes\r\n\
              * CAPABILITY IMAP4rev1\r\np2 OK\r\n",
        )
        .await;
        imap.login("u", "pässwörd", true).await.unwrap();
        drop(imap);
        let sent = written(server).await;
        let token = base64::engine::general_purpose::STANDARD.encode("\0u\0pässwörd");
        assert!(
            sent.starts_with(&format!("p1 AUTHENTICATE PLAIN\r\n{token}\r\n")),
            "{sent}"
        );

        // Plain ASCII: LOGIN with quoted strings.
        let (mut imap, server) = session(
            b"* OK [CAPABILITY IMAP4rev1] hi\r\np1 OK\r\n* CAPABILITY IMAP4rev1\r\np2 OK\r\n",
        )
        .await;
        imap.login("u", "p\"q", false).await.unwrap();
        drop(imap);
        assert!(
            written(server)
                .await
                .starts_with("p1 LOGIN \"u\" \"p\\\"q\"\r\n")
        );
    }

    #[tokio::test]
    async fn refusals_hangups_and_nonsense_are_errors() {
        let (mut imap, _server) =
            session(b"* OK hi\r\np1 NO [AUTHENTICATIONFAILED] nope\r\n").await;
        imap.capabilities = vec!["IMAP4rev1".into()];
        assert!(matches!(
            imap.login("u", "p", false).await,
            Err(ImapError::Refused { .. })
        ));

        let (mut imap, server) =
            session(b"* OK hi\r\n* 1 FETCH (UID 5 BODY[] {500}\r\nhalf a mess").await;
        drop(server);
        assert!(matches!(
            imap.fetch(5, Part::Whole, 1_000).await,
            Err(ImapError::Io(_))
        ));

        let (mut imap, _server) =
            session(b"* OK hi\r\n* 1 FETCH (UID 5 BODY[] {5000000}\r\n").await;
        assert!(matches!(
            imap.fetch(5, Part::Whole, 1_000).await,
            Err(ImapError::Protocol(_))
        ));

        let (mut imap, _server) = session(b"* OK hi\r\nHTTP/1.1 400 Bad Request\r\n").await;
        assert!(matches!(imap.noop().await, Err(ImapError::Protocol(_))));

        let (mut imap, _server) = session(b"* OK hi\r\n* BYE shutting down\r\n").await;
        assert!(matches!(imap.noop().await, Err(ImapError::Bye(_))));

        let (client, mut server) = tokio::io::duplex(1024);
        server.write_all(b"GARBAGE\r\n").await.unwrap();
        assert!(Imap::greet(client, Duration::from_secs(1)).await.is_err());

        let (mut imap, _server) = session(b"* OK hi\r\n* SEARCH 1 x\r\np1 OK\r\n").await;
        assert!(matches!(
            imap.uids_after(0).await,
            Err(ImapError::Protocol(_))
        ));

        let (mut imap, _server) = session(b"* OK hi\r\n* OK [UIDNEXT 4]\r\np1 OK\r\n").await;
        assert!(imap.select("INBOX").await.is_err(), "no UIDVALIDITY");
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let (mut imap, _server) = session(b"* OK hi\r\n").await;
        imap.timeout = Duration::from_millis(50);
        assert!(matches!(imap.noop().await, Err(ImapError::Timeout(_))));
    }

    #[tokio::test]
    async fn idle_wakes_on_exists_and_ends_with_done() {
        let (mut imap, mut server) = session(b"* OK hi\r\n+ idling\r\n").await;
        let task = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            server.write_all(b"* 4 EXISTS\r\n").await.unwrap();
            let mut buf = vec![0; 64];
            let mut seen = Vec::new();
            while !String::from_utf8_lossy(&seen).contains("DONE") {
                let n = tokio::io::AsyncReadExt::read(&mut server, &mut buf)
                    .await
                    .unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            server.write_all(b"p1 OK idle done\r\n").await.unwrap();
            server
        });
        assert_eq!(
            imap.idle(Duration::from_secs(5)).await.unwrap(),
            Woken::Changed
        );
        task.await.unwrap();
    }

    #[test]
    fn helpers_parse_what_servers_send() {
        assert_eq!(literal_size("* 1 FETCH (BODY[] {42}"), Some(42));
        assert_eq!(literal_size("* 1 FETCH (BODY[] {42+}"), Some(42));
        assert_eq!(literal_size("* OK {x}"), None);
        assert_eq!(quoted(r#"p"a\ss"#), r#""p\"a\\ss""#);
        assert_eq!(
            message_id(b"Subject: x\r\nmessage-id: <z@y>\r\n"),
            Some("z@y".into())
        );
        assert_eq!(message_id(b"Message-ID: <>\r\n"), None);
        let r = Response {
            text: "* 1 FETCH (RFC822.SIZE 10 UID 7)".into(),
            literals: vec![],
        };
        assert_eq!(r.number_after("UID"), Some(7));
        assert_eq!(r.number_after("RFC822.SIZE"), Some(10));
    }
}
