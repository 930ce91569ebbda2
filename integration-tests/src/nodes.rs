//! Binding and ingest started in-process on free ports, on the real
//! PostgreSQL, Redis and broker, for tests that need an account to exist.

use std::net::SocketAddr;
use std::sync::Arc;

use pushmail_common::bus::{BusConfig, EventBus};
use pushmail_common::health::Readiness;
use pushmail_common::redact::SecretUrl;
use pushmail_common::redis::{StateStoreConfig, StateStoreKind};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    OPERATOR_TOKEN, TestDatabase, authed, credential_secret, kafka_bus, kafka_config, redis_config,
};

/// A binding service with its own database.
pub struct BindingNode {
    /// gRPC address.
    pub addr: SocketAddr,
    /// Its admin API (the node derefs to it).
    pub api: BindingAdmin,
    stop: CancellationToken,
    task: JoinHandle<Result<(), pushmail_binding::Error>>,
    database: TestDatabase,
}

impl BindingNode {
    /// Starts binding on a fresh database, Redis cache and the test broker.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_on(kafka_config()).await
    }

    /// Starts binding on a fresh database and Redis cache, on `kafka`.
    pub async fn start_on(kafka: pushmail_common::bus::KafkaConfig) -> anyhow::Result<Self> {
        let database = TestDatabase::create().await?;
        let mut config = pushmail_binding::Config {
            bus: BusConfig {
                kafka,
                ..BusConfig::default()
            },
            ..Default::default()
        };
        config.database.url = SecretUrl::new(&database.url);
        config.security = crate::test_security();
        config.deliveries = crate::test_deliveries();
        // The test Dovecot listens on loopback.
        config.accounts = pushmail_common::egress::EgressConfig::loopback();
        config.cache.shared = StateStoreConfig {
            kind: StateStoreKind::Redis,
            redis: redis_config(),
            ..Default::default()
        };
        let bus = pushmail_common::bus::connect(&config.bus, "binding-test").await?;
        let deps = pushmail_binding::Deps::connect(&config, bus).await?;
        let listeners = pushmail_common::host::GrpcListeners::ephemeral().await?;
        let addr = listeners.grpc.local_addr()?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(pushmail_binding::run(
            deps,
            listeners,
            Readiness::new("binding"),
            stop.clone(),
        ));
        let api = BindingAdmin::connect(addr).await?;
        Ok(Self {
            addr,
            api,
            stop,
            task,
            database,
        })
    }

    /// Stops the service and drops its database.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await??;
        self.database.drop_database().await
    }
}

/// Binding's admin API as a tenant admin and the operator use it.
pub struct BindingAdmin {
    /// Admin client (pass a token per call with [`authed`]).
    pub admin: AdminServiceClient<tonic::transport::Channel>,
}

impl BindingAdmin {
    /// A client of the binding service at `addr`.
    pub async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        Ok(Self {
            admin: AdminServiceClient::connect(format!("http://{addr}")).await?,
        })
    }

    /// A tenant with room for a few accounts.
    pub async fn tenant(&mut self) -> anyhow::Result<pb::CreateTenantResponse> {
        self.tenant_with(|_| {}).await
    }

    /// A new tenant whose request `adjust` changes.
    pub async fn tenant_with(
        &mut self,
        adjust: impl FnOnce(&mut pb::CreateTenantRequest),
    ) -> anyhow::Result<pb::CreateTenantResponse> {
        let mut request = pb::CreateTenantRequest {
            name: crate::unique("tenant"),
            max_accounts: 10,
            sms_per_day: 10,
            push_per_minute: 0,
            ..Default::default()
        };
        adjust(&mut request);
        Ok(self
            .admin
            .create_tenant(authed(OPERATOR_TOKEN, request))
            .await?
            .into_inner())
    }

    /// An account of `tenant`.
    pub async fn account(
        &mut self,
        tenant: &pb::CreateTenantResponse,
        address: &str,
        kind: pb::AccountKind,
        server: Option<(pb::ServerSettings, String)>,
    ) -> anyhow::Result<pb::Account> {
        let (server, credentials) = match server {
            Some((server, password)) => (Some(server), Some(pb::Credentials { password })),
            None => (None, None),
        };
        let request = pb::CreateAccountRequest {
            tenant_id: tenant.tenant_id.clone(),
            address: address.to_owned(),
            kind: kind.into(),
            server,
            credentials,
            submission: None,
        };
        Ok(self
            .admin
            .create_account(authed(&tenant.api_key, request))
            .await?
            .into_inner())
    }

    /// An enterprise-forwarded account of `tenant` at `address` (mail
    /// reaches it from the tenant's own server; no mailbox is watched).
    pub async fn forwarded(
        &mut self,
        tenant: &pb::CreateTenantResponse,
        address: &str,
    ) -> anyhow::Result<pb::Account> {
        self.account(tenant, address, pb::AccountKind::EnterpriseForwarded, None)
            .await
    }

    /// An account for a test Dovecot user, over plain text on `port`.
    pub async fn mailbox_account(
        &mut self,
        tenant: &pb::CreateTenantResponse,
        user: &crate::dovecot::MailUser,
        port: u16,
        kind: pb::AccountKind,
    ) -> anyhow::Result<pb::Account> {
        let server = pb::ServerSettings {
            host: "127.0.0.1".into(),
            port: u32::from(port),
            tls: pb::TlsMode::None.into(),
            username: user.address.clone(),
        };
        self.account(
            tenant,
            &user.address,
            kind,
            Some((server, user.password.clone())),
        )
        .await
    }

    /// A relay credential of `tenant` (its password is shown only here).
    pub async fn relay_credential(
        &mut self,
        tenant: &pb::CreateTenantResponse,
    ) -> anyhow::Result<pb::CreateRelayCredentialResponse> {
        Ok(self
            .admin
            .create_relay_credential(authed(
                &tenant.api_key,
                pb::CreateRelayCredentialRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    description: "test relay".to_owned(),
                },
            ))
            .await?
            .into_inner())
    }

    /// Sets `tenant`'s relay policy: the networks and client certificates
    /// (SHA-256 hex) that may deliver its mail without a login.
    pub async fn relay_policy(
        &mut self,
        tenant: &pb::CreateTenantResponse,
        sources: &[&str],
        certificates: &[&str],
    ) -> anyhow::Result<()> {
        self.admin
            .set_relay_policy(authed(
                &tenant.api_key,
                pb::SetRelayPolicyRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    allowed_sources: sources.iter().map(|s| (*s).to_owned()).collect(),
                    client_cert_sha256: certificates.iter().map(|s| (*s).to_owned()).collect(),
                },
            ))
            .await?;
        Ok(())
    }

    /// Binds a fresh number to `account` (the code read from the SMS topic
    /// through `watch`) and registers a device on it.
    pub async fn device(
        &mut self,
        tenant: &pb::CreateTenantResponse,
        account: &pb::Account,
        push_client: bool,
        watch: &mut crate::topics::TenantTopics,
    ) -> anyhow::Result<(String, pb::RegisterDeviceResponse)> {
        bind_device(&mut self.admin, tenant, account, push_client, watch).await
    }

    /// Changes the preferences of `account`'s (first) binding as its
    /// tenant admin does.
    pub async fn set_preferences(
        &mut self,
        tenant: &pb::CreateTenantResponse,
        account: &pb::Account,
        change: impl FnOnce(&mut pb::Preferences),
    ) -> anyhow::Result<()> {
        let key = &tenant.api_key;
        let bindings = self
            .admin
            .list_bindings(crate::authed(
                key,
                pb::ListBindingsRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    account_id: account.account_id.clone(),
                    page: None,
                },
            ))
            .await?
            .into_inner()
            .bindings;
        let mut preferences = self
            .admin
            .get_preferences(crate::authed(
                key,
                pb::GetPreferencesRequest {
                    tenant_id: tenant.tenant_id.clone(),
                    binding_id: bindings[0].binding_id.clone(),
                },
            ))
            .await?
            .into_inner();
        change(&mut preferences);
        self.admin
            .update_preferences(crate::authed(
                key,
                pb::UpdatePreferencesRequest {
                    preferences: Some(preferences),
                },
            ))
            .await?;
        Ok(())
    }
}

impl std::ops::Deref for BindingNode {
    type Target = BindingAdmin;

    fn deref(&self) -> &BindingAdmin {
        &self.api
    }
}

impl std::ops::DerefMut for BindingNode {
    fn deref_mut(&mut self) -> &mut BindingAdmin {
        &mut self.api
    }
}

/// Binds a fresh number to `account` through binding's `admin` API (the
/// code read from the SMS topic through `watch`) and registers a device on it.
pub async fn bind_device(
    admin: &mut AdminServiceClient<tonic::transport::Channel>,
    tenant: &pb::CreateTenantResponse,
    account: &pb::Account,
    push_client: bool,
    watch: &mut crate::topics::TenantTopics,
) -> anyhow::Result<(String, pb::RegisterDeviceResponse)> {
    use pushmail_proto::events::v1::{SmsOutbound, sms_outbound};
    use pushmail_proto::topics::SMS_OUTBOUND;
    let msisdn = crate::msisdn();
    let started = admin
        .start_binding(authed(
            &tenant.api_key,
            pb::StartBindingRequest {
                tenant_id: tenant.tenant_id.clone(),
                account_id: account.account_id.clone(),
                msisdn: msisdn.clone(),
            },
        ))
        .await?
        .into_inner();
    let code = loop {
        let sms: SmsOutbound = watch.next(SMS_OUTBOUND).await?;
        if let (true, Some(sms_outbound::Body::Text(text))) = (sms.msisdn == msisdn, sms.body) {
            break crate::otp_code(&text).ok_or_else(|| anyhow::anyhow!("no code in {text:?}"))?;
        }
    };
    admin
        .verify_binding(authed(
            &tenant.api_key,
            pb::VerifyBindingRequest {
                tenant_id: tenant.tenant_id.clone(),
                binding_id: started.binding_id,
                code,
            },
        ))
        .await?;
    let registered = admin
        .register_device(authed(
            &tenant.api_key,
            pb::RegisterDeviceRequest {
                tenant_id: tenant.tenant_id.clone(),
                msisdn: msisdn.clone(),
                label: "test phone".to_owned(),
                has_push_client: push_client,
            },
        ))
        .await?
        .into_inner();
    Ok((msisdn, registered))
}

/// An ingest service's settings for tests: binding at `binding`, the test
/// broker, Redis marks, blobs under `blobs`, every receiver on a free port.
pub fn ingest_config(binding: SocketAddr, blobs: &std::path::Path) -> pushmail_ingest::Config {
    let mut config = pushmail_ingest::Config {
        bus: BusConfig {
            kafka: kafka_config(),
            ..BusConfig::default()
        },
        ..Default::default()
    };
    config.binding.endpoint = format!("http://{binding}");
    config.binding.token = credential_secret(pushmail_common::service_identity::Service::Ingest);
    config.blob.dir = blobs.to_path_buf();
    config.marks = StateStoreConfig {
        kind: StateStoreKind::Redis,
        redis: redis_config(),
        ..Default::default()
    };
    config.pop3.interval_seconds = 1;
    config.smtp.hostname = "mx.test".to_owned();
    // Most tests send from loopback without a login; the inbound-mail
    // tests and the attack suite switch it on.
    config.smtp.require_auth = false;
    // The test Dovecot listens on loopback.
    config.accounts = pushmail_common::egress::EgressConfig::loopback();
    config
}

/// A running ingest service.
pub struct IngestNode {
    /// SMTP address.
    pub smtp: SocketAddr,
    /// LMTP address.
    pub lmtp: SocketAddr,
    /// Webhook HTTP address.
    pub webhook: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), pushmail_ingest::Error>>,
}

impl IngestNode {
    /// Starts ingest publishing to `bus`.
    pub async fn start(
        config: pushmail_ingest::Config,
        bus: Arc<dyn EventBus>,
    ) -> anyhow::Result<Self> {
        let deps = pushmail_ingest::Deps::connect(&config, bus).await?;
        let listeners = pushmail_ingest::Listeners::ephemeral().await?;
        let addr = |l: &Option<tokio::net::TcpListener>| {
            l.as_ref()
                .map(|l| l.local_addr())
                .transpose()?
                .ok_or_else(|| anyhow::anyhow!("receiver off"))
        };
        let smtp = addr(&listeners.smtp)?;
        let lmtp = addr(&listeners.lmtp)?;
        let webhook = addr(&listeners.webhook)?;
        let stop = CancellationToken::new();
        let task = tokio::spawn(pushmail_ingest::run(
            config,
            deps,
            listeners,
            Readiness::new("ingest"),
            stop.clone(),
        ));
        Ok(Self {
            smtp,
            lmtp,
            webhook,
            stop,
            task,
        })
    }

    /// Starts ingest publishing to the shared test broker.
    pub async fn on_test_broker(config: pushmail_ingest::Config) -> anyhow::Result<Self> {
        Self::start(config, kafka_bus().await?).await
    }

    /// Stops it and reports how it ended.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        Ok(self.task.await??)
    }
}

/// One tenant's `MailArrived` events on a broker, read by a group of the
/// test's own (other tests share the topic).
pub struct TenantEvents {
    subscription: Box<dyn pushmail_common::bus::Subscription>,
    tenant: String,
}

impl TenantEvents {
    /// Subscribes on `bus` (creating the topic if the broker is fresh).
    pub async fn on(bus: Arc<dyn EventBus>, tenant: &str) -> anyhow::Result<Self> {
        use pushmail_proto::topics::MAIL_ARRIVED;
        bus.ensure_topic(MAIL_ARRIVED.name(), 12).await?;
        let subscription = bus
            .subscribe(pushmail_common::bus::SubscribeOptions {
                group: crate::unique("tenant-events"),
                topics: vec![MAIL_ARRIVED.name().into()],
            })
            .await?;
        Ok(Self {
            subscription,
            tenant: tenant.to_owned(),
        })
    }

    /// On the shared test broker.
    pub async fn new(tenant: &str) -> anyhow::Result<Self> {
        Self::on(kafka_bus().await?, tenant).await
    }

    /// The tenant's next event, or `None` after `wait`.
    pub async fn next_within(
        &mut self,
        wait: std::time::Duration,
    ) -> anyhow::Result<Option<pushmail_proto::events::v1::MailArrived>> {
        use pushmail_common::bus::header;
        use pushmail_proto::topics::MAIL_ARRIVED;
        let next = tokio::time::timeout(wait, async {
            loop {
                let record = self.subscription.next().await?;
                if record.headers.get(header::TENANT_ID) == Some(&self.tenant) {
                    return anyhow::Ok(pushmail_common::bus::decode(MAIL_ARRIVED, &record)?);
                }
            }
        })
        .await;
        match next {
            Ok(event) => Ok(Some(event?)),
            Err(_) => Ok(None),
        }
    }

    /// The next event (within a minute), or an error.
    pub async fn next(&mut self) -> anyhow::Result<pushmail_proto::events::v1::MailArrived> {
        self.next_within(std::time::Duration::from_secs(60))
            .await?
            .ok_or_else(|| anyhow::anyhow!("no event within a minute"))
    }
}

/// An ingest service on a runtime of its own, so a test can kill it the
/// way a crash would: every task and connection dropped at once, nothing
/// released.
pub struct IsolatedIngest {
    runtime: Option<tokio::runtime::Runtime>,
}

impl IsolatedIngest {
    /// Starts ingest on the shared test broker.
    pub fn start(config: pushmail_ingest::Config) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.spawn(async move {
            let run = async {
                let deps = pushmail_ingest::Deps::connect(&config, kafka_bus().await?).await?;
                let listeners = pushmail_ingest::Listeners::ephemeral().await?;
                pushmail_ingest::run(
                    config,
                    deps,
                    listeners,
                    Readiness::new("ingest"),
                    CancellationToken::new(),
                )
                .await?;
                anyhow::Ok(())
            };
            if let Err(err) = run.await {
                eprintln!("isolated ingest failed: {err:#}");
            }
        });
        Ok(Self {
            runtime: Some(runtime),
        })
    }

    /// Drops everything at once, like `kill -9`.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for IsolatedIngest {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
