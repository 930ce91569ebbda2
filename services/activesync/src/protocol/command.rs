//! The commands of MS-ASCMD, by the name the plain query form uses and the
//! code the base64 form uses (MS-ASHTTP §2.2.1.1.1.1.2).

/// A command a phone may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Sync.
    Sync,
    /// SendMail.
    SendMail,
    /// SmartForward.
    SmartForward,
    /// SmartReply.
    SmartReply,
    /// GetAttachment (before 14.0; ItemOperations since).
    GetAttachment,
    /// FolderSync.
    FolderSync,
    /// FolderCreate.
    FolderCreate,
    /// FolderDelete.
    FolderDelete,
    /// FolderUpdate.
    FolderUpdate,
    /// MoveItems.
    MoveItems,
    /// GetItemEstimate.
    GetItemEstimate,
    /// MeetingResponse.
    MeetingResponse,
    /// Search.
    Search,
    /// Settings.
    Settings,
    /// Ping.
    Ping,
    /// ItemOperations.
    ItemOperations,
    /// Provision.
    Provision,
    /// ResolveRecipients.
    ResolveRecipients,
    /// ValidateCert.
    ValidateCert,
    /// Find (16.1).
    Find,
}

/// Names and base64-form codes, in code order.
const TABLE: &[(Command, &str, u8)] = &[
    (Command::Sync, "Sync", 0),
    (Command::SendMail, "SendMail", 1),
    (Command::SmartForward, "SmartForward", 2),
    (Command::SmartReply, "SmartReply", 3),
    (Command::GetAttachment, "GetAttachment", 4),
    (Command::FolderSync, "FolderSync", 9),
    (Command::FolderCreate, "FolderCreate", 10),
    (Command::FolderDelete, "FolderDelete", 11),
    (Command::FolderUpdate, "FolderUpdate", 12),
    (Command::MoveItems, "MoveItems", 13),
    (Command::GetItemEstimate, "GetItemEstimate", 14),
    (Command::MeetingResponse, "MeetingResponse", 15),
    (Command::Search, "Search", 16),
    (Command::Settings, "Settings", 17),
    (Command::Ping, "Ping", 18),
    (Command::ItemOperations, "ItemOperations", 19),
    (Command::Provision, "Provision", 20),
    (Command::ResolveRecipients, "ResolveRecipients", 21),
    (Command::ValidateCert, "ValidateCert", 22),
    (Command::Find, "Find", 23),
];

impl Command {
    /// Its name.
    pub fn name(self) -> &'static str {
        TABLE
            .iter()
            .find(|(c, _, _)| *c == self)
            .map_or("", |(_, name, _)| name)
    }

    /// From the plain form's `Cmd` (as the specification spells it).
    pub fn parse(name: &str) -> Option<Self> {
        TABLE
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(c, _, _)| *c)
    }

    /// From the base64 form's command byte.
    pub fn from_code(code: u8) -> Option<Self> {
        TABLE
            .iter()
            .find(|(_, _, k)| *k == code)
            .map(|(c, _, _)| *c)
    }

    /// Whether the command may run before the phone is provisioned
    /// (MS-ASPROV §3.2.5.1): Provision itself.
    pub fn skips_policy(self) -> bool {
        matches!(self, Self::Provision)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_codes_round_trip() {
        for (command, name, code) in TABLE {
            assert_eq!(Command::parse(name), Some(*command));
            assert_eq!(Command::from_code(*code), Some(*command));
            assert_eq!(command.name(), *name);
        }
        assert_eq!(Command::parse("sync"), None, "names are case-sensitive");
        assert_eq!(Command::from_code(5), None);
        assert!(Command::Provision.skips_policy() && !Command::Sync.skips_policy());
    }
}
