//! Identifiers: UUIDs in text form, typed so a tenant id can never be
//! passed where an account id is expected.

use std::fmt;

use uuid::Uuid;

/// An id from outside was not a UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} must be a UUID, got {value:?}")]
pub struct IdError {
    kind: &'static str,
    value: String,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered id (UUIDv7: index-friendly).
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }

            /// Parses an id received from outside.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                Uuid::parse_str(value.trim())
                    .map(Self)
                    .map_err(|_| IdError { kind: $kind, value: value.chars().take(64).collect() })
            }

            /// Wraps a UUID read from the database.
            pub fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// A tenant: an enterprise, or the carrier's consumer brand.
    TenantId,
    "tenant id"
);
id_type!(
    /// A mail account.
    AccountId,
    "account id"
);
id_type!(
    /// A binding of an account to a phone number.
    BindingId,
    "binding id"
);
id_type!(
    /// A device (a phone with or without a push client).
    DeviceId,
    "device id"
);
id_type!(
    /// One of a tenant's API keys.
    ApiKeyId,
    "key id"
);
id_type!(
    /// One of a tenant's SMTP relay credentials.
    RelayCredentialId,
    "credential id"
);
id_type!(
    /// One of an account's app passwords (a phone's mail app).
    AppPasswordId,
    "app password id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_refuse_garbage() {
        let id = TenantId::generate();
        assert_eq!(TenantId::parse(&id.to_string()).unwrap(), id);
        let err = AccountId::parse("'; drop table accounts; --").unwrap_err();
        assert!(
            err.to_string().starts_with("account id must be a UUID"),
            "{err}"
        );
        assert!(DeviceId::parse("").is_err());
    }

    #[test]
    fn long_garbage_is_truncated_in_the_error() {
        let err = BindingId::parse(&"x".repeat(10_000)).unwrap_err();
        assert!(err.to_string().len() < 200);
    }
}
