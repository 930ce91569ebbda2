//! Secrets in config: real values for the code, redacted for every human.
//!
//! The same `Serialize` impl feeds figment's defaults layer (which must see
//! the real value) and `--dump-config` (which must not), so redaction is a
//! mode switched on around the dump rather than a property of the type.

use std::cell::Cell;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

thread_local! {
    static REDACTING: Cell<bool> = const { Cell::new(false) };
}

const MASK: &str = "<redacted>";

/// Runs `f` with secrets serialized as a mask.
pub fn redacted<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            REDACTING.with(|r| r.set(self.0));
        }
    }
    let _reset = Reset(REDACTING.with(|r| r.replace(true)));
    f()
}

fn redacting() -> bool {
    REDACTING.with(Cell::get)
}

/// A secret string: never shown by `Debug`, masked in `--dump-config`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The real value; call it only where the secret is used.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether a value was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { MASK })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if redacting() && !self.0.is_empty() {
            serializer.serialize_str(MASK)
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// A connection URL whose password (if any) is a secret, e.g.
/// `postgres://user:pw@host/db`. The rest of the URL stays visible in dumps
/// because operators need it to debug connectivity.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretUrl(String);

impl SecretUrl {
    /// Wraps a URL.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The URL with its password, for the driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password masked, for logs.
    pub fn masked(&self) -> String {
        mask_url_password(&self.0)
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if redacting() {
            serializer.serialize_str(&self.masked())
        } else {
            serializer.serialize_str(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self)
    }
}

/// Replaces the password of `scheme://user:password@host…` with a mask.
pub fn mask_url_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_owned();
    };
    format!(
        "{}://{}:{}{}",
        &url[..scheme_end],
        &userinfo[..colon],
        MASK,
        &rest[at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Holder {
        key: Secret,
        url: SecretUrl,
    }

    #[test]
    fn masks_only_inside_redacted_scope() {
        let holder = Holder {
            key: Secret::new("hunter2"),
            url: SecretUrl::new("postgres://app:pw@db:5432/pushmail?sslmode=require"),
        };
        let plain = serde_json::to_string(&holder).unwrap();
        assert!(plain.contains("hunter2") && plain.contains(":pw@"));
        let dumped = redacted(|| serde_json::to_string(&holder).unwrap());
        assert!(!dumped.contains("hunter2"), "{dumped}");
        assert!(!dumped.contains(":pw@"), "{dumped}");
        assert!(dumped.contains("postgres://app:<redacted>@db:5432/pushmail?sslmode=require"));
        // The mode ends with the scope.
        assert!(serde_json::to_string(&holder).unwrap().contains("hunter2"));
    }

    #[test]
    fn urls_without_password_are_unchanged() {
        for url in [
            "redis://127.0.0.1:6379/0",
            "postgres://postgres@h/db",
            "sqlite://x.db",
            "x",
        ] {
            assert_eq!(mask_url_password(url), url);
        }
    }

    #[test]
    fn debug_never_shows_the_secret() {
        assert_eq!(format!("{:?}", Secret::new("s3cret")), "<redacted>");
        assert!(!format!("{:?}", SecretUrl::new("redis://:pw@h:1")).contains("pw@"));
    }
}
