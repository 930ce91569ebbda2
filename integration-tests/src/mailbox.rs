//! The mailbox service started in-process for tests, and a provider that
//! sends (Dovecot and Postfix) with an account bound to both: what the
//! mailbox and device-API tests stand on.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::net::SocketAddr;

use pushmail_common::health::Readiness;
use pushmail_common::service_identity::Service;
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::mailbox::v1::mailbox_service_client::MailboxServiceClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::dovecot::{Dovecot, ImapProfile, Options};
use crate::nodes::BindingNode;
use crate::postfix::Postfix;
use crate::{TestDatabase, credential_secret, service_keys};

/// The phone's user at the provider.
pub const USER: &str = "phone@example.net";

/// A provider that sends: Dovecot (with CONDSTORE/QRESYNC) holding
/// `users`' mail and checking their passwords for Postfix, whose
/// submission ports deliver into it for `example.net`.
pub async fn sending_provider(users: &[&str]) -> (Dovecot, Postfix) {
    let dovecot = Dovecot::start_with(
        users,
        Options {
            profile: Some(ImapProfile::Modern),
            sasl: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let postfix = Postfix::start(&dovecot, &["example.net"]).await.unwrap();
    (dovecot, postfix)
}

/// A running mailbox service.
pub struct MailboxNode {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<Result<(), pushmail_mailbox::Error>>,
    pub database: TestDatabase,
    /// Its blob volume, unless it was given one.
    pub blobs: tempfile::TempDir,
}

impl MailboxNode {
    pub async fn start(binding: SocketAddr) -> Self {
        Self::start_trusting(binding, None).await
    }

    /// The same, trusting `ca` (a PEM file) for mail servers' TLS.
    pub async fn start_trusting(binding: SocketAddr, ca: Option<std::path::PathBuf>) -> Self {
        let bus = std::sync::Arc::new(pushmail_common::bus::MemoryBus::new(
            &pushmail_common::bus::MemoryBusConfig::default(),
        ));
        Self::start_with(binding, ca, bus).await
    }

    /// The same, on `bus`.
    pub async fn start_with(
        binding: SocketAddr,
        ca: Option<std::path::PathBuf>,
        bus: std::sync::Arc<dyn pushmail_common::bus::EventBus>,
    ) -> Self {
        Self::launch(binding, ca, bus, None).await
    }

    /// On `bus` and the blob volume at `volume`, both shared with ingest:
    /// the platform's own store filled from the mail ingest receives.
    pub async fn start_on_volume(
        binding: SocketAddr,
        volume: &std::path::Path,
        bus: std::sync::Arc<dyn pushmail_common::bus::EventBus>,
        ca: Option<std::path::PathBuf>,
    ) -> Self {
        Self::launch(binding, ca, bus, Some(volume)).await
    }

    async fn launch(
        binding: SocketAddr,
        ca: Option<std::path::PathBuf>,
        bus: std::sync::Arc<dyn pushmail_common::bus::EventBus>,
        volume: Option<&std::path::Path>,
    ) -> Self {
        let database = TestDatabase::create().await.unwrap();
        let mut config = pushmail_mailbox::Config::default();
        config.binding.endpoint = format!("http://{binding}");
        config.binding.token = credential_secret(Service::Mailbox);
        config.security.service_keys = service_keys();
        config.database.url = database.url.clone();
        config.imap.egress = pushmail_common::egress::EgressConfig::loopback();
        config.imap.timeout_seconds = 10;
        config.imap.extra_ca_file = ca;
        config.submission.hello_name = "pushmail.test".to_owned();
        let blobs = tempfile::tempdir().unwrap();
        config.blob.dir = volume.unwrap_or(blobs.path()).to_path_buf();
        // Its own group: on the shared broker, other tests' nodes would
        // otherwise take partitions of what it reads.
        config.local.group = crate::unique("mailbox");
        config.blob.min_free_bytes = 0;
        let deps = pushmail_mailbox::Deps::connect(&config, bus).await.unwrap();
        let listeners = pushmail_common::host::GrpcListeners::ephemeral()
            .await
            .unwrap();
        let addr = listeners.grpc.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(pushmail_mailbox::run(
            config,
            deps,
            listeners,
            Readiness::new("mailbox"),
            stop.clone(),
        ));
        Self {
            addr,
            stop,
            task,
            database,
            blobs,
        }
    }

    pub async fn client(&self) -> MailboxServiceClient<Channel> {
        let channel = Channel::from_shared(format!("http://{}", self.addr))
            .unwrap()
            .connect()
            .await
            .unwrap();
        MailboxServiceClient::new(channel)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
        self.database.drop_database().await.unwrap();
    }
}

/// Binding, with a tenant whose IMAP account is the first of `dovecot`'s
/// users.
pub async fn bound(
    dovecot: &Dovecot,
) -> (BindingNode, binding::CreateTenantResponse, binding::Account) {
    let mut node = BindingNode::start().await.unwrap();
    let tenant = node.tenant().await.unwrap();
    let account = node
        .mailbox_account(
            &tenant,
            &dovecot.users[0],
            dovecot.imap.port(),
            binding::AccountKind::ExternalImap,
        )
        .await
        .unwrap();
    (node, tenant, account)
}

/// `der` as a PEM certificate file in `dir`.
pub fn pem_file(dir: &std::path::Path, der: &[u8]) -> std::path::PathBuf {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let path = dir.join("provider-ca.pem");
    std::fs::write(
        &path,
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        ),
    )
    .unwrap();
    path
}

pub const BOB: &str = "bob@example.net";

/// A provider that sends (Dovecot, and Postfix authenticating through it)
/// with the phone's account bound to both, and the service in front.
pub struct Sending {
    pub dovecot: Dovecot,
    pub postfix: Postfix,
    pub binding: BindingNode,
    pub node: MailboxNode,
    pub client: MailboxServiceClient<Channel>,
    pub t: String,
    pub a: String,
    pub tenant: binding::CreateTenantResponse,
    pub account: binding::Account,
    _certs: tempfile::TempDir,
}

impl Sending {
    pub async fn start() -> Self {
        let (dovecot, postfix) = sending_provider(&[USER, BOB]).await;
        let (mut binding, tenant, account) = bound(&dovecot).await;
        binding
            .api
            .admin
            .update_account(crate::authed(
                &tenant.api_key,
                binding::UpdateAccountRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    account_id: account.account_id.clone(),
                    submission: Some(binding::ServerSettings {
                        host: "localhost".to_owned(),
                        port: u32::from(postfix.submission.port()),
                        tls: binding::TlsMode::Starttls.into(),
                        username: String::new(),
                    }),
                    ..Default::default()
                },
            ))
            .await
            .unwrap();
        let certs = tempfile::tempdir().unwrap();
        let ca = pem_file(certs.path(), &postfix.certificate);
        let node = MailboxNode::start_trusting(binding.addr, Some(ca)).await;
        let client = node.client().await;
        Self {
            dovecot,
            postfix,
            binding,
            node,
            client,
            t: tenant.tenant_id.clone(),
            a: account.account_id.clone(),
            tenant,
            account,
            _certs: certs,
        }
    }

    /// A phone bound to the account (its number verified through the
    /// broker's SMS topic) and a gateway in front of the mailbox service
    /// for it: the device token and the gateway.
    pub async fn phone(&mut self) -> (String, crate::edge::Node<pushmail_gateway::Error>) {
        let bus = crate::kafka_bus().await.unwrap();
        let mut watch = crate::topics::TenantTopics::sms(&bus, &self.t)
            .await
            .unwrap();
        let (_, device) = self
            .binding
            .device(&self.tenant, &self.account, true, &mut watch)
            .await
            .unwrap();
        // No transcode here: the mailbox routes do not use it.
        let mut config =
            crate::edge::gateway_config(self.binding.addr, "127.0.0.1:1".parse().unwrap());
        config.mailbox.endpoint = format!("http://{}", self.node.addr);
        config.mailbox.token = credential_secret(Service::Gateway);
        config.fetch.targets_cache_ms = 0;
        let gateway = crate::edge::gateway(config).await.unwrap();
        crate::edge::serving(gateway.addr).await;
        (device.device_token, gateway)
    }

    pub async fn stop(self) {
        self.node.stop().await;
        self.binding.stop().await.unwrap();
    }
}

/// Bob's INBOX UIDs once it holds `count` messages.
pub async fn bobs_inbox(dovecot: &Dovecot, count: usize) -> serde_json::Value {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let bob = dovecot.users[1].clone();
    loop {
        let uids = dovecot
            .imap_peer(&bob, &serde_json::json!([["uids", "INBOX"]]))
            .await
            .unwrap()[0]
            .clone();
        if uids.as_array().unwrap().len() >= count {
            return uids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Bob has {uids} of {count}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
