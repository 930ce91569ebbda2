//! Provision (MS-ASPROV): the two steps that give a phone its policy key.
//! The phone asks for the policy and is offered a key with the policy
//! document; it applies the policy and acknowledges that key; it is then
//! given the key every later request carries. Binding keeps both keys, so
//! the steps may land on different replicas. A phone with a wipe ordered
//! from the portal is handed the wipe instead (MS-ASPROV §3.2.5.1.2), and
//! its acknowledgement revokes its password.

use pushmail_wbxml::{Element, Tag, tag};

use crate::login::{Login, Logins, ProvisionError, Wipe};
use crate::policy::PolicyConfig;
use crate::protocol::Version;

/// The only policy type of 12.0 and later.
const POLICY_TYPE: &str = "MS-EAS-Provisioning-WBXML";

const PROVISION: Tag = tag("Provision", "Provision");
const POLICIES: Tag = tag("Provision", "Policies");
const POLICY: Tag = tag("Provision", "Policy");
const POLICY_TYPE_TAG: Tag = tag("Provision", "PolicyType");
const POLICY_KEY: Tag = tag("Provision", "PolicyKey");
const STATUS: Tag = tag("Provision", "Status");
const DATA: Tag = tag("Provision", "Data");
const REMOTE_WIPE: Tag = tag("Provision", "RemoteWipe");
const ACCOUNT_ONLY_REMOTE_WIPE: Tag = tag("Provision", "AccountOnlyRemoteWipe");
const DEVICE_INFORMATION: Tag = tag("Settings", "DeviceInformation");
const SETTINGS_STATUS: Tag = tag("Settings", "Status");
const SETTINGS_SET: Tag = tag("Settings", "Set");

/// Provision's status (MS-ASPROV §2.2.2.54.2) and the common status the
/// 16.x rule uses (MS-ASCMD §2.2.2.24).
mod status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const PROTOCOL_ERROR: &str = "2";
    pub(super) const SERVER_ERROR: &str = "3";
    pub(super) const DEVICE_INFORMATION_REQUIRED: &str = "165";
    /// A phone that did not apply a policy asking something of it.
    pub(super) const NOT_FULLY_PROVISIONABLE: &str = "139";
}

/// A Policy element's status.
mod policy_status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const UNKNOWN_TYPE: &str = "3";
    pub(super) const WRONG_KEY: &str = "5";
}

/// Why Provision could not be answered at all.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionFailure {
    /// Binding could not be asked (the phone retries).
    #[error("binding is unavailable")]
    Unavailable(#[source] tonic::Status),
}

/// The answer to a Provision request `body` from the phone of `login`.
pub async fn answer(
    logins: &dyn Logins,
    login: &Login,
    version: Version,
    body: &Element,
    policy: &PolicyConfig,
) -> Result<Element, ProvisionFailure> {
    if let Some(wipe) = login.wipe {
        return wiped(logins, login, wipe, body).await;
    }
    if body.tag() != PROVISION {
        return Ok(top(status::PROTOCOL_ERROR));
    }
    if body.get(REMOTE_WIPE).is_some() || body.get(ACCOUNT_ONLY_REMOTE_WIPE).is_some() {
        // A wipe acknowledged that was never asked for.
        return Ok(top(status::PROTOCOL_ERROR));
    }
    let Some(requested) = body.get(POLICIES).and_then(|p| p.get(POLICY)) else {
        return Ok(top(status::PROTOCOL_ERROR));
    };
    let kind = requested.get(POLICY_TYPE_TAG).map(Element::text);
    if kind.as_deref() != Some(POLICY_TYPE) {
        return Ok(with_policy(
            status::SUCCESS,
            policy_of(
                kind.as_deref().unwrap_or(POLICY_TYPE),
                policy_status::UNKNOWN_TYPE,
            ),
        ));
    }
    match requested.get(POLICY_KEY).map(|k| k.text()) {
        Some(key) => {
            // The phone's word on the policy: 1 applied it; 2, 3 and 4
            // did not, or not all of it (MS-ASPROV §2.2.2.54.2).
            let applied = requested.get(STATUS).map(Element::text);
            if policy.requires_anything() && applied.as_deref().map(str::trim) != Some("1") {
                return Ok(top(status::NOT_FULLY_PROVISIONABLE));
            }
            acknowledge(logins, login, &key, &policy.digest()).await
        }
        None => offer(logins, login, version, body, policy).await,
    }
}

/// Provision while `wipe` waits: any request is handed the wipe; the
/// phone's acknowledgement with status 1 is passed to binding with the
/// kind the phone says it did (the order may have changed after the phone
/// was handed it, and a phone wipes without waiting for an answer, so what
/// it did is recorded), which revokes the password, and answered 1. A
/// phone reporting failure (2) is answered 2 with the wipe again, as
/// MS-ASPROV §3.2.5.1.2.2 asks; anything else is a protocol error that
/// still names the wipe.
async fn wiped(
    logins: &dyn Logins,
    login: &Login,
    wipe: Wipe,
    body: &Element,
) -> Result<Element, ProvisionFailure> {
    let directive = |wipe: Wipe| match wipe {
        Wipe::Device => REMOTE_WIPE,
        Wipe::Account => ACCOUNT_ONLY_REMOTE_WIPE,
    };
    let answer = |code: &str, wipe: Wipe| Ok(top(code).with(Element::of(directive(wipe))));
    if body.tag() != PROVISION {
        return answer(status::PROTOCOL_ERROR, wipe);
    }
    let acknowledged = [
        (REMOTE_WIPE, Wipe::Device),
        (ACCOUNT_ONLY_REMOTE_WIPE, Wipe::Account),
    ]
    .into_iter()
    .find_map(|(tag, kind)| body.get(tag).map(|element| (element, kind)));
    let Some((acknowledged, done)) = acknowledged else {
        tracing::warn!("remote wipe handed to the phone");
        return answer(status::SUCCESS, wipe);
    };
    match acknowledged
        .get(STATUS)
        .map(|s| s.text())
        .as_deref()
        .map(str::trim)
    {
        Some("1") => {
            logins
                .acknowledge_wipe(login, done)
                .await
                .map_err(ProvisionFailure::Unavailable)?;
            if done != wipe {
                tracing::warn!(?done, ordered = ?wipe, "the phone did the wipe it was handed before the order changed");
            }
            tracing::warn!("the phone acknowledged its remote wipe");
            answer(status::SUCCESS, done)
        }
        Some("2") => {
            tracing::warn!("the phone reports its remote wipe failed; asked again");
            answer(status::PROTOCOL_ERROR, wipe)
        }
        _ => answer(status::PROTOCOL_ERROR, wipe),
    }
}

/// The first step: the policy and a key to acknowledge.
async fn offer(
    logins: &dyn Logins,
    login: &Login,
    version: Version,
    body: &Element,
    policy: &PolicyConfig,
) -> Result<Element, ProvisionFailure> {
    let said = body
        .get(DEVICE_INFORMATION)
        .and_then(|d| d.get(SETTINGS_SET));
    let informed = said.is_some();
    // 16.x phones must say what they are first (Exchange refuses them the
    // same way); 14.1 phones may.
    if version.is_16() && !informed {
        return Ok(top(status::DEVICE_INFORMATION_REQUIRED));
    }
    if let Some(set) = said
        && let Err(err) = logins
            .record_device(login, &crate::settings::device_information(set))
            .await
    {
        // What the phone is shows in the portal; provisioning goes on.
        tracing::warn!(error = %err, "device information not recorded");
    }
    let key = match logins.provision(login, None, "").await {
        Ok(key) => key,
        Err(ProvisionError::WrongKey) => return Ok(top(status::SERVER_ERROR)),
        Err(ProvisionError::Unavailable(status)) => {
            return Err(ProvisionFailure::Unavailable(status));
        }
    };
    let offered = policy_of(POLICY_TYPE, policy_status::SUCCESS)
        .with(Element::text_of(POLICY_KEY, key.to_string()))
        .with(Element::of(DATA).with(policy.document()));
    let mut answer = Element::of(PROVISION);
    if informed {
        answer = answer
            .with(Element::of(DEVICE_INFORMATION).with(Element::text_of(SETTINGS_STATUS, "1")));
    }
    Ok(answer
        .with(Element::text_of(STATUS, status::SUCCESS))
        .with(Element::of(POLICIES).with(offered)))
}

/// The second step: the offered key acknowledged, the phone's own given.
async fn acknowledge(
    logins: &dyn Logins,
    login: &Login,
    key: &str,
    digest: &str,
) -> Result<Element, ProvisionFailure> {
    let wrong = || {
        Ok(with_policy(
            status::SUCCESS,
            policy_of(POLICY_TYPE, policy_status::WRONG_KEY),
        ))
    };
    let Ok(acknowledged) = key.trim().parse::<u32>() else {
        return wrong();
    };
    if acknowledged == 0 {
        return wrong();
    }
    match logins.provision(login, Some(acknowledged), digest).await {
        Ok(key) => Ok(with_policy(
            status::SUCCESS,
            policy_of(POLICY_TYPE, policy_status::SUCCESS)
                .with(Element::text_of(POLICY_KEY, key.to_string())),
        )),
        Err(ProvisionError::WrongKey) => wrong(),
        Err(ProvisionError::Unavailable(status)) => Err(ProvisionFailure::Unavailable(status)),
    }
}

fn top(code: &str) -> Element {
    Element::of(PROVISION).with(Element::text_of(STATUS, code))
}

fn policy_of(kind: &str, code: &str) -> Element {
    Element::of(POLICY)
        .with(Element::text_of(POLICY_TYPE_TAG, kind))
        .with(Element::text_of(STATUS, code))
}

fn with_policy(code: &str, policy: Element) -> Element {
    top(code).with(Element::of(POLICIES).with(policy))
}
