//! Settings (MS-ASCMD §2.2.1.18): what the phone says it is
//! (`DeviceInformation`, recorded in binding for the portal) and who the
//! user is (`UserInformation`: the account's address). Out-of-office
//! replies are not the platform's to set on a user's mailbox: a Get says
//! they are off, a Set is denied by policy; so is a recovery password,
//! which the device policy does not enable.

use pushmail_wbxml::{Element, Tag, tag};

use crate::login::{DeviceInformation, Login, Logins};

const SETTINGS: Tag = tag("Settings", "Settings");
const STATUS: Tag = tag("Settings", "Status");
const GET: Tag = tag("Settings", "Get");
const SET: Tag = tag("Settings", "Set");
const OOF: Tag = tag("Settings", "Oof");
const OOF_STATE: Tag = tag("Settings", "OofState");
const DEVICE_INFORMATION: Tag = tag("Settings", "DeviceInformation");
const USER_INFORMATION: Tag = tag("Settings", "UserInformation");
const DEVICE_PASSWORD: Tag = tag("Settings", "DevicePassword");
const RIGHTS_MANAGEMENT: Tag = tag("Settings", "RightsManagementInformation");
const ACCOUNTS: Tag = tag("Settings", "Accounts");
const ACCOUNT: Tag = tag("Settings", "Account");
const USER_DISPLAY_NAME: Tag = tag("Settings", "UserDisplayName");
const EMAIL_ADDRESSES: Tag = tag("Settings", "EmailAddresses");
const PRIMARY_SMTP_ADDRESS: Tag = tag("Settings", "PrimarySmtpAddress");
const TEMPLATES: Tag = tag("RightsManagement", "RightsManagementTemplates");

/// Settings' statuses (MS-ASCMD §2.2.3.177.14).
mod status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const PROTOCOL_ERROR: &str = "2";
    pub(super) const SERVER_UNAVAILABLE: &str = "4";
    pub(super) const DENIED_BY_POLICY: &str = "7";
}

/// What a `DeviceInformation/Set` says.
pub fn device_information(set: &Element) -> DeviceInformation {
    let field = |name: &str| {
        set.get(tag("Settings", name))
            .map(Element::text)
            .unwrap_or_default()
    };
    DeviceInformation {
        model: field("Model"),
        os: field("OS"),
        friendly_name: field("FriendlyName"),
        user_agent: field("UserAgent"),
        mobile_operator: field("MobileOperator"),
    }
}

fn with_status(of: Tag, code: &str) -> Element {
    Element::of(of).with(Element::text_of(STATUS, code))
}

/// The answer to a Settings request `body` from the phone of `login`.
pub async fn answer(logins: &dyn Logins, login: &Login, body: &Element) -> Element {
    if body.tag() != SETTINGS {
        return with_status(SETTINGS, status::PROTOCOL_ERROR);
    }
    let mut answer = Element::of(SETTINGS).with(Element::text_of(STATUS, status::SUCCESS));
    for asked in body.elements() {
        let part = match asked.tag() {
            OOF if asked.get(GET).is_some() => with_status(OOF, status::SUCCESS)
                .with(Element::of(GET).with(Element::text_of(OOF_STATE, "0"))),
            OOF | DEVICE_PASSWORD => with_status(asked.tag(), status::DENIED_BY_POLICY),
            DEVICE_INFORMATION => match asked.get(SET) {
                Some(set) => {
                    let said = device_information(set);
                    match logins.record_device(login, &said).await {
                        Ok(()) => with_status(DEVICE_INFORMATION, status::SUCCESS),
                        Err(err) => {
                            tracing::warn!(error = %err, "device information not recorded");
                            with_status(DEVICE_INFORMATION, status::SERVER_UNAVAILABLE)
                        }
                    }
                }
                None => with_status(DEVICE_INFORMATION, status::PROTOCOL_ERROR),
            },
            USER_INFORMATION => with_status(USER_INFORMATION, status::SUCCESS).with(
                Element::of(GET).with(
                    Element::of(ACCOUNTS).with(
                        Element::of(ACCOUNT)
                            .with(Element::text_of(USER_DISPLAY_NAME, login.address.clone()))
                            .with(Element::of(EMAIL_ADDRESSES).with(Element::text_of(
                                PRIMARY_SMTP_ADDRESS,
                                login.address.clone(),
                            ))),
                    ),
                ),
            ),
            // No rights-management templates are offered.
            RIGHTS_MANAGEMENT => with_status(RIGHTS_MANAGEMENT, status::SUCCESS)
                .with(Element::of(GET).with(Element::of(TEMPLATES))),
            other => with_status(other, status::PROTOCOL_ERROR),
        };
        answer = answer.with(part);
    }
    answer
}
