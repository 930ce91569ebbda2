//! The protocol versions served: 14.1 (Exchange 2010 SP1, what most phones
//! still speak), 16.0 and 16.1 (Exchange 2016/2019, iOS 10 and later).

/// A protocol version we serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    /// 14.1.
    V14_1,
    /// 16.0.
    V16_0,
    /// 16.1.
    V16_1,
}

impl Version {
    /// Every version served, oldest first.
    pub const ALL: [Version; 3] = [Version::V14_1, Version::V16_0, Version::V16_1];

    /// As in `MS-ASProtocolVersion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V14_1 => "14.1",
            Self::V16_0 => "16.0",
            Self::V16_1 => "16.1",
        }
    }

    /// From the `MS-ASProtocolVersion` header.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text.trim())
    }

    /// From the base64 query form's byte (the version times ten: 141).
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            141 => Some(Self::V14_1),
            160 => Some(Self::V16_0),
            161 => Some(Self::V16_1),
            _ => None,
        }
    }

    /// `MS-ASProtocolVersions` as OPTIONS answers it.
    pub fn header() -> String {
        Self::ALL.map(Self::as_str).join(",")
    }

    /// 16.0 or later: Provision carries DeviceInformation, Sync may carry
    /// drafts, and several statuses moved from HTTP into bodies.
    pub fn is_16(self) -> bool {
        self >= Self::V16_0
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_both_forms() {
        assert_eq!(Version::parse("16.1"), Some(Version::V16_1));
        assert_eq!(Version::parse(" 14.1 "), Some(Version::V14_1));
        assert_eq!(Version::parse("12.1"), None, "not served");
        assert_eq!(Version::parse("16"), None);
        assert_eq!(Version::from_byte(160), Some(Version::V16_0));
        assert_eq!(Version::from_byte(121), None);
        assert_eq!(Version::header(), "14.1,16.0,16.1");
        assert!(Version::V16_0.is_16() && !Version::V14_1.is_16());
    }
}
