//! A private Dovecot (IMAP, POP3, LMTP) per test: its own configuration,
//! ports, users and maildirs under a temporary directory, started in the
//! foreground and killed on drop. It can also authenticate an MTA's SMTP
//! clients ([`Options::sasl`], for [`crate::postfix::Postfix`]). The Debian
//! packages come from `scripts/packages.txt`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::free_port;

/// A test user: address and password.
#[derive(Debug, Clone)]
pub struct MailUser {
    /// Login and address.
    pub address: String,
    /// Plain-text password (test only).
    pub password: String,
}

/// How a provider's IMAP server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapProfile {
    /// Dovecot as shipped: CONDSTORE, QRESYNC, MOVE, LIST-STATUS, and
    /// special-use folders (Sent, Drafts, Trash, Junk, Archive) made at
    /// first login.
    Modern,
    /// An older server: none of those extensions offered (UIDPLUS and ID
    /// only), and no special-use attributes: roles must come from names.
    Plain,
}

impl ImapProfile {
    fn config(self) -> &'static str {
        match self {
            Self::Modern => {
                r#"namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \Trash
    auto = subscribe
  }
  mailbox Junk {
    special_use = \Junk
    auto = subscribe
  }
  mailbox Archive {
    special_use = \Archive
    auto = subscribe
  }
}
"#
            }
            Self::Plain => {
                r"namespace inbox {
  inbox = yes
  separator = /
}
protocol imap {
  imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE NAMESPACE UIDPLUS CHILDREN
}
"
            }
        }
    }
}

/// What a Dovecot offers beyond plain IMAP, POP3 and LMTP, for
/// [`Dovecot::start_with`]; the other constructors are shorthands.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options<'a> {
    /// STLS on the POP3 port and POP3S on its own, with a fresh self-signed
    /// certificate for `localhost`.
    pub tls: bool,
    /// Dovecot's push_notification OX driver posting new mail to this URL
    /// (see [`push_config`]).
    pub push: Option<&'a str>,
    /// A provider's IMAP server; `None` keeps Dovecot's own defaults.
    pub profile: Option<ImapProfile>,
    /// The auth service on a TCP port of its own ([`Dovecot::sasl`]): what a
    /// provider's Postfix asks to authenticate its submission clients
    /// (`smtpd_sasl_type = dovecot`), with the same users and passwords.
    pub sasl: bool,
}

/// A running Dovecot.
#[derive(Debug)]
pub struct Dovecot {
    /// IMAP, plain text (STARTTLS is not offered).
    pub imap: SocketAddr,
    /// POP3, plain text.
    pub pop3: SocketAddr,
    /// LMTP, for delivering test mail.
    pub lmtp: SocketAddr,
    /// POP3 over implicit TLS (with [`Dovecot::start_with_tls`]).
    pub pop3s: Option<SocketAddr>,
    /// The self-signed certificate (DER) clients must trust, for `localhost`.
    pub certificate: Option<Vec<u8>>,
    /// The auth service for an MTA's SASL, `smtpd_sasl_path =
    /// inet:<this>` (with [`Options::sasl`]).
    pub sasl: Option<SocketAddr>,
    /// Its users.
    pub users: Vec<MailUser>,
    dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Dovecot's own push_notification plugin with its OX driver, posting to
/// `url` (credentials in its userinfo): what a mail provider configures to
/// tell pushmail's webhook about new mail. The driver posts only for users
/// whose mailbox metadata asks for it ([`Dovecot::enable_push`]).
fn push_config(dir: &Path, url: &str) -> String {
    let d = dir.display();
    format!(
        r#"mail_plugins = $mail_plugins notify push_notification
mail_attribute_dict = file:{d}/home/%u/dovecot-attributes
protocol imap {{
  imap_metadata = yes
}}
plugin {{
  push_notification_driver = ox:url={url}
}}
"#
    )
}

/// Dovecot's auth client protocol on TCP, which Postfix's dovecot SASL
/// speaks. Loopback only: it answers password guesses for every user.
fn sasl_config(port: u16) -> String {
    format!(
        r"service auth {{
  inet_listener auth-sasl {{
    address = 127.0.0.1
    port = {port}
  }}
}}
"
    )
}

fn config(dir: &Path, imap: u16, pop3: u16, lmtp: u16, pop3s: Option<u16>) -> String {
    let d = dir.display();
    let (ssl, pop3s) = match pop3s {
        Some(port) => (
            format!("ssl = yes\nssl_cert = <{d}/cert.pem\nssl_key = <{d}/key.pem\n"),
            format!("address = 127.0.0.1\n    port = {port}"),
        ),
        None => ("ssl = no\n".to_owned(), "port = 0".to_owned()),
    };
    format!(
        r#"# Written by pushmail's integration tests.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap pop3 lmtp
listen = 127.0.0.1
# Process titles carry the user and the command running (IDLE): how a
# test sees that a watcher is waiting, from outside its process.
verbose_proctitle = yes
{ssl}disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:{d}/mail/%u
mail_uid = dovecot
mail_gid = dovecot
first_valid_uid = 1
pop3_uidl_format = %08Xu%08Xv
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {d}/users
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    {pop3s}
  }}
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {lmtp}
  }}
}}
"#
    )
}

async fn wait_port(addr: SocketAddr, log: &Path) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        if tokio::time::Instant::now() > deadline {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            anyhow::bail!("dovecot did not listen on {addr}; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

impl Dovecot {
    /// Starts Dovecot with `users` (addresses; the password is `pw-<address>`).
    pub async fn start(users: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(users, Options::default()).await
    }

    /// Starts Dovecot as a provider's IMAP server for the mailbox service:
    /// `/` as the hierarchy separator, and as `profile` describes.
    pub async fn start_provider(users: &[&str], profile: ImapProfile) -> anyhow::Result<Self> {
        Self::start_with(
            users,
            Options {
                profile: Some(profile),
                ..Options::default()
            },
        )
        .await
    }

    /// The same, with TLS: STLS on the POP3 port and POP3S on its own, a
    /// fresh self-signed certificate for `localhost`.
    pub async fn start_with_tls(users: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(
            users,
            Options {
                tls: true,
                ..Options::default()
            },
        )
        .await
    }

    /// Starts Dovecot with its push_notification OX driver posting new
    /// mail to `url` (see [`push_config`]).
    pub async fn start_with_push(users: &[&str], url: &str) -> anyhow::Result<Self> {
        Self::start_with(
            users,
            Options {
                push: Some(url),
                ..Options::default()
            },
        )
        .await
    }

    /// Starts Dovecot whose auth service also answers an MTA's SASL
    /// ([`Options::sasl`]): the mailbox behind a [`crate::postfix::Postfix`].
    pub async fn start_with_sasl(users: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(
            users,
            Options {
                sasl: true,
                ..Options::default()
            },
        )
        .await
    }

    /// Starts Dovecot with `users` (the password is `pw-<address>`) and
    /// whatever `options` add.
    pub async fn start_with(users: &[&str], options: Options<'_>) -> anyhow::Result<Self> {
        let Options {
            tls,
            push,
            profile,
            sasl,
        } = options;
        let binary = PathBuf::from("/usr/sbin/dovecot");
        anyhow::ensure!(
            binary.exists(),
            "dovecot is not installed; run `bash scripts/provision.sh`"
        );
        let dir = tempfile::tempdir()?;
        // Dovecot's unprivileged processes must reach their directories.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        let (imap, pop3, lmtp) = (free_port(), free_port(), free_port());
        let pop3s = tls.then(free_port);
        let sasl = sasl.then(free_port);
        let certificate = if tls {
            let key = rcgen::KeyPair::generate()?;
            let cert =
                rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
            std::fs::write(dir.path().join("cert.pem"), cert.pem())?;
            std::fs::write(dir.path().join("key.pem"), key.serialize_pem())?;
            Some(cert.der().to_vec())
        } else {
            None
        };
        let users: Vec<MailUser> = users
            .iter()
            .map(|address| MailUser {
                address: (*address).to_owned(),
                password: format!("pw-{address}"),
            })
            .collect();
        let passwd: String = users
            .iter()
            .map(|u| format!("{}:{{PLAIN}}{}\n", u.address, u.password))
            .collect();
        std::fs::write(dir.path().join("users"), passwd)?;
        for sub in ["mail", "home", "state", "run"] {
            std::fs::create_dir_all(dir.path().join(sub))?;
        }
        let chown = Command::new("chown")
            .args(["-R", "dovecot:dovecot"])
            .arg(dir.path().join("mail"))
            .arg(dir.path().join("home"))
            .status()?;
        anyhow::ensure!(chown.success(), "chown of the test maildirs failed");
        let conf = dir.path().join("dovecot.conf");
        let mut text = config(dir.path(), imap, pop3, lmtp, pop3s);
        if let Some(url) = push {
            text.push_str(&push_config(dir.path(), url));
        }
        if let Some(port) = sasl {
            text.push_str(&sasl_config(port));
        }
        text.push_str(profile.map_or("", ImapProfile::config));
        std::fs::write(&conf, text)?;
        let child = Command::new(&binary)
            .arg("-F")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let dovecot = Self {
            imap: local(imap),
            pop3: local(pop3),
            lmtp: local(lmtp),
            pop3s: pop3s.map(local),
            certificate,
            sasl: sasl.map(local),
            users,
            dir,
            child,
        };
        let log = dovecot.dir.path().join("dovecot.log");
        for addr in [dovecot.imap, dovecot.pop3, dovecot.lmtp]
            .into_iter()
            .chain(dovecot.pop3s)
            .chain(dovecot.sasl)
        {
            wait_port(addr, &log).await?;
        }
        Ok(dovecot)
    }

    /// Asks Dovecot's OX push driver to notify for `user` (the mailbox
    /// metadata a mail client sets with SETMETADATA), as `user`.
    pub async fn enable_push(&self, user: &str) -> anyhow::Result<()> {
        let status = tokio::process::Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(["mailbox", "metadata", "set", "-u", user, "-s", ""])
            .arg("/private/vendor/vendor.dovecot/http-notify")
            .arg(format!("user={user}"))
            .status()
            .await?;
        anyhow::ensure!(
            status.success(),
            "doveadm mailbox metadata set failed: {status}"
        );
        Ok(())
    }

    /// Gives `user`'s INBOX a new UIDVALIDITY (as an index rebuild or a
    /// server migration does): every message gets a new UID identity.
    pub async fn change_uid_validity(&self, user: &str, uid_validity: u32) -> anyhow::Result<()> {
        let status = tokio::process::Command::new("doveadm")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .args(["mailbox", "update", "-u", user, "--uid-validity"])
            .arg(uid_validity.to_string())
            .arg("INBOX")
            .status()
            .await?;
        anyhow::ensure!(status.success(), "doveadm mailbox update failed: {status}");
        Ok(())
    }

    /// Waits (up to 60 s) until an IMAP session of `user` is in IDLE: a
    /// watcher that has caught up and waits for new mail. Read from the
    /// IMAP processes' titles (`verbose_proctitle`).
    pub async fn wait_idle(&self, user: &str) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let titles = imap_titles();
            if titles
                .iter()
                .any(|t| t.contains(&format!("[{user} ")) && t.contains("IDLE"))
            {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "no IMAP session of {user} in IDLE within 60 s; sessions: {titles:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Appends `message` to `user`'s INBOX over IMAP, as a mail client
    /// saving a message does.
    pub async fn append(&self, user: &MailUser, message: &[u8]) -> anyhow::Result<()> {
        let stream = TcpStream::connect(self.imap).await?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut until = async |prefix: &str| -> anyhow::Result<()> {
            loop {
                let line = lines
                    .next_line()
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("IMAP closed"))?;
                if line.starts_with(prefix) {
                    return Ok(());
                }
                anyhow::ensure!(line.starts_with('*'), "IMAP: expected {prefix}, got {line}");
            }
        };
        until("* OK").await?;
        write
            .write_all(format!("a LOGIN \"{}\" \"{}\"\r\n", user.address, user.password).as_bytes())
            .await?;
        until("a OK").await?;
        write
            .write_all(format!("b APPEND INBOX {{{}}}\r\n", message.len()).as_bytes())
            .await?;
        until("+").await?;
        write.write_all(message).await?;
        write.write_all(b"\r\n").await?;
        until("b OK").await?;
        write.write_all(b"c LOGOUT\r\n").await?;
        Ok(())
    }

    /// Kills (SIGKILL) every IMAP process of this Dovecot serving `user`:
    /// the provider drops the user's connections mid-session. Only this
    /// instance's (children of its master): tests running at once use the
    /// same user names on their own Dovecots. How many were killed.
    pub fn kill_imap_sessions(&self, user: &str) -> usize {
        let master = self.child.id();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return 0;
        };
        let mut killed = 0;
        for entry in entries.filter_map(Result::ok) {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            // The parent pid is the fourth field of /proc/<pid>/stat, after
            // the parenthesised command name.
            let parent = std::fs::read_to_string(entry.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(") ")?.1.to_owned();
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                });
            if parent != Some(master) {
                continue;
            }
            let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let title = String::from_utf8_lossy(&raw).replace('\0', " ");
            if title.contains("imap [") && title.contains(&format!("[{user} ")) {
                let status = Command::new("kill").args(["-9", &pid.to_string()]).status();
                killed += usize::from(status.is_ok_and(|s| s.success()));
            }
        }
        killed
    }

    /// Dovecot's log so far (info and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    /// How many IMAP logins `user` has made so far (from the log).
    pub fn imap_logins(&self, user: &str) -> usize {
        let needle = format!("Login: user=<{user}>");
        self.log()
            .lines()
            .filter(|line| line.contains("imap-login") && line.contains(&needle))
            .count()
    }

    /// Runs another IMAP client (Python's imaplib,
    /// `integration-tests/mailbox/imap_peer.py`) as `user` with `ops` (see
    /// the script); the JSON lines it printed.
    pub async fn imap_peer(
        &self,
        user: &MailUser,
        ops: &serde_json::Value,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/mailbox/imap_peer.py");
        let out = tokio::process::Command::new("python3")
            .arg(script)
            .arg("127.0.0.1")
            .arg(self.imap.port().to_string())
            .arg(&user.address)
            .arg(&user.password)
            .arg(ops.to_string())
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "imap_peer failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)?
            .lines()
            .map(|line| Ok(serde_json::from_str(line)?))
            .collect()
    }

    /// `user`'s INBOX maildir (`cur`, `new` and `tmp` made): a benchmark
    /// fills a large folder by writing files into `new/`, which Dovecot
    /// takes in at the next access, far faster than delivering each.
    /// Writes `messages` (unique file names, then the messages) straight
    /// into `user`'s INBOX maildir, which Dovecot indexes at its next
    /// access: thousands of messages in a second, for the benchmarks.
    pub fn drop_into_inbox(
        &self,
        user: &str,
        messages: impl IntoIterator<Item = (String, String)>,
    ) -> anyhow::Result<()> {
        let dir = self.inbox_maildir(user)?;
        for (name, message) in messages {
            std::fs::write(dir.join("new").join(name), message)?;
        }
        // Dovecot reads and renames them as its mail user.
        let owned = std::process::Command::new("chown")
            .args(["-R", "dovecot:dovecot"])
            .arg(&dir)
            .status()?;
        anyhow::ensure!(owned.success(), "chown of {} failed", dir.display());
        Ok(())
    }

    /// Seconds Python's `imaplib` takes to `UID FETCH 1:* items` in
    /// `user`'s INBOX (login to logout, as the script times itself, so
    /// its start-up is outside), and how many FETCH answers it read: the
    /// same-run baseline of the mailbox benchmarks.
    pub fn imaplib_fetch(&self, user: &str, items: &str) -> anyhow::Result<(f64, usize)> {
        let script = r#"
import imaplib, re, sys, time
host, port, user, password, items = sys.argv[1:6]
started = time.perf_counter()
imap = imaplib.IMAP4(host, int(port))
imap.login(user, password)
imap.select("INBOX", readonly=True)
typ, data = imap.uid("FETCH", "1:*", items)
assert typ == "OK", data
imap.logout()
# One answer per message; its literals come as further items.
heads = [d[0] if isinstance(d, tuple) else d for d in data if d]
print(time.perf_counter() - started, sum(1 for h in heads if re.match(rb"\d+ \(", h)))
"#;
        let output = std::process::Command::new("python3")
            .args(["-c", script, "127.0.0.1"])
            .arg(self.imap.port().to_string())
            .args([user, &format!("pw-{user}"), items])
            .output()?;
        anyhow::ensure!(
            output.status.success(),
            "imaplib: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = String::from_utf8(output.stdout)?;
        let mut fields = text.split_whitespace();
        let seconds = fields.next().unwrap_or_default().parse()?;
        let answers = fields.next().unwrap_or_default().parse()?;
        Ok((seconds, answers))
    }

    pub fn inbox_maildir(&self, user: &str) -> anyhow::Result<std::path::PathBuf> {
        let dir = self.dir.path().join("mail").join(user);
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        Ok(dir)
    }

    /// Delivers `message` to `recipient` over LMTP, as an MTA would.
    pub async fn deliver(&self, recipient: &str, message: &[u8]) -> anyhow::Result<()> {
        let stream = TcpStream::connect(self.lmtp).await?;
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        let mut expect = async |code: &str| -> anyhow::Result<()> {
            loop {
                let line = lines
                    .next_line()
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("LMTP closed"))?;
                anyhow::ensure!(line.starts_with(code), "LMTP: expected {code}, got {line}");
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Ok(());
                }
            }
        };
        expect("220").await?;
        for (command, code) in [
            ("LHLO test.local".to_owned(), "250"),
            ("MAIL FROM:<sender@example.net>".to_owned(), "250"),
            (format!("RCPT TO:<{recipient}>"), "250"),
            ("DATA".to_owned(), "354"),
        ] {
            write.write_all(format!("{command}\r\n").as_bytes()).await?;
            expect(code).await?;
        }
        // Dot-stuffing, CRLF line ends.
        let mut body = Vec::with_capacity(message.len() + 16);
        for line in message.split(|b| *b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.starts_with(b".") {
                body.push(b'.');
            }
            body.extend_from_slice(line);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        write.write_all(&body).await?;
        expect("250").await?;
        write.write_all(b"QUIT\r\n").await?;
        Ok(())
    }
}

/// The titles of the running Dovecot IMAP processes.
fn imap_titles() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
        .filter(|title| title.contains("imap ["))
        .collect()
}
