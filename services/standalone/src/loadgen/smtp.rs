//! Constant-rate SMTP injection. Mail `i` is due at `i / rate` seconds
//! after the start, whatever happened to earlier mail (open loop); each of
//! the connections takes every `connections`-th mail. How late a mail left
//! against its due time is recorded too, so a sender that fell behind is
//! visible instead of hiding the platform's queueing.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// What to send.
pub(crate) struct Plan {
    pub(crate) server: SocketAddr,
    pub(crate) rate: u32,
    pub(crate) seconds: u32,
    pub(crate) connections: usize,
    /// Mail `i` goes to `recipients[i % len]`.
    pub(crate) recipients: Vec<String>,
    /// In every subject, so this run's mail is told apart.
    pub(crate) tag: String,
}

/// What the server did with one mail.
enum Sent {
    /// `250` after DATA: when DATA ended and when the 250 came (ns).
    Accepted { data_end_ns: u64, accepted_ns: u64 },
    /// Refused with this reply (at MAIL, RCPT, DATA or after it).
    Refused { code: u16, text: String },
}

impl Plan {
    fn total(&self) -> usize {
        self.rate as usize * self.seconds as usize
    }
}

/// One mail the server accepted.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepted {
    /// Unix time (ns) the end of DATA was written.
    pub(crate) data_end_ns: u64,
    /// Unix time (ns) the 250 was read.
    pub(crate) accepted_ns: u64,
    /// How long after its due time the mail's transaction began, µs.
    pub(crate) late_us: u64,
}

/// What the injection did.
pub(crate) struct Outcome {
    /// By mail number; `None` when the server did not accept it.
    pub(crate) mails: Vec<Option<Accepted>>,
    /// Replies other than 250, and connection failures, with a count each.
    pub(crate) refusals: std::collections::BTreeMap<String, usize>,
    /// From the first due time to the last 250.
    pub(crate) wall: Duration,
}

impl Outcome {
    pub(crate) fn accepted(&self) -> usize {
        self.mails.iter().flatten().count()
    }
}

/// Unix time in nanoseconds: the helper processes stamp arrivals with the
/// same clock.
pub(crate) fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Sends the plan's mail and reports what was accepted.
pub(crate) async fn inject(plan: &Plan) -> anyhow::Result<Outcome> {
    anyhow::ensure!(!plan.recipients.is_empty(), "no recipients");
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let mut tasks = tokio::task::JoinSet::new();
    for lane in 0..plan.connections {
        let mails: Vec<(usize, String)> = (lane..plan.total())
            .step_by(plan.connections)
            .map(|i| (i, plan.recipients[i % plan.recipients.len()].clone()))
            .collect();
        let (server, rate, tag) = (plan.server, plan.rate, plan.tag.clone());
        tasks.spawn(async move { lane_send(server, start, rate, &tag, mails).await });
    }
    let mut outcome = Outcome {
        mails: vec![None; plan.total()],
        refusals: std::collections::BTreeMap::new(),
        wall: Duration::ZERO,
    };
    while let Some(done) = tasks.join_next().await {
        let (sent, refusals) = done.context("SMTP lane")?;
        for (i, accepted) in sent {
            outcome.mails[i] = Some(accepted);
        }
        for refusal in refusals {
            *outcome.refusals.entry(refusal).or_default() += 1;
        }
    }
    outcome.wall = start.elapsed();
    Ok(outcome)
}

type LaneResult = (Vec<(usize, Accepted)>, Vec<String>);

async fn lane_send(
    server: SocketAddr,
    start: tokio::time::Instant,
    rate: u32,
    tag: &str,
    mails: Vec<(usize, String)>,
) -> LaneResult {
    let mut accepted = Vec::with_capacity(mails.len());
    let mut refusals = Vec::new();
    let mut connection: Option<Connection> = None;
    for (i, to) in mails {
        let due = start + Duration::from_nanos(i as u64 * 1_000_000_000 / u64::from(rate));
        tokio::time::sleep_until(due).await;
        let late_us = u64::try_from(due.elapsed().as_micros()).unwrap_or(u64::MAX);
        if connection.is_none() {
            match Connection::open(server).await {
                Ok(c) => connection = Some(c),
                Err(e) => {
                    refusals.push(format!("connect: {e}"));
                    continue;
                }
            }
        }
        let Some(c) = connection.as_mut() else {
            continue;
        };
        match c.send(tag, i, &to).await {
            Ok(Sent::Accepted {
                data_end_ns,
                accepted_ns,
            }) => accepted.push((
                i,
                Accepted {
                    data_end_ns,
                    accepted_ns,
                    late_us,
                },
            )),
            Ok(Sent::Refused { code, text }) => refusals.push(format!("{code} {text}")),
            Err(e) => {
                refusals.push(format!("connection: {e}"));
                connection = None;
            }
        }
    }
    if let Some(mut c) = connection {
        let _ = c.quit().await;
    }
    (accepted, refusals)
}

struct Connection {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Connection {
    async fn open(server: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(server).await?;
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        let mut c = Self {
            reader: BufReader::new(read),
            writer,
        };
        expect(c.reply().await?, 220)?;
        c.writer.write_all(b"EHLO loadgen.example\r\n").await?;
        expect(c.reply().await?, 250)?;
        Ok(c)
    }

    /// One mail, MAIL/RCPT/DATA pipelined; the times of the end of DATA
    /// and of the 250, or the server's refusal.
    async fn send(&mut self, tag: &str, i: usize, to: &str) -> anyhow::Result<Sent> {
        let envelope = format!("MAIL FROM:<loadgen@example.net>\r\nRCPT TO:<{to}>\r\nDATA\r\n");
        self.writer.write_all(envelope.as_bytes()).await?;
        let mail = self.reply().await?;
        let rcpt = self.reply().await?;
        let data = self.reply().await?;
        if data.0 != 354 {
            // RSET so the next mail starts clean; its reply is read here.
            self.writer.write_all(b"RSET\r\n").await?;
            self.reply().await?;
            let refused = [mail, rcpt, data]
                .into_iter()
                .find(|(code, _)| !matches!(code, 250 | 354))
                .unwrap_or((0, String::new()));
            return Ok(Sent::Refused {
                code: refused.0,
                text: refused.1,
            });
        }
        self.writer
            .write_all(message(tag, i, to).as_bytes())
            .await?;
        let data_end_ns = now_ns();
        let (code, text) = self.reply().await?;
        let accepted_ns = now_ns();
        Ok(if code == 250 {
            Sent::Accepted {
                data_end_ns,
                accepted_ns,
            }
        } else {
            Sent::Refused { code, text }
        })
    }

    async fn quit(&mut self) -> anyhow::Result<()> {
        self.writer.write_all(b"QUIT\r\n").await?;
        self.reply().await?;
        Ok(())
    }

    /// A reply, its continuation lines joined.
    async fn reply(&mut self) -> anyhow::Result<(u16, String)> {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).await? == 0 {
                anyhow::bail!("the server closed the connection");
            }
            let code = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .with_context(|| format!("not an SMTP reply: {line:?}"))?;
            text.push_str(line.get(4..).unwrap_or_default().trim_end());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, text));
            }
            text.push(' ');
        }
    }
}

fn expect((code, text): (u16, String), want: u16) -> anyhow::Result<()> {
    anyhow::ensure!(code == want, "expected {want}, got {code} {text}");
    Ok(())
}

/// A plain mail of about 2 KiB whose subject names the run and the mail.
fn message(tag: &str, i: usize, to: &str) -> String {
    let line = "The quarterly figures are attached; please review them before Friday.\r\n";
    format!(
        "From: Load Generator <loadgen@example.net>\r\nTo: <{to}>\r\nSubject: {tag} {i}\r\n\
         Message-ID: <{tag}.{i}@loadgen.example>\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}.\r\n",
        line.repeat(26)
    )
}
