//! The ActiveSync code pages (MS-ASWBXML §2.1.2.1): each page's number,
//! its XML namespace and its tags' names as the specification spells
//! them. Pages 0–24 are all here; page 25 (`Find`, 16.1) is not, as no
//! command of ours takes it. [`tag`] turns a name into a token at compile
//! time, so code says `tag("AirSync", "SyncKey")`, not `(0, 0x0B)`.

/// One code page.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Its number.
    pub number: u8,
    /// Its namespace (`AirSync:` without the colon).
    pub namespace: &'static str,
    /// Its tags' names from 0x05 up; `""` marks a token the page leaves unused.
    pub names: &'static [&'static str],
}

/// A tag token: its page and the tag without its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tag {
    /// The code page.
    pub page: u8,
    /// The tag, 0x05–0x3F.
    pub tag: u8,
}

/// The first tag of every page (0x00–0x04 are the global tokens).
const FIRST: u8 = 0x05;

impl Page {
    /// Its listed tags and their names.
    pub fn tags(&self) -> impl Iterator<Item = (u8, &'static str)> + '_ {
        (FIRST..)
            .zip(self.names.iter().copied())
            .filter(|(_, name)| !name.is_empty())
    }
}

/// Every ActiveSync code page, by number.
#[rustfmt::skip] // a table: one line per row of names reads better than one per name
pub const PAGES: &[Page] = &[
    Page { number: 0, namespace: "AirSync", names: &[
        "Sync", "Responses", "Add", "Change", "Delete", "Fetch", "SyncKey", "ClientId", "ServerId",
        "Status", "Collection", "Class", "Version", "CollectionId", "GetChanges", "MoreAvailable",
        "WindowSize", "Commands", "Options", "FilterType", "Truncation", "RTFTruncation",
        "Conflict", "Collections", "ApplicationData", "DeletesAsMoves", "NotifyGUID", "Supported",
        "SoftDelete", "MIMESupport", "MIMETruncation", "Wait", "Limit", "Partial",
        "ConversationMode", "MaxItems", "HeartbeatInterval",
    ] },
    Page { number: 1, namespace: "Contacts", names: &[
        "Anniversary", "AssistantName", "AssistantPhoneNumber", "Birthday", "Body", "BodySize",
        "BodyTruncated", "Business2PhoneNumber", "BusinessAddressCity", "BusinessAddressCountry",
        "BusinessAddressPostalCode", "BusinessAddressState", "BusinessAddressStreet",
        "BusinessFaxNumber", "BusinessPhoneNumber", "CarPhoneNumber", "Categories", "Category",
        "Children", "Child", "CompanyName", "Department", "Email1Address", "Email2Address",
        "Email3Address", "FileAs", "FirstName", "Home2PhoneNumber", "HomeAddressCity",
        "HomeAddressCountry", "HomeAddressPostalCode", "HomeAddressState", "HomeAddressStreet",
        "HomeFaxNumber", "HomePhoneNumber", "JobTitle", "LastName", "MiddleName",
        "MobilePhoneNumber", "OfficeLocation", "OtherAddressCity", "OtherAddressCountry",
        "OtherAddressPostalCode", "OtherAddressState", "OtherAddressStreet", "PagerNumber",
        "RadioPhoneNumber", "Spouse", "Suffix", "Title", "WebPage", "YomiCompanyName",
        "YomiFirstName", "YomiLastName", "CompressedRTF", "Picture", "Alias", "WeightedRank",
    ] },
    Page { number: 2, namespace: "Email", names: &[
        "Attachment", "Attachments", "AttName", "AttSize", "Att0Id", "AttMethod", "AttRemoved",
        "Body", "BodySize", "BodyTruncated", "DateReceived", "DisplayName", "DisplayTo",
        "Importance", "MessageClass", "Subject", "Read", "To", "Cc", "From", "ReplyTo",
        "AllDayEvent", "Categories", "Category", "DtStamp", "EndTime", "InstanceType", "BusyStatus",
        "Location", "MeetingRequest", "Organizer", "RecurrenceId", "Reminder", "ResponseRequested",
        "Recurrences", "Recurrence", "Type", "Until", "Occurrences", "Interval", "DayOfWeek",
        "DayOfMonth", "WeekOfMonth", "MonthOfYear", "StartTime", "Sensitivity", "TimeZone",
        "GlobalObjId", "ThreadTopic", "MIMEData", "MIMETruncated", "MIMESize", "InternetCPID",
        "Flag", "Status", "ContentClass", "FlagType", "CompleteTime", "DisallowNewTimeProposal",
    ] },
    Page { number: 3, namespace: "AirNotify", names: &[
        "Notify", "Notification", "Version", "Lifetime", "DeviceInfo", "Enable", "Folder",
        "ServerId", "DeviceAddress", "ValidCarrierProfiles", "CarrierProfile", "Status",
        "Responses", "Devices", "Device", "Id", "Expiry", "NotifyGUID", "DeviceFriendlyName",
    ] },
    Page { number: 4, namespace: "Calendar", names: &[
        "TimeZone", "AllDayEvent", "Attendees", "Attendee", "Email", "Name", "Body",
        "BodyTruncated", "BusyStatus", "Categories", "Category", "CompressedRTF", "DtStamp",
        "EndTime", "Exception", "Exceptions", "Deleted", "ExceptionStartTime", "Location",
        "MeetingStatus", "OrganizerEmail", "OrganizerName", "Recurrence", "Type", "Until",
        "Occurrences", "Interval", "DayOfWeek", "DayOfMonth", "WeekOfMonth", "MonthOfYear",
        "Reminder", "Sensitivity", "Subject", "StartTime", "UID", "AttendeeStatus", "AttendeeType",
        "", "", "", "", "", "", "", "", "DisallowNewTimeProposal", "ResponseRequested",
        "AppointmentReplyTime", "ResponseType", "CalendarType", "IsLeapMonth", "FirstDayOfWeek",
        "OnlineMeetingConfLink", "OnlineMeetingExternalLink", "ClientUid",
    ] },
    Page { number: 5, namespace: "Move", names: &[
        "MoveItems", "Move", "SrcMsgId", "SrcFldId", "DstFldId", "Response", "Status", "DstMsgId",
    ] },
    Page { number: 6, namespace: "GetItemEstimate", names: &[
        "GetItemEstimate", "Version", "Collections", "Collection", "Class", "CollectionId",
        "DateTime", "Estimate", "Response", "Status",
    ] },
    Page { number: 7, namespace: "FolderHierarchy", names: &[
        "Folders", "Folder", "DisplayName", "ServerId", "ParentId", "Type", "Response", "Status",
        "ContentClass", "Changes", "Add", "Delete", "Update", "SyncKey", "FolderCreate",
        "FolderDelete", "FolderUpdate", "FolderSync", "Count", "Version",
    ] },
    Page { number: 8, namespace: "MeetingResponse", names: &[
        "CalendarId", "CollectionId", "MeetingResponse", "RequestId", "Request", "Result", "Status",
        "UserResponse", "Version", "InstanceId", "", "", "", "SendResponse",
    ] },
    Page { number: 9, namespace: "Tasks", names: &[
        "Body", "BodySize", "BodyTruncated", "Categories", "Category", "Complete", "DateCompleted",
        "DueDate", "UtcDueDate", "Importance", "Recurrence", "Type", "Start", "Until",
        "Occurrences", "Interval", "DayOfMonth", "DayOfWeek", "WeekOfMonth", "MonthOfYear",
        "Regenerate", "DeadOccur", "ReminderSet", "ReminderTime", "Sensitivity", "StartDate",
        "UtcStartDate", "Subject", "CompressedRTF", "OrdinalDate", "SubOrdinalDate", "CalendarType",
        "IsLeapMonth", "FirstDayOfWeek",
    ] },
    Page { number: 10, namespace: "ResolveRecipients", names: &[
        "ResolveRecipients", "Response", "Status", "Type", "Recipient", "DisplayName",
        "EmailAddress", "Certificates", "Certificate", "MiniCertificate", "Options", "To",
        "CertificateRetrieval", "RecipientCount", "MaxCertificates", "MaxAmbiguousRecipients",
        "CertificateCount", "Availability", "StartTime", "EndTime", "MergedFreeBusy", "Picture",
        "MaxSize", "Data", "MaxPictures",
    ] },
    Page { number: 11, namespace: "ValidateCert", names: &[
        "ValidateCert", "Certificates", "Certificate", "CertificateChain", "CheckCRL", "Status",
    ] },
    Page { number: 12, namespace: "Contacts2", names: &[
        "CustomerId", "GovernmentId", "IMAddress", "IMAddress2", "IMAddress3", "ManagerName",
        "CompanyMainPhone", "AccountName", "NickName", "MMS",
    ] },
    Page { number: 13, namespace: "Ping", names: &[
        "Ping", "AutdState", "Status", "HeartbeatInterval", "Folders", "Folder", "Id", "Class",
        "MaxFolders",
    ] },
    Page { number: 14, namespace: "Provision", names: &[
        "Provision", "Policies", "Policy", "PolicyType", "PolicyKey", "Data", "Status",
        "RemoteWipe", "EASProvisionDoc", "DevicePasswordEnabled",
        "AlphanumericDevicePasswordRequired", "RequireStorageCardEncryption",
        "PasswordRecoveryEnabled", "DocumentBrowseEnabled", "AttachmentsEnabled",
        "MinDevicePasswordLength", "MaxInactivityTimeDeviceLock", "MaxDevicePasswordFailedAttempts",
        "MaxAttachmentSize", "AllowSimpleDevicePassword", "DevicePasswordExpiration",
        "DevicePasswordHistory", "AllowStorageCard", "AllowCamera", "RequireDeviceEncryption",
        "AllowUnsignedApplications", "AllowUnsignedInstallationPackages",
        "MinDevicePasswordComplexCharacters", "AllowWiFi", "AllowTextMessaging",
        "AllowPOPIMAPEmail", "AllowBluetooth", "AllowIrDA", "RequireManualSyncWhenRoaming",
        "AllowDesktopSync", "MaxCalendarAgeFilter", "AllowHTMLEmail", "MaxEmailAgeFilter",
        "MaxEmailBodyTruncationSize", "MaxEmailHTMLBodyTruncationSize",
        "RequireSignedSMIMEMessages", "RequireEncryptedSMIMEMessages",
        "RequireSignedSMIMEAlgorithm", "RequireEncryptionSMIMEAlgorithm",
        "AllowSMIMEEncryptionAlgorithmNegotiation", "AllowSMIMESoftCerts", "AllowBrowser",
        "AllowConsumerEmail", "AllowRemoteDesktop", "AllowInternetSharing",
        "UnapprovedInROMApplicationList", "ApplicationName", "ApprovedApplicationList", "Hash",
        "AccountOnlyRemoteWipe",
    ] },
    Page { number: 15, namespace: "Search", names: &[
        "Search", "", "Store", "Name", "Query", "Options", "Range", "Status", "Response", "Result",
        "Properties", "Total", "EqualTo", "Value", "And", "Or", "FreeText", "", "DeepTraversal",
        "LongId", "RebuildResults", "LessThan", "GreaterThan", "Schema", "Supported", "UserName",
        "Password", "ConversationId", "Picture", "MaxSize", "MaxPictures",
    ] },
    Page { number: 16, namespace: "GAL", names: &[
        "DisplayName", "Phone", "Office", "Title", "Company", "Alias", "FirstName", "LastName",
        "HomePhone", "MobilePhone", "EmailAddress", "Picture", "Status", "Data",
    ] },
    Page { number: 17, namespace: "AirSyncBase", names: &[
        "BodyPreference", "Type", "TruncationSize", "AllOrNone", "", "Body", "Data",
        "EstimatedDataSize", "Truncated", "Attachments", "Attachment", "DisplayName",
        "FileReference", "Method", "ContentId", "ContentLocation", "IsInline", "NativeBodyType",
        "ContentType", "Preview", "BodyPartPreference", "BodyPart", "Status", "Add", "Delete",
        "ClientId", "Content", "Location", "Annotation", "Street", "City", "State", "Country",
        "PostalCode", "Latitude", "Longitude", "Accuracy", "Altitude", "AltitudeAccuracy",
        "LocationUri", "InstanceId",
    ] },
    Page { number: 18, namespace: "Settings", names: &[
        "Settings", "Status", "Get", "Set", "Oof", "OofState", "StartTime", "EndTime", "OofMessage",
        "AppliesToInternal", "AppliesToExternalKnown", "AppliesToExternalUnknown", "Enabled",
        "ReplyMessage", "BodyType", "DevicePassword", "Password", "DeviceInformation", "Model",
        "IMEI", "FriendlyName", "OS", "OSLanguage", "PhoneNumber", "UserInformation",
        "EmailAddresses", "SMTPAddress", "UserAgent", "EnableOutboundSMS", "MobileOperator",
        "PrimarySmtpAddress", "Accounts", "Account", "AccountId", "AccountName", "UserDisplayName",
        "SendDisabled", "", "RightsManagementInformation",
    ] },
    Page { number: 19, namespace: "DocumentLibrary", names: &[
        "LinkId", "DisplayName", "IsFolder", "CreationDate", "LastModifiedDate", "IsHidden",
        "ContentLength", "ContentType",
    ] },
    Page { number: 20, namespace: "ItemOperations", names: &[
        "ItemOperations", "Fetch", "Store", "Options", "Range", "Total", "Properties", "Data",
        "Status", "Response", "Version", "Schema", "Part", "EmptyFolderContents",
        "DeleteSubFolders", "UserName", "Password", "Move", "DstFldId", "ConversationId",
        "MoveAlways",
    ] },
    Page { number: 21, namespace: "ComposeMail", names: &[
        "SendMail", "SmartForward", "SmartReply", "SaveInSentItems", "ReplaceMime", "", "Source",
        "FolderId", "ItemId", "LongId", "InstanceId", "Mime", "ClientId", "Status", "AccountId", "",
        "Forwardees", "Forwardee", "ForwardeeName", "ForwardeeEmail",
    ] },
    Page { number: 22, namespace: "Email2", names: &[
        "UmCallerID", "UmUserNotes", "UmAttDuration", "UmAttOrder", "ConversationId",
        "ConversationIndex", "LastVerbExecuted", "LastVerbExecutionTime", "ReceivedAsBcc", "Sender",
        "CalendarType", "IsLeapMonth", "AccountId", "FirstDayOfWeek", "MeetingMessageType", "",
        "IsDraft", "Bcc", "Send",
    ] },
    Page { number: 23, namespace: "Notes", names: &[
        "Subject", "MessageClass", "LastModifiedDate", "Categories", "Category",
    ] },
    Page { number: 24, namespace: "RightsManagement", names: &[
        "RightsManagementSupport", "RightsManagementTemplates", "RightsManagementTemplate",
        "RightsManagementLicense", "EditAllowed", "ReplyAllowed", "ReplyAllAllowed",
        "ForwardAllowed", "ModifyRecipientsAllowed", "ExtractAllowed", "PrintAllowed",
        "ExportAllowed", "ProgrammaticAccessAllowed", "Owner", "ContentExpiryDate", "TemplateID",
        "TemplateName", "TemplateDescription", "ContentOwner", "RemoveRightsManagementDistribution",
    ] },
    Page { number: 25, namespace: "Find", names: &[
        "Find", "SearchId", "ExecuteSearch", "MailBoxSearchCriterion", "Query", "Status",
        "FreeText", "Options", "Range", "DeepTraversal", "", "", "Response", "Result",
        "Properties", "Preview", "HasAttachments", "Total", "DisplayCc", "DisplayBcc",
        "GALSearchCriterion", "MaxPictures", "MaxSize", "Picture",
    ] },
];

/// A page by number.
pub fn page(number: u8) -> Option<&'static Page> {
    PAGES
        .get(usize::from(number))
        .filter(|p| p.number == number)
}

/// A tag's name, when its page and tag are listed.
pub fn name(page_number: u8, tag: u8) -> Option<&'static str> {
    let index = usize::from(tag.checked_sub(FIRST)?);
    page(page_number)?
        .names
        .get(index)
        .copied()
        .filter(|n| !n.is_empty())
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The token of `name` on the page `namespace`; used in constants, where
/// a name not in the tables stops the build.
///
/// # Panics
/// When the page or the name is not listed (at compile time in a `const`).
#[allow(clippy::panic, clippy::cast_possible_truncation)] // a typo must not compile; indices are < 0x3B
pub const fn tag(namespace: &str, name: &str) -> Tag {
    let mut p = 0;
    while p < PAGES.len() {
        let page = &PAGES[p];
        if same(page.namespace, namespace) {
            let mut i = 0;
            while i < page.names.len() {
                if same(page.names[i], name) && !name.is_empty() {
                    return Tag {
                        page: page.number,
                        tag: FIRST + i as u8,
                    };
                }
                i += 1;
            }
            panic!("no such tag on this code page");
        }
        p += 1;
    }
    panic!("no such code page")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_numbered_in_order_and_name_each_tag_once() {
        for (index, page) in PAGES.iter().enumerate() {
            assert_eq!(usize::from(page.number), index);
            assert!(
                page.names.len() <= usize::from(0x3F - FIRST + 1),
                "{}",
                page.namespace
            );
            let mut seen = std::collections::BTreeSet::new();
            for (_, name) in page.tags() {
                assert!(seen.insert(name), "{} {name} twice", page.namespace);
            }
        }
        assert_eq!(name(13, 0x08), Some("HeartbeatInterval"));
        assert_eq!(name(13, 0x3F), None);
        assert_eq!(name(2, 0x19), Some("ReplyTo"));
        assert_eq!(name(15, 0x06), None, "unused");
        assert_eq!(name(25, 0x10), None, "unused");
        assert_eq!(name(25, 0x11), Some("Response"));
        assert_eq!(name(0, 0x04), None);
        assert_eq!(name(99, 0x05), None);
        const SYNC_KEY: Tag = tag("AirSync", "SyncKey");
        assert_eq!(SYNC_KEY, Tag { page: 0, tag: 0x0B });
        assert_eq!(tag("Provision", "AccountOnlyRemoteWipe").tag, 0x3B);
        assert_eq!(
            tag("RightsManagement", "RemoveRightsManagementDistribution").tag,
            0x18
        );
    }

    #[test]
    #[should_panic(expected = "no such tag")]
    fn an_unknown_name_is_refused() {
        let _ = tag("AirSync", "Synckey");
    }
}
