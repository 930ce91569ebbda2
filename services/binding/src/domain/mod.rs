//! Domain types of the binding service, parsed once at the edge so the rest
//! of the service never sees an unvalidated number or id.

mod account;
mod app_password;
mod binding;
mod checkpoint;
mod delivery;
mod device;
mod ids;
mod mail_domain;
mod msisdn;
mod otp;
mod preferences;
mod quiet_hours;
mod relay;
mod sms;
mod target;
mod tenant;
mod traffic;

pub use account::{
    Account, AccountKind, MAX_WATCHED_FOLDERS, NewAccount, ServerSettings, SubmissionChange,
    TlsMode, watched_folders,
};
pub use app_password::{AppPassword, ClientDevice, DeviceInformation, Wipe, WipeKind};
pub use binding::{Binding, BindingState};
pub(crate) use checkpoint::MAX_MAILBOX_NAME;
pub use checkpoint::MailboxCheckpoint;
pub use delivery::{Delivery, DeliveryCursor};
pub use device::{Device, NewDevice};
pub use ids::{
    AccountId, ApiKeyId, AppPasswordId, BindingId, DeviceId, IdError, RelayCredentialId, TenantId,
};
pub(crate) use mail_domain::owners_of;
pub use mail_domain::{MailDomain, MailDomainError};
pub use msisdn::{Msisdn, MsisdnError};
pub(crate) use otp::until_next_day;
pub use otp::{OtpCheck, OtpCode, OtpError, OtpIssuer, OtpPolicy, PendingCode, SendLimits};
pub use preferences::{AddressList, ContentLevel, Preferences, PreferencesError};
pub use quiet_hours::{QuietHours, QuietHoursError};
pub use relay::{RelayCredential, RelayPolicy, RelayPolicyError};
pub use sms::OutboxSms;
pub use target::{DeliveryTarget, TargetDevice};
pub use tenant::ApiKeyRecord;
pub use tenant::{
    ApiKey, ApiKeyHash, MAX_LIVE_KEYS, NewApiKey, NewTenant, Tenant, TenantZone, ZoneError,
};
pub use traffic::{Traffic, TrafficDay};
