//! Who is calling: `authorization: Bearer <token>` metadata, checked on every
//! call. Tenants present their API key and act on their own rows only;
//! other pushmail services present their own credential and may call only
//! the internal methods allowed to them (`internal.rs`), never the admin
//! surface.

use pushmail_common::service_identity::Service;
use tonic::metadata::MetadataMap;

use crate::domain::{IdError, TenantId};
use crate::keys::Privileged;
use crate::registry::{ApiError, Registry};
use crate::wire;

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// Another pushmail service.
    Service(Service),
    /// A carrier operator.
    Operator,
    /// A tenant, by its API key.
    Tenant(TenantId),
}

fn bearer(metadata: &MetadataMap) -> Result<&str, ApiError> {
    if metadata.get("authorization").is_none() {
        return Err(ApiError::Unauthenticated(
            "authorization metadata is required: Bearer <token>",
        ));
    }
    pushmail_common::auth::bearer(metadata).ok_or(ApiError::Unauthenticated(
        "authorization must be: Bearer <token>",
    ))
}

/// Authenticates the caller.
pub(super) async fn caller(
    registry: &Registry,
    metadata: &MetadataMap,
) -> Result<Caller, ApiError> {
    let token = bearer(metadata)?;
    match registry.privileged(token) {
        Ok(Some(Privileged::Service(service))) => Ok(Caller::Service(service)),
        Ok(Some(Privileged::Operator)) => Ok(Caller::Operator),
        Ok(None) => registry.tenant_of_key(token).await.map(Caller::Tenant),
        Err(err) => {
            tracing::warn!(error = %pushmail_common::report::Report(&err), "service credential refused");
            Err(ApiError::Unauthenticated(
                "the service credential is not valid",
            ))
        }
    }
}

impl Caller {
    /// The tenant a request acts on: its `tenant_id`, which a tenant caller
    /// may leave empty and may not set to another tenant.
    pub(crate) fn tenant(self, requested: &str) -> Result<TenantId, ApiError> {
        let parse: fn(&str) -> Result<TenantId, IdError> = TenantId::parse;
        match self {
            Self::Tenant(own) if requested.is_empty() => Ok(own),
            Self::Tenant(own) => {
                if wire::id("tenant_id", requested, parse)? == own {
                    Ok(own)
                } else {
                    Err(ApiError::PermissionDenied(
                        "the API key does not belong to this tenant",
                    ))
                }
            }
            Self::Operator => wire::id("tenant_id", requested, parse),
            Self::Service(_) => Err(ApiError::PermissionDenied(
                "a service credential is not an admin credential",
            )),
        }
    }

    /// Only the pushmail services in `allowed` may make this call.
    pub(crate) fn require_service(self, allowed: &[Service]) -> Result<Service, ApiError> {
        match self {
            Self::Service(service) if allowed.contains(&service) => Ok(service),
            Self::Service(_) => Err(ApiError::PermissionDenied(
                "this service may not make this call",
            )),
            _ => Err(ApiError::PermissionDenied(
                "this call is for pushmail services only",
            )),
        }
    }

    /// Only an operator may make this call.
    pub(crate) fn require_operator(self) -> Result<(), ApiError> {
        match self {
            Self::Operator => Ok(()),
            _ => Err(ApiError::PermissionDenied(
                "this call is for operators only",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_is_required_and_well_formed() {
        let mut metadata = MetadataMap::new();
        assert!(matches!(
            bearer(&metadata),
            Err(ApiError::Unauthenticated(_))
        ));
        metadata.insert("authorization", "Basic abc".parse().unwrap());
        assert!(matches!(
            bearer(&metadata),
            Err(ApiError::Unauthenticated(_))
        ));
        metadata.insert("authorization", "Bearer ".parse().unwrap());
        assert!(matches!(
            bearer(&metadata),
            Err(ApiError::Unauthenticated(_))
        ));
        metadata.insert("authorization", "Bearer pmk_x".parse().unwrap());
        assert_eq!(bearer(&metadata).unwrap(), "pmk_x");
    }

    #[test]
    fn a_tenant_acts_on_its_own_rows_only() {
        let own = TenantId::generate();
        let other = TenantId::generate();
        let caller = Caller::Tenant(own);
        assert_eq!(caller.tenant("").unwrap(), own);
        assert_eq!(caller.tenant(&own.to_string()).unwrap(), own);
        assert!(matches!(
            caller.tenant(&other.to_string()),
            Err(ApiError::PermissionDenied(_))
        ));
        assert!(matches!(
            caller.tenant("not-a-uuid"),
            Err(ApiError::Invalid {
                field: "tenant_id",
                ..
            })
        ));
        assert!(matches!(
            Caller::Operator.tenant(""),
            Err(ApiError::Invalid { .. })
        ));
        assert_eq!(Caller::Operator.tenant(&other.to_string()).unwrap(), other);
        let ingest = Caller::Service(Service::Ingest);
        assert!(caller.require_service(&Service::ALL).is_err());
        assert!(Caller::Operator.require_service(&Service::ALL).is_err());
        assert!(ingest.require_operator().is_err());
        assert_eq!(
            ingest.require_service(&[Service::Ingest]).unwrap(),
            Service::Ingest
        );
        assert!(matches!(
            ingest.require_service(&[Service::Dispatch]),
            Err(ApiError::PermissionDenied(_))
        ));
        // A service never acts on a tenant's rows through the admin surface.
        assert!(matches!(
            ingest.tenant(&other.to_string()),
            Err(ApiError::PermissionDenied(_))
        ));
    }
}
