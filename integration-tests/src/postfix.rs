//! A private Postfix per test, as a mail provider's submission server: it
//! authenticates clients through a [`Dovecot`]'s auth service and delivers
//! the provider's own domains into that Dovecot over LMTP. Its
//! configuration (`etc`), queue and data directories and its log live under
//! a temporary directory (`postfix -c DIR/etc`, as a multi-instance setup
//! runs each instance); it is stopped on drop. The Debian package comes from
//! `scripts/packages.txt`, left without a system configuration by
//! `scripts/provision.sh`.
//!
//! Mail for any other domain is accepted from authenticated clients but
//! never leaves: it goes to a transport that is deferred
//! (`defer_transports`) and does not exist in `master.cf`, so it waits in
//! the deferred queue, where [`Postfix::wait_deferred`] finds it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::dovecot::Dovecot;
use crate::free_port;

const POSTFIX: &str = "/usr/sbin/postfix";
const POSTQUEUE: &str = "/usr/sbin/postqueue";

/// Why a message for a domain outside [`Postfix::domains`] waits: what a
/// test sees in [`QueuedRecipient::delay_reason`] (Postfix's words for a
/// transport in `defer_transports`).
pub const HELD: &str = "deferred transport";

/// A running Postfix.
#[derive(Debug)]
pub struct Postfix {
    /// Submission (587-style): STARTTLS is required before AUTH or mail.
    pub submission: SocketAddr,
    /// Submissions (465-style): TLS from the first byte.
    pub submissions: SocketAddr,
    /// The self-signed certificate (DER) both ports present, for `localhost`.
    pub certificate: Vec<u8>,
    /// The domains delivered into the Dovecot; mail for any other stays
    /// queued.
    pub domains: Vec<String>,
    dir: tempfile::TempDir,
}

/// One message in the queue, as `postqueue -j` describes it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct QueuedMessage {
    /// `incoming`, `active`, `deferred`, `hold` or `maildrop`.
    pub queue_name: String,
    /// Postfix's queue ID.
    pub queue_id: String,
    /// The envelope sender.
    pub sender: String,
    /// The recipients still to deliver.
    pub recipients: Vec<QueuedRecipient>,
}

/// A recipient of a [`QueuedMessage`].
#[derive(Debug, Clone, serde::Deserialize)]
pub struct QueuedRecipient {
    /// The envelope recipient.
    pub address: String,
    /// Why the last attempt did not deliver (absent before the first).
    #[serde(default)]
    pub delay_reason: Option<String>,
}

/// `main.cf`: every setting a test relies on is explicit, the rest are
/// Postfix 3.6 defaults.
fn main_cf(dir: &Path, domains: &[&str], lmtp: SocketAddr, sasl: SocketAddr) -> String {
    let d = dir.display();
    let etc = dir.join("etc");
    let etc = etc.display();
    let domains = domains.join(", ");
    format!(
        r"# Written by pushmail's integration tests.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = {d}
maillog_file = {d}/postfix.log
myhostname = submission.pushmail.test
mydomain = pushmail.test
smtpd_banner = $myhostname ESMTP
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
# No DNS: the only client and the only next hop are on 127.0.0.1.
smtpd_peername_lookup = no
biff = no
# Nothing is local to this host: the provider's mail lives in Dovecot.
mydestination =
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:5.1.1 local delivery is disabled
virtual_mailbox_domains = {domains}
# Unknown users of those domains are refused at RCPT, as a provider does.
virtual_mailbox_maps = texthash:{etc}/mailboxes
virtual_transport = lmtp:inet:{lmtp}
# This instance never connects out: other domains wait in the deferred
# queue. Not the error or retry transport: smtpd would refuse those
# recipients at RCPT, and a provider accepts mail for the outside world.
# `held` is in no master.cf, so even a flush cannot send anything.
relayhost =
relay_domains =
default_transport = held
relay_transport = held
defer_transports = held
# Submission: the Dovecot users authenticate, and only after TLS.
smtpd_tls_chain_files = {etc}/key.pem, {etc}/cert.pem
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = inet:{sasl}
smtpd_tls_auth_only = yes
# Relaying only for authenticated clients; unauthenticated ones may not
# send even to the provider's own users (that is port 25's job).
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_recipient_restrictions = permit_sasl_authenticated, reject
"
    )
}

/// `master.cf`: the two listeners and the services delivery needs, nothing
/// chrooted. No `smtp` client service exists, so no path leads out.
fn master_cf(submission: SocketAddr, submissions: SocketAddr) -> String {
    let mut text = format!(
        r"# Written by pushmail's integration tests.
{submission} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
{submissions} inet n - n - - smtpd
  -o syslog_name=postfix/submissions
  -o smtpd_tls_wrappermode=yes
  -o smtpd_tls_security_level=encrypt
"
    );
    for line in [
        "pickup unix n - n 60 1 pickup",
        "cleanup unix n - n - 0 cleanup",
        "qmgr unix n - n 300 1 qmgr",
        "tlsmgr unix - - n 1000? 1 tlsmgr",
        "rewrite unix - - n - - trivial-rewrite",
        "bounce unix - - n - 0 bounce",
        "defer unix - - n - 0 bounce",
        "trace unix - - n - 0 bounce",
        "verify unix - - n - 1 verify",
        "flush unix n - n 1000? 0 flush",
        "proxymap unix - - n - - proxymap",
        "proxywrite unix - - n - 1 proxymap",
        "showq unix n - n - - showq",
        "error unix - - n - - error",
        "retry unix - - n - - error",
        "discard unix - - n - - discard",
        "lmtp unix - - n - - lmtp",
        "anvil unix - - n - 1 anvil",
        "scache unix - - n - 1 scache",
        "postlog unix-dgram n - n - 1 postlogd",
    ] {
        let _ = writeln!(text, "{line}");
    }
    text
}

impl Postfix {
    /// Starts Postfix in front of `dovecot` (started with
    /// [`Dovecot::start_with_sasl`]): its users submit with their Dovecot
    /// passwords, and mail for `domains` is delivered into it.
    pub async fn start(dovecot: &Dovecot, domains: &[&str]) -> anyhow::Result<Self> {
        anyhow::ensure!(
            Path::new(POSTFIX).exists(),
            "postfix is not installed; run `bash scripts/provision.sh`"
        );
        let sasl = dovecot.sasl.ok_or_else(|| {
            anyhow::anyhow!("Postfix needs Dovecot's auth service: start it with start_with_sasl")
        })?;
        let dir = tempfile::tempdir()?;
        // Postfix's unprivileged daemons must reach their queue below it.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
        // Apart, as Postfix's checks expect: the configuration is root's,
        // the queue's subdirectories are the postfix user's. `postfix
        // start` makes those (and the data directory) but not the queue.
        let etc = dir.path().join("etc");
        std::fs::create_dir(&etc)?;
        std::fs::create_dir(dir.path().join("queue"))?;
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let (submission, submissions) = (local(free_port()), local(free_port()));
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()])?.self_signed(&key)?;
        std::fs::write(etc.join("cert.pem"), cert.pem())?;
        let key_file = etc.join("key.pem");
        std::fs::write(&key_file, key.serialize_pem())?;
        // smtpd reads it as root before dropping privileges.
        std::fs::set_permissions(
            &key_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )?;
        let mailboxes: String = dovecot
            .users
            .iter()
            .map(|u| format!("{} ok\n", u.address))
            .collect();
        std::fs::write(etc.join("mailboxes"), mailboxes)?;
        std::fs::write(
            etc.join("main.cf"),
            main_cf(dir.path(), domains, dovecot.lmtp, sasl),
        )?;
        std::fs::write(etc.join("master.cf"), master_cf(submission, submissions))?;
        let postfix = Self {
            submission,
            submissions,
            certificate: cert.der().to_vec(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            dir,
        };
        // `start` creates the queue directories and returns once the master
        // has bound its listeners (`master -w`), or has failed: no need to
        // probe the ports (a probe only logs a lost connection).
        let out = tokio::process::Command::new(POSTFIX)
            .arg("-c")
            .arg(postfix.config_dir())
            .arg("start")
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "postfix start failed: {}\n{}{}\nits log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            postfix.log()
        );
        Ok(postfix)
    }

    /// Its configuration directory (`postfix -c`, `postconf -c`, …).
    pub fn config_dir(&self) -> PathBuf {
        self.dir.path().join("etc")
    }

    /// Everything it has logged (its `maillog_file`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postfix.log")).unwrap_or_default()
    }

    /// The messages in its queue (`postqueue -j`).
    pub async fn queue(&self) -> anyhow::Result<Vec<QueuedMessage>> {
        let out = tokio::process::Command::new(POSTQUEUE)
            .arg("-c")
            .arg(self.config_dir())
            .arg("-j")
            .output()
            .await?;
        anyhow::ensure!(
            out.status.success(),
            "postqueue -j failed: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line)
                    .map_err(|e| anyhow::anyhow!("postqueue -j printed {line:?}: {e}"))
            })
            .collect()
    }

    /// Waits (up to `limit`) until the queue is empty: every accepted
    /// message has been delivered (or bounced). Fails with the queue and
    /// the log.
    pub async fn wait_queue_empty(&self, limit: Duration) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let queue = self.queue().await?;
            if queue.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "postfix's queue not empty within {limit:?}: {queue:#?}\nits log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (up to `limit`) until a message for `recipient` sits in the
    /// deferred queue after a delivery attempt: how mail for a domain that
    /// is not the provider's ends up ([`HELD`]).
    pub async fn wait_deferred(
        &self,
        recipient: &str,
        limit: Duration,
    ) -> anyhow::Result<QueuedMessage> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let queue = self.queue().await?;
            let found = queue.iter().find(|m| {
                m.queue_name == "deferred"
                    && m.recipients
                        .iter()
                        .any(|r| r.address == recipient && r.delay_reason.is_some())
            });
            if let Some(message) = found {
                return Ok(message.clone());
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!(
                    "no deferred message for {recipient} within {limit:?}: {queue:#?}\nits log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn master_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.path().join("queue/pid/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The live (not zombie) processes of the process group `pgid`, from
/// `/proc`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // "pid (comm) state ppid pgrp …"; comm may hold anything.
            let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
            let state = fields.next()?;
            let group: u32 = fields.nth(1)?.parse().ok()?;
            (group == pgid && state != "Z").then_some(pid)
        })
        .collect()
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // The master leads its own process group (it calls setsid), and
        // every daemon it forked stays in it: the group is the instance.
        let master = self.master_pid();
        let _ = Command::new(POSTFIX)
            .arg("-c")
            .arg(self.config_dir())
            .arg("stop")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        let Some(pgid) = master else { return };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !group_members(pgid).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for pid in group_members(pgid) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}
