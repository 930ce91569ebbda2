//! The ActiveSync code pages (MS-ASWBXML §2.1.2.1): each page's number,
//! its XML namespace and its tags' names, for logs, errors and the tests
//! that hold our encoding to libwbxml's. Pages are added as the commands
//! that use them are built; [`name`] knows only what is listed here.

/// One code page.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Its number.
    pub number: u8,
    /// Its namespace (`AirSync:`).
    pub namespace: &'static str,
    /// Its tags and their names.
    pub tags: &'static [(u8, &'static str)],
}

/// Page 0: Sync.
pub const AIR_SYNC: Page = Page {
    number: 0,
    namespace: "AirSync",
    tags: &[
        (0x05, "Sync"),
        (0x06, "Responses"),
        (0x07, "Add"),
        (0x08, "Change"),
        (0x09, "Delete"),
        (0x0A, "Fetch"),
        (0x0B, "SyncKey"),
        (0x0C, "ClientId"),
        (0x0D, "ServerId"),
        (0x0E, "Status"),
        (0x0F, "Collection"),
        (0x10, "Class"),
        (0x12, "CollectionId"),
        (0x13, "GetChanges"),
        (0x14, "MoreAvailable"),
        (0x15, "WindowSize"),
        (0x16, "Commands"),
        (0x17, "Options"),
        (0x18, "FilterType"),
        (0x1B, "Conflict"),
        (0x1C, "Collections"),
        (0x1D, "ApplicationData"),
        (0x1E, "DeletesAsMoves"),
        (0x20, "Supported"),
        (0x21, "SoftDelete"),
        (0x22, "MIMESupport"),
        (0x23, "MIMETruncation"),
        (0x24, "Wait"),
        (0x25, "Limit"),
        (0x26, "Partial"),
    ],
};

/// Page 7: FolderSync and folder changes.
pub const FOLDER_HIERARCHY: Page = Page {
    number: 7,
    namespace: "FolderHierarchy",
    tags: &[
        (0x07, "DisplayName"),
        (0x08, "ServerId"),
        (0x09, "ParentId"),
        (0x0A, "Type"),
        (0x0C, "Status"),
        (0x0E, "Changes"),
        (0x0F, "Add"),
        (0x10, "Delete"),
        (0x11, "Update"),
        (0x12, "SyncKey"),
        (0x13, "FolderCreate"),
        (0x14, "FolderDelete"),
        (0x15, "FolderUpdate"),
        (0x16, "FolderSync"),
        (0x17, "Count"),
    ],
};

/// Page 13: Ping.
pub const PING: Page = Page {
    number: 13,
    namespace: "Ping",
    tags: &[
        (0x05, "Ping"),
        (0x06, "AutdState"),
        (0x07, "Status"),
        (0x08, "HeartbeatInterval"),
        (0x09, "Folders"),
        (0x0A, "Folder"),
        (0x0B, "Id"),
        (0x0C, "Class"),
        (0x0D, "MaxFolders"),
    ],
};

/// Page 14: Provision.
pub const PROVISION: Page = Page {
    number: 14,
    namespace: "Provision",
    tags: &[
        (0x05, "Provision"),
        (0x06, "Policies"),
        (0x07, "Policy"),
        (0x08, "PolicyType"),
        (0x09, "PolicyKey"),
        (0x0A, "Data"),
        (0x0B, "Status"),
        (0x0C, "RemoteWipe"),
        (0x0D, "EASProvisionDoc"),
    ],
};

/// Every page listed so far.
pub const PAGES: &[Page] = &[AIR_SYNC, FOLDER_HIERARCHY, PING, PROVISION];

/// A tag's name, when its page and tag are listed.
pub fn name(page: u8, tag: u8) -> Option<&'static str> {
    PAGES
        .iter()
        .find(|p| p.number == page)?
        .tags
        .iter()
        .find(|(t, _)| *t == tag)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_tags_and_listed_once() {
        for page in PAGES {
            let mut seen = std::collections::BTreeSet::new();
            for (tag, name) in page.tags {
                assert!((0x05..=0x3F).contains(tag), "{} {tag:#x}", page.namespace);
                assert!(seen.insert(tag), "{} {name} twice", page.namespace);
            }
        }
        assert_eq!(name(13, 0x08), Some("HeartbeatInterval"));
        assert_eq!(name(13, 0x3F), None);
        assert_eq!(name(99, 0x05), None);
    }
}
