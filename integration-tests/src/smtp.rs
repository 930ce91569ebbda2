//! A small SMTP client for tests that send a lot of mail or must retry
//! through an outage (swaks, a process per mail, is too slow for that).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

/// Sends `raw` (CRLF lines, no terminating dot) from `from` to `to`;
/// succeeds only on the server's 250 for the data.
pub async fn send(server: SocketAddr, from: &str, to: &str, raw: &str) -> anyhow::Result<()> {
    let stream = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(server),
    )
    .await
    .context("connect timed out")??;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut step = async |command: Option<String>, want: u16| -> anyhow::Result<()> {
        if let Some(command) = command {
            write.write_all(command.as_bytes()).await?;
        }
        let reply = tokio::time::timeout(Duration::from_secs(30), reply(&mut read))
            .await
            .context("no reply within 30 s")??;
        anyhow::ensure!(
            reply.0 == want,
            "wanted {want}, got {} {}",
            reply.0,
            reply.1
        );
        Ok(())
    };
    step(None, 220).await?;
    step(Some("EHLO test.example\r\n".to_owned()), 250).await?;
    step(Some(format!("MAIL FROM:<{from}>\r\n")), 250).await?;
    step(Some(format!("RCPT TO:<{to}>\r\n")), 250).await?;
    step(Some("DATA\r\n".to_owned()), 354).await?;
    let mut data = raw.replace("\r\n.", "\r\n..");
    if !data.ends_with("\r\n") {
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    step(Some(data), 250).await?;
    let _ = step(Some("QUIT\r\n".to_owned()), 221).await;
    Ok(())
}

async fn reply(
    read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> anyhow::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        anyhow::ensure!(read.read_line(&mut line).await? > 0, "connection closed");
        let code = line
            .get(..3)
            .and_then(|c| c.parse().ok())
            .with_context(|| format!("not an SMTP reply: {line:?}"))?;
        text.push_str(line.get(4..).unwrap_or_default().trim_end());
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok((code, text));
        }
    }
}

/// Sends `raw` from boss@example.net to `to` with swaks, the standard SMTP
/// client; fails unless the server answered 250 to the data.
pub async fn swaks(server: SocketAddr, to: &str, raw: &[u8]) -> anyhow::Result<()> {
    swaks_with(server, to, raw, &[]).await
}

/// The same with more swaks arguments (`--local-interface`, `--tls`,
/// `--auth`, …).
pub async fn swaks_with(
    server: SocketAddr,
    to: &str,
    raw: &[u8],
    extra: &[&str],
) -> anyhow::Result<()> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), raw)?;
    let output = tokio::process::Command::new("swaks")
        .args([
            "--server",
            &server.to_string(),
            "--from",
            "boss@example.net",
        ])
        .args(["--to", to, "--data", &format!("@{}", file.path().display())])
        .args(extra)
        .kill_on_drop(true)
        .output()
        .await
        .context("swaks (installed by scripts/provision.sh)")?;
    let transcript = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success() && transcript.contains("250 2.0.0"),
        "swaks: {transcript}"
    );
    Ok(())
}

/// One SMTP/LMTP conversation, command by command, from a chosen local
/// address (loopback has all of 127/8): what a hostile client or a
/// particular relay would send, and every reply.
pub struct Conversation {
    read: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
}

impl Conversation {
    /// Connects from `local` (any address when `None`) and reads the greeting.
    pub async fn open(
        server: SocketAddr,
        local: Option<std::net::IpAddr>,
    ) -> anyhow::Result<(Self, (u16, String))> {
        let socket = tokio::net::TcpSocket::new_v4()?;
        if let Some(local) = local {
            socket.bind(SocketAddr::new(local, 0))?;
        }
        let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(server))
            .await
            .context("connect timed out")??;
        let (read, write) = stream.into_split();
        let mut conversation = Self {
            read: BufReader::new(read),
            write,
        };
        let greeting = conversation.reply().await?;
        Ok((conversation, greeting))
    }

    /// Sends one command line (CRLF added) and reads its reply.
    pub async fn say(&mut self, command: &str) -> anyhow::Result<(u16, String)> {
        self.write
            .write_all(format!("{command}\r\n").as_bytes())
            .await?;
        self.reply().await
    }

    /// Sends a message body (dot-stuffed, ended) after a 354 and reads one reply.
    pub async fn data(&mut self, raw: &str) -> anyhow::Result<(u16, String)> {
        let mut data = raw.replace("\r\n.", "\r\n..");
        if !data.ends_with("\r\n") {
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        self.write.write_all(data.as_bytes()).await?;
        self.reply().await
    }

    /// The next reply.
    pub async fn reply(&mut self) -> anyhow::Result<(u16, String)> {
        tokio::time::timeout(Duration::from_secs(30), reply(&mut self.read))
            .await
            .context("no reply within 30 s")?
    }
}
