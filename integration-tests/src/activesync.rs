//! The ActiveSync front door started in-process for tests, a phone's
//! account with an app password, and the calls and readers the ActiveSync
//! tests share (HTTP Basic, a WBXML POST, libwbxml's reading, pyactivesync).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::net::SocketAddr;
use std::process::Command;

use base64::Engine as _;
use pushmail_activesync::policy::PolicyConfig;
use pushmail_common::health::Readiness;
use pushmail_common::service_identity::Service;
use pushmail_proto::binding::v1 as pb;
use pushmail_wbxml::{Element, tag};
use tokio_util::sync::CancellationToken;

use crate::http::{Response, call};
use crate::nodes::{BindingAdmin, BindingNode, bind_device};
use crate::topics::TenantTopics;
use crate::{authed, credential_secret, kafka_bus, unique};

/// Where the front door's other upstreams are (none: the defaults, where
/// nothing answers in tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Upstreams {
    /// The mailbox service.
    pub mailbox: Option<SocketAddr>,
    /// The session service.
    pub session: Option<SocketAddr>,
}

/// An activesync service in-process, plain HTTP or TLS with `tls_dir`'s
/// self-signed certificate.
pub struct Front {
    pub addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), pushmail_activesync::Error>>,
}

impl Front {
    pub async fn start(binding: SocketAddr, tls_dir: Option<&std::path::Path>) -> Self {
        Self::start_as(binding, tls_dir, Service::ActiveSync).await
    }

    /// Reading and changing mail through the mailbox service at `mailbox`.
    pub async fn with_mailbox(
        binding: SocketAddr,
        mailbox: SocketAddr,
        tls_dir: Option<&std::path::Path>,
    ) -> Self {
        Self::launch(
            binding,
            Upstreams {
                mailbox: Some(mailbox),
                session: None,
            },
            tls_dir,
            Service::ActiveSync,
            PolicyConfig::default(),
        )
        .await
    }

    /// With the mailbox service and the session service (held Pings) at
    /// the addresses given.
    pub async fn with_upstreams(
        binding: SocketAddr,
        upstreams: Upstreams,
        tls_dir: Option<&std::path::Path>,
    ) -> Self {
        Self::launch(
            binding,
            upstreams,
            tls_dir,
            Service::ActiveSync,
            PolicyConfig::default(),
        )
        .await
    }

    /// With `service`'s credential towards binding (a misconfiguration
    /// when it is not activesync's).
    pub async fn start_as(
        binding: SocketAddr,
        tls_dir: Option<&std::path::Path>,
        service: Service,
    ) -> Self {
        Self::start_with(binding, tls_dir, service, PolicyConfig::default()).await
    }

    pub async fn start_with(
        binding: SocketAddr,
        tls_dir: Option<&std::path::Path>,
        service: Service,
        policy: PolicyConfig,
    ) -> Self {
        Self::launch(binding, Upstreams::default(), tls_dir, service, policy).await
    }

    async fn launch(
        binding: SocketAddr,
        upstreams: Upstreams,
        tls_dir: Option<&std::path::Path>,
        service: Service,
        policy: PolicyConfig,
    ) -> Self {
        let mut config = pushmail_activesync::Config {
            policy,
            ..pushmail_activesync::Config::default()
        };
        config.binding.endpoint = format!("http://{binding}");
        config.binding.token = credential_secret(service);
        if let Some(mailbox) = upstreams.mailbox {
            config.mailbox.endpoint = format!("http://{mailbox}");
            config.mailbox.token = credential_secret(service);
        }
        if let Some(session) = upstreams.session {
            config.session.endpoint = format!("http://{session}");
            config.session.token = credential_secret(service);
        }
        config.server.http_addr = "127.0.0.1:0".parse().unwrap();
        config.server.admin_addr = "127.0.0.1:0".parse().unwrap();
        config.public_url = "https://eas.carrier.example/Microsoft-Server-ActiveSync".to_owned();
        if let Some(dir) = tls_dir {
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
                .unwrap()
                .self_signed(&key)
                .unwrap();
            std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
            std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
            config.tls.enabled = true;
            config.tls.cert_path = dir.join("cert.pem");
            config.tls.key_path = dir.join("key.pem");
        }
        let deps = pushmail_activesync::Deps::connect(&config).unwrap();
        let listeners = pushmail_activesync::Listeners::bind(&config).await.unwrap();
        let addr = listeners.http.local_addr().unwrap();
        let stop = CancellationToken::new();
        let task = tokio::spawn(pushmail_activesync::run(
            config,
            deps,
            listeners,
            Readiness::new("activesync"),
            stop.clone(),
        ));
        Self { addr, stop, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

/// A phone's account: bound number, app password.
#[derive(Debug, Clone)]
pub struct Phone {
    pub tenant: pb::CreateTenantResponse,
    pub account: pb::Account,
    pub address: String,
    pub password: String,
    pub app_password: pb::AppPassword,
}

/// A forwarded (local-store) account's phone in a new tenant.
pub async fn phone(binding: &mut BindingNode) -> Phone {
    let tenant = binding.tenant().await.unwrap();
    let address = format!("{}@corp.example", unique("eas"));
    let account = binding.forwarded(&tenant, &address).await.unwrap();
    phone_of(&mut binding.api, tenant, account, address).await
}

/// A phone bound to `account` (whose address is `address`), with an app
/// password.
pub async fn phone_of(
    api: &mut BindingAdmin,
    tenant: pb::CreateTenantResponse,
    account: pb::Account,
    address: String,
) -> Phone {
    let bus = kafka_bus().await.unwrap();
    let mut watch = TenantTopics::sms(&bus, &tenant.tenant_id).await.unwrap();
    let (msisdn, _) = bind_device(&mut api.admin, &tenant, &account, true, &mut watch)
        .await
        .unwrap();
    let made = api
        .admin
        .create_app_password(authed(
            &tenant.api_key,
            pb::CreateAppPasswordRequest {
                tenant_id: tenant.tenant_id.clone(),
                account_id: account.account_id.clone(),
                msisdn,
                label: "iPhone".to_owned(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    Phone {
        tenant,
        account,
        address,
        password: made.password,
        app_password: made.app_password.unwrap(),
    }
}

/// A phone with an app password on the provider account of `sending`
/// (the Dovecot user [`USER`](crate::mailbox::USER)).
pub async fn phone_of_sending(sending: &mut crate::mailbox::Sending) -> Phone {
    phone_of(
        &mut sending.binding.api,
        sending.tenant.clone(),
        sending.account.clone(),
        crate::mailbox::USER.to_owned(),
    )
    .await
}

/// The phone's account's app passwords, as its tenant lists them.
pub async fn app_passwords(
    binding: &mut BindingNode,
    phone: &Phone,
) -> pb::ListAppPasswordsResponse {
    binding
        .api
        .admin
        .list_app_passwords(authed(
            &phone.tenant.api_key,
            pb::ListAppPasswordsRequest {
                tenant_id: phone.tenant.tenant_id.clone(),
                account_id: phone.account.account_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
}

pub fn basic(user: &str, password: &str) -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

pub async fn post(
    addr: SocketAddr,
    query: &str,
    authorization: &str,
    policy_key: Option<&str>,
    body: &[u8],
) -> Response {
    let mut headers = vec![
        ("Authorization", authorization),
        ("MS-ASProtocolVersion", "16.1"),
        ("Content-Type", "application/vnd.ms-sync.wbxml"),
    ];
    if let Some(key) = policy_key {
        headers.push(("X-MS-PolicyKey", key));
    }
    call(
        addr,
        "POST",
        &format!("/Microsoft-Server-ActiveSync?{query}"),
        &headers,
        body,
    )
    .await
    .unwrap()
}

/// libwbxml's reading of `bytes`.
pub fn wbxml2xml(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.wbxml");
    let output = dir.path().join("out.xml");
    std::fs::write(&input, bytes).unwrap();
    let status = Command::new("wbxml2xml")
        .args(["-l", "ACTIVESYNC", "-m", "0", "-o"])
        .arg(&output)
        .arg(&input)
        .status()
        .expect("wbxml2xml (libwbxml2-utils) is installed by scripts/provision.sh");
    assert!(status.success(), "wbxml2xml refused our answer");
    std::fs::read_to_string(output).unwrap()
}

/// pyactivesync's Python (`scripts/provision.sh` makes its venv).
pub fn python() -> String {
    std::env::var("PUSHMAIL_PYTHON")
        .unwrap_or_else(|_| "/var/cache/pushmail/pyvenv/bin/python".to_owned())
}

/// Runs `script` with pyactivesync against `front` (TLS with the
/// certificate in `certs`, verified by name) as `phone`, with `args` after
/// the server, user and password; its standard output, or a panic with
/// what it printed.
pub async fn pyactivesync(
    front: &Front,
    certs: &std::path::Path,
    phone: &Phone,
    script: &str,
    args: &[&str],
) -> String {
    pyactivesync_at(front.addr, certs, phone, script, args).await
}

/// The same against the front door at `front`.
pub async fn pyactivesync_at(
    front: SocketAddr,
    certs: &std::path::Path,
    phone: &Phone,
    script: &str,
    args: &[&str],
) -> String {
    let output = tokio::process::Command::new(python())
        .env("REQUESTS_CA_BUNDLE", certs.join("cert.pem"))
        .args(["-c", script])
        .arg(format!("localhost:{}", front.port()))
        .arg(&phone.address)
        .arg(&phone.password)
        .args(args)
        .output()
        .await
        .expect("pyactivesync's Python (scripts/provision.sh makes it)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "pyactivesync failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A session node in-process, holding Pings, with a way to notify a
/// device as dispatch does (into its outbox, then `Deliver`).
pub struct Sessions {
    pub grpc: SocketAddr,
    outbox: std::sync::Arc<dyn pushmail_outbox::Outbox>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), pushmail_session::Error>>,
}

impl Sessions {
    pub async fn start() -> Self {
        let mut config = crate::session_config();
        let listeners = pushmail_session::Listeners::ephemeral().await.unwrap();
        let grpc = listeners.server.grpc.local_addr().unwrap();
        let admin = listeners.server.admin.local_addr().unwrap();
        config.devices.advertise = format!("http://{grpc}");
        let deps = pushmail_session::Deps::connect(&config, kafka_bus().await.unwrap())
            .await
            .unwrap();
        let outbox = deps.outbox.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(pushmail_session::run(
            config,
            deps,
            listeners,
            Readiness::new("session"),
            stop.clone(),
        ));
        crate::wait_ready(admin, std::time::Duration::from_secs(20))
            .await
            .unwrap();
        Self {
            grpc,
            outbox,
            stop,
            task,
        }
    }

    /// The held interval of `device`'s connection here, once it is held
    /// (waits up to 60 s).
    pub async fn held(&self, tenant: &str, device: &str) -> u32 {
        wait_held(self.grpc, tenant, device).await
    }

    /// Mail came to `mailbox` for `device`: what dispatch's delivery
    /// came to.
    pub async fn notify(
        &self,
        tenant: &str,
        device: &str,
        mailbox: &str,
    ) -> pushmail_proto::session::v1::DeliverStatus {
        use pushmail_proto::session::v1 as session;
        let notification = session::Notification {
            tenant_id: tenant.to_owned(),
            device_id: device.to_owned(),
            account_id: "acct".to_owned(),
            mailbox: mailbox.to_owned(),
            idempotency_key: unique("mail"),
            ..Default::default()
        };
        let appended = self.outbox.append(&notification).await.unwrap();
        crate::session_client(format!("http://{}", self.grpc))
            .await
            .deliver(session::DeliverRequest {
                notification: Some(session::Notification {
                    sequence: appended.seq,
                    outbox_generation: appended.generation,
                    ..notification
                }),
                ack_timeout_ms: 5_000,
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.unwrap().unwrap();
    }
}

pub fn provision_request(key: Option<&str>) -> Vec<u8> {
    provision_request_applied(key, "1")
}

/// An acknowledgement (`key`) saying the policy was `applied` (1: it was;
/// 2, 3, 4: not all of it), or the first step (no key).
pub fn provision_request_applied(key: Option<&str>, applied: &str) -> Vec<u8> {
    let mut policy = Element::of(tag("Provision", "Policy")).with(Element::text_of(
        tag("Provision", "PolicyType"),
        "MS-EAS-Provisioning-WBXML",
    ));
    let mut root = Element::of(tag("Provision", "Provision"));
    match key {
        Some(key) => {
            policy = policy
                .with(Element::text_of(tag("Provision", "PolicyKey"), key))
                .with(Element::text_of(tag("Provision", "Status"), applied));
        }
        None => {
            root = root.with(
                Element::of(tag("Settings", "DeviceInformation")).with(
                    Element::of(tag("Settings", "Set"))
                        .with(Element::text_of(tag("Settings", "Model"), "iPhone15,2")),
                ),
            );
        }
    }
    let root = root.with(Element::of(tag("Provision", "Policies")).with(policy));
    pushmail_wbxml::encode(&root).unwrap()
}

pub fn text_at(root: &Element, path: &[(&str, &str)]) -> Option<String> {
    let mut at = root;
    for (page, name) in path {
        at = at.get(tag(page, name))?;
    }
    Some(at.text())
}

/// The phone's key after both Provision steps.
pub async fn provisioned(front: &Front, query: &str, auth: &str) -> String {
    let policy = [("Provision", "Policies"), ("Provision", "Policy")];
    let key_at = [policy[0], policy[1], ("Provision", "PolicyKey")];
    let offered = post(front.addr, query, auth, None, &provision_request(None)).await;
    let temporary = text_at(&pushmail_wbxml::decode(&offered.body).unwrap(), &key_at).unwrap();
    let acknowledged = post(
        front.addr,
        query,
        auth,
        Some(&temporary),
        &provision_request(Some(&temporary)),
    )
    .await;
    text_at(
        &pushmail_wbxml::decode(&acknowledged.body).unwrap(),
        &key_at,
    )
    .unwrap()
}

/// The interval `device` is held with by the session node at `session`,
/// once it is held (waits up to 60 s).
pub async fn wait_held(session: SocketAddr, tenant: &str, device: &str) -> u32 {
    let mut presence =
        crate::session_client_as(format!("http://{session}"), Service::Gateway).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let seen = presence
            .get_presence(pushmail_proto::session::v1::GetPresenceRequest {
                tenant_id: tenant.to_owned(),
                device_id: device.to_owned(),
            })
            .await
            .unwrap()
            .into_inner();
        if seen.heartbeat_seconds > 0 {
            return seen.heartbeat_seconds;
        }
        assert!(tokio::time::Instant::now() < deadline, "never held");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A forwarded account's phone with the path its mail takes: ingest
/// receiving it over SMTP, filing it in the blob volume the mailbox
/// service reads (the platform's own store), on the test broker.
pub struct Forwarded {
    pub binding: BindingNode,
    pub phone: Phone,
    pub ingest: crate::nodes::IngestNode,
    pub mailbox: crate::mailbox::MailboxNode,
    _blobs: tempfile::TempDir,
}

impl Forwarded {
    /// A new tenant's forwarded account, its address starting `prefix`.
    pub async fn start(prefix: &str) -> Self {
        Self::start_trusting(prefix, None).await
    }

    /// The same, the mailbox service trusting `ca` too (a test relay's).
    pub async fn start_trusting(prefix: &str, ca: Option<std::path::PathBuf>) -> Self {
        let mut binding = BindingNode::start().await.unwrap();
        let tenant = binding.tenant().await.unwrap();
        let address = format!("{}@corp.example", unique(prefix));
        let account = binding.forwarded(&tenant, &address).await.unwrap();
        let phone = phone_of(&mut binding.api, tenant, account, address).await;
        let blobs = tempfile::tempdir().unwrap();
        let ingest = crate::nodes::IngestNode::on_test_broker(crate::nodes::ingest_config(
            binding.addr,
            blobs.path(),
        ))
        .await
        .unwrap();
        let mailbox = crate::mailbox::MailboxNode::start_on_volume(
            binding.addr,
            blobs.path(),
            kafka_bus().await.unwrap(),
            ca,
        )
        .await;
        Self {
            binding,
            phone,
            ingest,
            mailbox,
            _blobs: blobs,
        }
    }

    /// Forwards `message` to the account over SMTP.
    pub async fn forward(&self, message: &[u8]) {
        crate::smtp::swaks(self.ingest.smtp, &self.phone.address, message)
            .await
            .unwrap();
    }

    /// The account's folders as the mailbox service lists them.
    pub async fn folders(&self) -> Vec<pushmail_proto::mailbox::v1::Folder> {
        self.mailbox
            .client()
            .await
            .list_folders(authed(
                &crate::credential(Service::ActiveSync),
                pushmail_proto::mailbox::v1::ListFoldersRequest {
                    tenant_id: self.phone.tenant.tenant_id.clone(),
                    account_id: self.phone.account.account_id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .folders
    }

    /// Waits (up to 60 s) until the inbox holds `count` messages.
    pub async fn filed(&self, count: u32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let inbox = self
                .folders()
                .await
                .into_iter()
                .find(|f| f.role() == pushmail_proto::mailbox::v1::FolderRole::Inbox);
            if inbox.is_some_and(|f| f.total >= count) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "never filed");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    pub async fn stop(self) {
        self.ingest.stop().await.unwrap();
        self.mailbox.stop().await;
        self.binding.stop().await.unwrap();
    }
}
