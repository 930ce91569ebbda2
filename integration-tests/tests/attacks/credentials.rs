//! Every cell of the credential matrix (`docs/security.md`): each gRPC
//! method of binding, session and transcode called on the running
//! platform with each service's credential, a forged one and none. A
//! method answers past authentication only for the services allowed it;
//! a valid credential of another service gets PERMISSION_DENIED, a forged
//! or missing one UNAUTHENTICATED. The REST API refuses every service
//! credential outright.

use std::net::SocketAddr;

use futures::future::BoxFuture;
use pushmail_common::service_identity::{CredentialIssuer, Service};
use pushmail_proto::binding::v1 as pb;
use pushmail_proto::binding::v1::admin_service_client::AdminServiceClient;
use pushmail_proto::binding::v1::binding_service_client::BindingServiceClient;
use pushmail_proto::session::v1 as session;
use pushmail_proto::session::v1::session_service_client::SessionServiceClient;
use pushmail_proto::transcode::v1 as transcode;
use pushmail_proto::transcode::v1::transcode_service_client::TranscodeServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::Target;

/// Who presents what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presenter {
    Nobody,
    Forged,
    As(Service),
}

impl Presenter {
    fn all() -> Vec<Self> {
        let mut all = vec![Self::Nobody, Self::Forged];
        all.extend(Service::ALL.map(Self::As));
        all
    }

    fn request<T>(self, message: T) -> tonic::Request<T> {
        match self {
            Self::Nobody => tonic::Request::new(message),
            Self::Forged => {
                // A well-formed credential naming ingest, from another issuer.
                let forged = CredentialIssuer::from_seed_hex(&"99".repeat(32))
                    .unwrap()
                    .mint(Service::Ingest, 0);
                pushmail_integration_tests::authed(forged.expose(), message)
            }
            Self::As(service) => pushmail_integration_tests::authed(
                &pushmail_integration_tests::credential(service),
                message,
            ),
        }
    }
}

/// One method: its name, who may call it, and a call that answers the
/// status code.
struct Method {
    name: &'static str,
    allowed: &'static [Service],
    call: Box<dyn Fn(Presenter) -> BoxFuture<'static, Code> + Send + Sync>,
}

fn code<T>(answer: Result<tonic::Response<T>, tonic::Status>) -> Code {
    answer.map_or_else(|s| s.code(), |_| Code::Ok)
}

async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// A [`Method`] calling `$rpc` with the message `$message` makes of the
/// honest tenant's and account's ids.
macro_rules! method {
    ($name:literal, $allowed:expr, $channel:expr, $ids:expr, $client:ident, $rpc:ident, $message:expr) => {{
        let channel = $channel.clone();
        let (tenant, account): (String, String) = $ids.clone();
        let make = $message;
        Method {
            name: $name,
            allowed: $allowed,
            call: Box::new(move |who: Presenter| {
                let mut client = $client::new(channel.clone());
                let message = make(tenant.clone(), account.clone());
                Box::pin(async move { code(client.$rpc(who.request(message)).await) })
            }),
        }
    }};
}

async fn methods(target: &Target) -> Vec<Method> {
    use Service::{Dispatch, Gateway, Ingest, Mailbox, Session};
    let grpc = target.platform.grpc;
    let binding = channel(grpc.binding).await;
    let sessions = channel(grpc.session).await;
    let transcode = channel(grpc.transcode).await;
    let ids = (
        target.tenant.tenant_id.clone(),
        target.account.account_id.clone(),
    );
    vec![
        method!(
            "binding ListWatchedAccounts",
            &[Ingest],
            binding,
            ids,
            BindingServiceClient,
            list_watched_accounts,
            |_: String, _: String| pb::ListWatchedAccountsRequest { page: None }
        ),
        method!(
            "binding GetAccountAccess",
            &[Mailbox],
            binding,
            ids,
            BindingServiceClient,
            get_account_access,
            // The honest account is forwarded: past the caller check it is
            // FAILED_PRECONDITION, and no password is read.
            |t: String, a: String| pb::GetAccountAccessRequest {
                tenant_id: t,
                account_id: a
            }
        ),
        method!(
            "binding ResolveRecipient",
            &[Ingest],
            binding,
            ids,
            BindingServiceClient,
            resolve_recipient,
            |_: String, _: String| pb::ResolveRecipientRequest {
                address: "nobody@corp.example".into(),
                ..Default::default()
            }
        ),
        method!(
            "binding AuthenticateRelay",
            &[Ingest],
            binding,
            ids,
            BindingServiceClient,
            authenticate_relay,
            // A bad peer address: past the caller check it is refused as
            // INVALID_ARGUMENT, where wrong credentials would be
            // UNAUTHENTICATED and look like a refused caller.
            |_: String, _: String| pb::AuthenticateRelayRequest {
                username: "nobody".into(),
                password: "wrong".into(),
                peer_ip: "not an address".into(),
            }
        ),
        method!(
            "binding CreateApiKey",
            &[],
            binding,
            ids,
            AdminServiceClient,
            create_api_key,
            |t: String, _: String| pb::CreateApiKeyRequest {
                tenant_id: t,
                ..Default::default()
            }
        ),
        method!(
            "binding CreateRelayCredential",
            &[],
            binding,
            ids,
            AdminServiceClient,
            create_relay_credential,
            |t: String, _: String| pb::CreateRelayCredentialRequest {
                tenant_id: t,
                ..Default::default()
            }
        ),
        method!(
            "binding SetTenantDomains",
            &[],
            binding,
            ids,
            AdminServiceClient,
            set_tenant_domains,
            |t: String, _: String| pb::SetTenantDomainsRequest {
                tenant_id: t,
                ..Default::default()
            }
        ),
        method!(
            "binding GetDeliveryTargets",
            &[Dispatch, Gateway],
            binding,
            ids,
            BindingServiceClient,
            get_delivery_targets,
            |t: String, a: String| pb::GetDeliveryTargetsRequest {
                tenant_id: t,
                account_id: a
            }
        ),
        method!(
            "binding RecordTraffic",
            &[Dispatch, Gateway],
            binding,
            ids,
            BindingServiceClient,
            record_traffic,
            |t: String, a: String| pb::RecordTrafficRequest {
                tenant_id: t,
                account_id: a,
                ..Default::default()
            }
        ),
        method!(
            "binding ChargeSms",
            &[Dispatch],
            binding,
            ids,
            BindingServiceClient,
            charge_sms,
            |_: String, _: String| pb::ChargeSmsRequest {
                tenant_id: "not-an-id".into(),
                ..Default::default()
            }
        ),
        method!(
            "binding GetTenantLimits",
            &[Dispatch],
            binding,
            ids,
            BindingServiceClient,
            get_tenant_limits,
            |t: String, _: String| pb::GetTenantLimitsRequest { tenant_id: t }
        ),
        method!(
            "binding SaveMailboxCheckpoint",
            &[Ingest],
            binding,
            ids,
            BindingServiceClient,
            save_mailbox_checkpoint,
            |t: String, a: String| pb::SaveMailboxCheckpointRequest {
                tenant_id: t,
                account_id: a,
                mailbox: "INBOX".into(),
                checkpoint: Some(pb::MailboxCheckpoint {
                    uid_validity: 1,
                    last_uid: 1,
                    at_ms: 1,
                }),
            }
        ),
        method!(
            "binding GetMailboxCheckpoint",
            &[Ingest],
            binding,
            ids,
            BindingServiceClient,
            get_mailbox_checkpoint,
            |t: String, a: String| pb::GetMailboxCheckpointRequest {
                tenant_id: t,
                account_id: a,
                mailbox: "INBOX".into(),
            }
        ),
        method!(
            "binding WhoAmI",
            &[],
            binding,
            ids,
            AdminServiceClient,
            who_am_i,
            |_: String, _: String| pb::WhoAmIRequest {}
        ),
        method!(
            "binding CreateTenant",
            &[],
            binding,
            ids,
            AdminServiceClient,
            create_tenant,
            |_: String, _: String| pb::CreateTenantRequest {
                name: "mallory".into(),
                max_accounts: 1,
                sms_per_day: 1,
                ..Default::default()
            }
        ),
        method!(
            "binding ListAccounts",
            &[],
            binding,
            ids,
            AdminServiceClient,
            list_accounts,
            |t: String, _: String| pb::ListAccountsRequest {
                tenant_id: t,
                ..Default::default()
            }
        ),
        method!(
            "binding GetAccount",
            &[],
            binding,
            ids,
            AdminServiceClient,
            get_account,
            |t: String, a: String| pb::GetAccountRequest {
                tenant_id: t,
                account_id: a
            }
        ),
        method!(
            "binding CreateAccount",
            &[],
            binding,
            ids,
            AdminServiceClient,
            create_account,
            |t: String, _: String| pb::CreateAccountRequest {
                tenant_id: t,
                address: "mallory@corp.example".into(),
                kind: pb::AccountKind::EnterpriseForwarded.into(),
                ..Default::default()
            }
        ),
        method!(
            "binding DeleteAccount",
            &[],
            binding,
            ids,
            AdminServiceClient,
            delete_account,
            |t: String, a: String| pb::DeleteAccountRequest {
                tenant_id: t,
                account_id: a
            }
        ),
        method!(
            "binding ListBindings",
            &[],
            binding,
            ids,
            AdminServiceClient,
            list_bindings,
            |t: String, a: String| pb::ListBindingsRequest {
                tenant_id: t,
                account_id: a,
                page: None,
            }
        ),
        method!(
            "binding ListDevices",
            &[],
            binding,
            ids,
            AdminServiceClient,
            list_devices,
            |t: String, _: String| pb::ListDevicesRequest {
                tenant_id: t,
                ..Default::default()
            }
        ),
        method!(
            "binding ListDeliveries",
            &[],
            binding,
            ids,
            AdminServiceClient,
            list_deliveries,
            |t: String, a: String| pb::ListDeliveriesRequest {
                tenant_id: t,
                account_id: a,
                ..Default::default()
            }
        ),
        method!(
            "session Deliver",
            &[Dispatch],
            sessions,
            ids,
            SessionServiceClient,
            deliver,
            |_: String, _: String| session::DeliverRequest::default()
        ),
        method!(
            "session GetPresence",
            &[Gateway],
            sessions,
            ids,
            SessionServiceClient,
            get_presence,
            |t: String, _: String| session::GetPresenceRequest {
                tenant_id: t,
                device_id: "d".into()
            }
        ),
        method!(
            "session TakeOver",
            &[Session],
            sessions,
            ids,
            SessionServiceClient,
            take_over,
            |_: String, _: String| session::TakeOverRequest::default()
        ),
        method!(
            "transcode DescribeMessage",
            &[Gateway],
            transcode,
            ids,
            TranscodeServiceClient,
            describe_message,
            |_: String, _: String| transcode::DescribeMessageRequest::default()
        ),
        method!(
            "transcode Transcode",
            &[Gateway],
            transcode,
            ids,
            TranscodeServiceClient,
            transcode,
            |_: String, _: String| transcode::TranscodeRequest::default()
        ),
        method!(
            "transcode FetchPart",
            &[Gateway],
            transcode,
            ids,
            TranscodeServiceClient,
            fetch_part,
            |_: String, _: String| transcode::FetchPartRequest::default()
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_credential_calls_only_its_own_methods() {
    let mut target = Target::start().await;
    let mut wrong = Vec::new();
    for method in methods(&target).await {
        for who in Presenter::all() {
            let got = (method.call)(who).await;
            let allowed = matches!(who, Presenter::As(s) if method.allowed.contains(&s));
            let fine = match who {
                _ if allowed => !matches!(got, Code::Unauthenticated | Code::PermissionDenied),
                Presenter::Nobody | Presenter::Forged => got == Code::Unauthenticated,
                Presenter::As(_) => got == Code::PermissionDenied,
            };
            if !fine {
                wrong.push(format!("{} as {who:?}: {got:?}", method.name));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "cells of the matrix that answered wrongly:\n{}",
        wrong.join("\n")
    );

    // The honest tenant's rows are untouched by all of that.
    let listed = target
        .platform
        .api
        .admin
        .list_accounts(pushmail_integration_tests::authed(
            &target.tenant.api_key,
            pb::ListAccountsRequest::default(),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.accounts.len(), 1);

    // The public REST API refuses every service credential before anything.
    for service in Service::ALL {
        let answer = pushmail_integration_tests::http::get(
            target.platform.gateway_http,
            &format!("/api/v1/tenants/{}/accounts", target.tenant.tenant_id),
            &[(
                "authorization",
                &format!("Bearer {}", pushmail_integration_tests::credential(service)),
            )],
        )
        .await
        .unwrap();
        assert_eq!(answer.status, 401, "{service}: {}", answer.text());
        assert!(
            answer.text().contains("service credentials"),
            "{}",
            answer.text()
        );
    }
    target.still_serves().await;
    target.stop().await;
}
