//! `pushmail device ls | read | reply | send`: the demo device's mailbox,
//! through the gateway's device mailbox API (`docs/device-protocol.md`,
//! "Mailbox") with the device's token, so a newcomer can try reading and
//! answering mail against `make run` the way a phone would.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use pushmail_common::backoff::Backoff;
use pushmail_device::fetch::{self, Fetched, TimedOut};
use serde_json::{Value, json};

/// Bytes per upload chunk: small enough for a phone's flaky link.
const CHUNK: usize = 256 * 1024;
/// How long any one request may take (a send waits for the provider's
/// submission server; the gateway gives the mailbox service 120 s).
const WAIT: Duration = Duration::from_secs(130);
/// Failures in a row a chunk or a send is retried through.
const ATTEMPTS: u32 = 5;
/// How long between those retries.
const RETRY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(8));

/// The mailbox commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum MailCommand {
    /// List a folder's newest mail (the inbox unless --folder names one).
    Ls {
        /// The account (its id, as the portal shows it).
        #[arg(long)]
        account: String,
        /// A folder's name (e.g. Sent); default: the inbox.
        #[arg(long)]
        folder: Option<String>,
        /// How many messages.
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// Print one message (as `ls` names it) and mark it read.
    Read {
        #[arg(long)]
        account: String,
        /// The message's id.
        id: String,
    },
    /// Reply to a message: its sender (or, with --all, everyone on it).
    Reply {
        #[arg(long)]
        account: String,
        /// The message's id.
        id: String,
        /// The reply's text (the signature and the quote are added).
        #[arg(long)]
        text: String,
        /// Reply to all.
        #[arg(long)]
        all: bool,
        /// Files to attach (uploaded in resumable chunks first).
        #[arg(long)]
        attach: Vec<PathBuf>,
    },
    /// Send a new message.
    Send {
        #[arg(long)]
        account: String,
        /// Recipients.
        #[arg(long, required = true)]
        to: Vec<String>,
        #[arg(long, default_value = "")]
        subject: String,
        #[arg(long, default_value = "")]
        text: String,
        /// Files to attach (uploaded in resumable chunks first).
        #[arg(long)]
        attach: Vec<PathBuf>,
    },
}

/// The account's mailbox at a gateway, as one device.
struct Mailbox {
    base: String,
    token: String,
}

impl Mailbox {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let answer = tokio::time::timeout(WAIT, fetch::get(&self.url(path), &self.token))
            .await
            .map_err(|_| TimedOut)??;
        ok(answer)
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        ok(fetch::post_json(&self.url(path), &self.token, body, WAIT).await?)
    }
}

/// The answer's JSON, or its error as the gateway words it.
fn ok(answer: Fetched) -> anyhow::Result<Value> {
    let json: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if !(200..300).contains(&answer.status) {
        anyhow::bail!(
            "gateway: {} {}: {}",
            answer.status,
            json["error"]["code"].as_str().unwrap_or("error"),
            json["error"]["message"]
                .as_str()
                .unwrap_or(&String::from_utf8_lossy(&answer.body))
        );
    }
    Ok(json)
}

/// Runs `command` against the gateway at `gateway` with `token`.
pub(crate) async fn run(command: MailCommand, gateway: &str, token: &str) -> anyhow::Result<()> {
    let at = |account: &str| Mailbox {
        base: format!(
            "{}/v1/accounts/{account}/mailbox",
            gateway.trim_end_matches('/')
        ),
        token: token.to_owned(),
    };
    match command {
        MailCommand::Ls {
            account,
            folder,
            limit,
        } => ls(&at(&account), folder.as_deref(), limit).await,
        MailCommand::Read { account, id } => read(&at(&account), &id).await,
        MailCommand::Reply {
            account,
            id,
            text,
            all,
            attach,
        } => {
            let kind = if all { "reply_all" } else { "reply" };
            let draft = json!({"kind": kind, "reference": id, "text": text});
            send(&at(&account), draft, &attach).await
        }
        MailCommand::Send {
            account,
            to,
            subject,
            text,
            attach,
        } => {
            let draft = json!({"kind": "new", "to": to, "subject": subject, "text": text});
            send(&at(&account), draft, &attach).await
        }
    }
}

fn address(value: &Value) -> String {
    match (value["name"].as_str(), value["address"].as_str()) {
        (Some(name), Some(address)) if !name.is_empty() => format!("{name} <{address}>"),
        (_, Some(address)) => address.to_owned(),
        _ => "(nobody)".to_owned(),
    }
}

async fn ls(mailbox: &Mailbox, name: Option<&str>, limit: u32) -> anyhow::Result<()> {
    let folders = mailbox.get("/folders").await?;
    let folder = folders["folders"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| match name {
            Some(name) => f["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case(name)),
            None => f["role"] == "inbox",
        })
        .with_context(|| format!("no folder {}", name.unwrap_or("with the inbox role")))?;
    println!(
        "{}: {} messages, {} unread",
        folder["name"].as_str().unwrap_or_default(),
        folder["total"],
        folder["unread"]
    );
    let id = folder["id"].as_str().unwrap_or_default();
    let page = mailbox
        .get(&format!("/folders/{id}/changes?window={limit}"))
        .await?;
    for message in page["added"].as_array().into_iter().flatten() {
        let unread = if message["flags"]["seen"] == true {
            ' '
        } else {
            '*'
        };
        let clip = if message["attachments"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            " 📎"
        } else {
            ""
        };
        println!(
            "{unread} {}  {}  {}{clip}",
            message["id"].as_str().unwrap_or_default(),
            address(&message["from"]),
            message["subject"].as_str().unwrap_or_default(),
        );
    }
    if page["more"] == true {
        println!("(more: --limit to list further)");
    }
    Ok(())
}

async fn read(mailbox: &Mailbox, id: &str) -> anyhow::Result<()> {
    let message = mailbox.get(&format!("/messages/{id}")).await?;
    println!("From: {}", address(&message["from"]));
    let to: Vec<String> = message["to"]
        .as_array()
        .into_iter()
        .flatten()
        .map(address)
        .collect();
    println!("To: {}", to.join(", "));
    println!(
        "Subject: {}",
        message["subject"].as_str().unwrap_or_default()
    );
    let raw = tokio::time::timeout(
        WAIT,
        fetch::get(&mailbox.url(&format!("/messages/{id}/raw")), &mailbox.token),
    )
    .await
    .map_err(|_| TimedOut)??;
    if raw.status != 200 {
        ok(raw)?;
        return Ok(());
    }
    let contents = pushmail_mime::contents(&raw.body, &pushmail_mime::Limits::default())
        .context("the message cannot be read")?;
    println!();
    println!("{}", contents.text.trim_end());
    for attachment in &contents.attachments {
        println!(
            "📎 {} ({}, {} bytes)",
            attachment.info.file_name,
            attachment.info.content_type,
            attachment.bytes.len()
        );
    }
    // Opened on the phone: read everywhere.
    let answer = fetch::post_json(
        &mailbox.url("/flags"),
        &mailbox.token,
        &json!({"ids": [id], "seen": true}),
        WAIT,
    )
    .await?;
    if answer.status != 204 {
        ok(answer)?;
    }
    Ok(())
}

/// A file's content type from its extension (the common ones a phone
/// attaches; anything else goes as bytes).
fn content_type(path: &Path) -> &'static str {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    match extension.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

/// Uploads `path` in chunks, resuming from where the gateway says the
/// upload ends when a chunk is refused; the upload's id.
async fn upload(mailbox: &Mailbox, path: &Path) -> anyhow::Result<String> {
    let bytes =
        Bytes::from(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("attachment");
    let begun = mailbox
        .post(
            "/uploads",
            &json!({"file_name": name, "content_type": content_type(path), "size": bytes.len()}),
        )
        .await?;
    let id = begun["id"].as_str().context("no upload id")?.to_owned();
    let url = mailbox.url(&format!("/uploads/{id}"));
    let mut offset = 0usize;
    let mut failures = 0;
    while offset < bytes.len() {
        let end = (offset + CHUNK).min(bytes.len());
        let chunk = bytes.slice(offset..end);
        let sent = tokio::time::timeout(
            WAIT,
            fetch::patch_chunk(&url, &mailbox.token, offset as u64, chunk),
        )
        .await
        .map_err(|_| anyhow::Error::from(TimedOut))
        .and_then(|answer| answer);
        let state = match sent {
            Ok(answer) if answer.status != 409 => {
                failures = 0;
                ok(answer)?
            }
            // Lost on the way, or not where the upload ends (an earlier
            // answer was lost): ask where it ends and go on from there.
            lost => {
                failures += 1;
                if failures >= ATTEMPTS {
                    let why = match lost {
                        Ok(answer) => ok(answer).err(),
                        Err(e) => Some(e),
                    };
                    return Err(why
                        .unwrap_or_else(|| anyhow::anyhow!("no progress"))
                        .context(format!("upload {id}: giving up after {ATTEMPTS} tries")));
                }
                tokio::time::sleep(RETRY.delay(failures)).await;
                mailbox.get(&format!("/uploads/{id}")).await?
            }
        };
        offset = usize::try_from(state["received"].as_u64().unwrap_or(0))?;
    }
    println!("uploaded {name} ({} bytes)", bytes.len());
    Ok(id)
}

/// A 409 `send_in_flight`: the same send is still being made.
fn in_flight(answer: &Fetched) -> bool {
    answer.status == 409
        && serde_json::from_slice::<Value>(&answer.body)
            .is_ok_and(|json| json["error"]["code"] == "send_in_flight")
}

async fn send(mailbox: &Mailbox, mut draft: Value, attach: &[PathBuf]) -> anyhow::Result<()> {
    let mut uploads = Vec::new();
    for path in attach {
        uploads.push(upload(mailbox, path).await?);
    }
    draft["uploads"] = json!(uploads);
    // One key for every try: the platform sends once however many of
    // them reach it.
    draft["client_send_id"] = json!(uuid::Uuid::new_v4().to_string());
    let mut failures = 0;
    let sent = loop {
        match fetch::post_json(&mailbox.url("/send"), &mailbox.token, &draft, WAIT).await {
            // Answered: sent, or refused for a reason a retry won't change.
            Ok(answer) if !in_flight(&answer) && answer.status < 500 => break ok(answer)?,
            // Lost, the platform busy, or the first try still sending.
            retry => {
                failures += 1;
                if failures >= ATTEMPTS {
                    break ok(retry?)?;
                }
                tokio::time::sleep(RETRY.delay(failures)).await;
            }
        }
    };
    println!(
        "sent {}{}",
        sent["message_id"].as_str().unwrap_or_default(),
        sent["sent_id"]
            .as_str()
            .map(|id| format!(" (copy in Sent: {id})"))
            .unwrap_or_default()
    );
    Ok(())
}
