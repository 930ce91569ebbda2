//! `ListOutboundSms` (the SMS outbox) and `UpdateAccount`.

use pushmail_common::redact::Secret;
use pushmail_proto::binding::v1 as pb;
use tonic::{Request, Response, Status};

use super::auth::{Caller, caller};
use super::status::respond;
use super::{next_time_page, page, time_cursor};
use crate::clock::timestamp;
use crate::domain::{AccountId, OutboxSms};
use crate::registry::Registry;
use crate::wire;

fn outbound(sms: &OutboxSms) -> pb::OutboundSms {
    pb::OutboundSms {
        tenant_id: sms.tenant.to_string(),
        sms_id: sms.id.clone(),
        msisdn: sms.msisdn.clone(),
        purpose: sms.purpose.clone(),
        text: sms.text.clone(),
        url: sms.url.clone(),
        kind: sms.kind.clone(),
        account_id: sms.account_id.clone(),
        device_id: sms.device_id.clone(),
        at: Some(timestamp(sms.at_ms)),
    }
}

pub(super) async fn list_outbound_sms(
    registry: &Registry,
    request: Request<pb::ListOutboundSmsRequest>,
) -> Result<Response<pb::ListOutboundSmsResponse>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let who = caller(registry, request.metadata()).await?;
            // An operator with no tenant named reads every tenant's; anyone
            // else acts on one tenant as everywhere.
            let tenant = match who {
                Caller::Operator if req.tenant_id.is_empty() => None,
                other => Some(other.tenant(&req.tenant_id)?),
            };
            let page = page(req.page.as_ref())?;
            let after = time_cursor(&page)?;
            let messages = registry
                .sms_outbox(tenant, after.as_ref(), page.size)
                .await?;
            let last = messages.last().map(|m| (m.at_ms, m.id.as_str()));
            let next = next_time_page(last, messages.len(), page.size);
            Ok(pb::ListOutboundSmsResponse {
                messages: messages.iter().map(outbound).collect(),
                page: next,
            })
        }
        .await,
    )
}

pub(super) async fn update_account(
    registry: &Registry,
    request: Request<pb::UpdateAccountRequest>,
) -> Result<Response<pb::Account>, Status> {
    respond(
        async {
            let req = request.get_ref();
            let tenant = super::admin::scope(registry, &request, &req.tenant_id).await?;
            let id = wire::id("account_id", &req.account_id, AccountId::parse)?;
            let change = wire::account_update(req)?;
            let password = change.password.map(Secret::new);
            let updated = registry
                .update_account(
                    tenant,
                    id,
                    change.server.as_ref(),
                    &change.submission,
                    password.as_ref(),
                    change.watched_folders.as_deref(),
                )
                .await?;
            Ok(wire::account(&updated))
        }
        .await,
    )
}
