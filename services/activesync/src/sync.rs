//! Sync (MS-ASCMD §2.2.1.21) of Email collections: the phone's changes
//! (read, flag, delete) are made through the mailbox service, then the
//! folder's changes since the phone's key are given in its window, each
//! new message with the body it prefers. Keys are the mailbox service's
//! tokens (`sync_key`), so a repeated request is answered again and any
//! replica answers it.

use std::collections::{BTreeMap, HashMap};

use pushmail_wbxml::{Element, Tag, tag};

use crate::email;
use crate::login::Login;
use crate::mail::{BodyType, FlagsSet, Mail, MailError};
use crate::sync_key::{FIRST, SyncKey};

const SYNC: Tag = tag("AirSync", "Sync");
const COLLECTIONS: Tag = tag("AirSync", "Collections");
const COLLECTION: Tag = tag("AirSync", "Collection");
const SYNC_KEY: Tag = tag("AirSync", "SyncKey");
const COLLECTION_ID: Tag = tag("AirSync", "CollectionId");
const STATUS: Tag = tag("AirSync", "Status");
const COMMANDS: Tag = tag("AirSync", "Commands");
const RESPONSES: Tag = tag("AirSync", "Responses");
const ADD: Tag = tag("AirSync", "Add");
const CHANGE: Tag = tag("AirSync", "Change");
const DELETE: Tag = tag("AirSync", "Delete");
const FETCH: Tag = tag("AirSync", "Fetch");
const SERVER_ID: Tag = tag("AirSync", "ServerId");
const CLIENT_ID: Tag = tag("AirSync", "ClientId");
const APPLICATION_DATA: Tag = tag("AirSync", "ApplicationData");
const WINDOW_SIZE: Tag = tag("AirSync", "WindowSize");
const GET_CHANGES: Tag = tag("AirSync", "GetChanges");
const DELETES_AS_MOVES: Tag = tag("AirSync", "DeletesAsMoves");
const OPTIONS: Tag = tag("AirSync", "Options");
const MORE_AVAILABLE: Tag = tag("AirSync", "MoreAvailable");
const MIME_SUPPORT: Tag = tag("AirSync", "MIMESupport");
const BODY_PREFERENCE: Tag = tag("AirSyncBase", "BodyPreference");
const TYPE: Tag = tag("AirSyncBase", "Type");
const TRUNCATION_SIZE: Tag = tag("AirSyncBase", "TruncationSize");

/// Sync's statuses (MS-ASCMD §2.2.3.177.17).
pub(crate) mod status {
    pub(crate) const SUCCESS: &str = "1";
    pub(crate) const INVALID_KEY: &str = "3";
    pub(crate) const PROTOCOL_ERROR: &str = "4";
    pub(crate) const SERVER_ERROR: &str = "5";
    pub(crate) const CONVERSION: &str = "6";
    pub(crate) const NOT_FOUND: &str = "8";
    pub(crate) const HIERARCHY_CHANGED: &str = "12";
    pub(crate) const INCOMPLETE: &str = "13";
    pub(crate) const RETRY: &str = "16";
}

/// Entries in an answer when the phone names no window (MS-ASCMD's
/// default).
const DEFAULT_WINDOW: u32 = 100;
/// Most entries in one collection's answer, whatever the phone asks.
pub const MAX_WINDOW: u32 = 512;
/// Most collections one Sync names.
pub const MAX_COLLECTIONS: usize = 100;
/// Most changes a phone sends in one collection.
const MAX_CLIENT_COMMANDS: usize = 512;
/// Most body bytes one collection's answer carries: a window of large
/// bodies is made smaller, and the phone asks again for the rest.
const BODY_BUDGET: u64 = 8 << 20;
/// The mailbox service's bound on one body, when the phone sets none.
const MAX_BODY: u64 = 512 * 1024;
/// Bodies asked of the mailbox service at once (its bound).
const BODIES_PER_CALL: usize = 64;

/// The body a phone wants with each message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    /// Plain, HTML or the message as mailed.
    pub kind: BodyType,
    /// At most this many bytes of it (0: the service's bound).
    pub max: u64,
}

impl Wanted {
    /// Cut to the size the phone's preferences allow (0: no bound), for
    /// the bodies a Sync brings unasked.
    #[must_use]
    pub fn within(self, bound: u32) -> Self {
        let max = match (self.max, u64::from(bound)) {
            (asked, 0) => asked,
            (0, bound) => bound,
            (asked, bound) => asked.min(bound),
        };
        Self { max, ..self }
    }
}

/// The first body preference the service serves (MIME only where the
/// phone says it reads MIME), else plain text.
pub fn wanted(options: Option<&Element>) -> Wanted {
    let Some(options) = options else {
        return Wanted {
            kind: BodyType::Plain,
            max: 0,
        };
    };
    let mime = options
        .get(MIME_SUPPORT)
        .is_some_and(|m| m.text().trim() != "0");
    options
        .all(BODY_PREFERENCE)
        .find_map(|p| {
            let kind = email::body_type(&p.get(TYPE)?.text())?;
            if kind == BodyType::Mime && !mime && options.get(MIME_SUPPORT).is_some() {
                return None;
            }
            let max = p
                .get(TRUNCATION_SIZE)
                .and_then(|t| t.text().trim().parse().ok())
                .unwrap_or(0);
            Some(Wanted { kind, max })
        })
        .unwrap_or(Wanted {
            kind: BodyType::Plain,
            max: 0,
        })
}

/// The window a collection is served: what the phone asks, within
/// bounds, and small enough for its bodies to fit the budget.
pub fn window(asked: Option<u32>, wanted: Wanted) -> u32 {
    let window = asked.unwrap_or(DEFAULT_WINDOW).clamp(1, MAX_WINDOW);
    let per_body = match wanted.max {
        0 => MAX_BODY,
        n => n.min(MAX_BODY),
    };
    let fits = u32::try_from(BODY_BUDGET / per_body.max(1)).unwrap_or(u32::MAX);
    window.min(fits.max(1))
}

/// A message's id within its collection: the mailbox id without the
/// folder (which the collection names), keeping ServerIds short.
pub fn server_id(message_id: &str, collection: &str) -> String {
    message_id
        .strip_suffix(collection)
        .and_then(|rest| rest.strip_suffix('.'))
        .unwrap_or(message_id)
        .to_owned()
}

/// The mailbox id of a ServerId the phone sends for `collection`.
pub fn message_id(server_id: &str, collection: &str) -> String {
    if server_id.matches('.').count() == 1 {
        format!("{server_id}.{collection}")
    } else {
        server_id.to_owned()
    }
}

fn text(element: &Element, tag: Tag) -> Option<String> {
    element.get(tag).map(|e| e.text().trim().to_owned())
}

fn with_status(code: &str) -> Element {
    Element::of(SYNC).with(Element::text_of(STATUS, code))
}

/// The answer to a Sync that names nothing (MS-ASCMD's empty or partial
/// Sync, which repeats the last request): this service keeps no request,
/// so the phone is asked to send it whole.
pub fn incomplete() -> Element {
    with_status(status::INCOMPLETE)
}

/// The answer to a Sync `body`.
pub async fn answer(mail: &Mail, login: &Login, body: &Element) -> Element {
    if body.tag() != SYNC {
        return with_status(status::PROTOCOL_ERROR);
    }
    // A Sync naming no collections asks to repeat the last one, which this
    // service does not keep: the phone sends it whole (status 13).
    let Some(collections) = body.get(COLLECTIONS) else {
        return with_status(status::INCOMPLETE);
    };
    let asked: Vec<&Element> = collections.all(COLLECTION).collect();
    if asked.is_empty() {
        return with_status(status::INCOMPLETE);
    }
    if asked.len() > MAX_COLLECTIONS {
        tracing::info!(collections = asked.len(), "sync of too many collections");
        return with_status(status::PROTOCOL_ERROR);
    }
    let global = text(body, WINDOW_SIZE).and_then(|w| w.parse().ok());
    let mut answered = Element::of(COLLECTIONS);
    for collection in asked {
        answered = answered.with(self::collection(mail, login, collection, global).await);
    }
    Element::of(SYNC).with(answered)
}

fn collection_status(key: &str, id: &str, code: &str) -> Element {
    Element::of(COLLECTION)
        .with(Element::text_of(SYNC_KEY, key))
        .with(Element::text_of(COLLECTION_ID, id))
        .with(Element::text_of(STATUS, code))
}

/// The status a failed mailbox call gives a collection.
fn failed(error: &MailError) -> &'static str {
    match error {
        MailError::InvalidKey => status::INVALID_KEY,
        MailError::NotFound(_)
        | MailError::Refused(_)
        | MailError::OutOfRange(_)
        | MailError::Folder(..) => status::HIERARCHY_CHANGED,
        MailError::Unavailable(_) => {
            tracing::warn!(error = %pushmail_common::report::Report(error), "sync failed");
            status::RETRY
        }
    }
}

async fn collection(
    mail: &Mail,
    login: &Login,
    collection: &Element,
    global_window: Option<u32>,
) -> Element {
    let id = text(collection, COLLECTION_ID).unwrap_or_default();
    let key = text(collection, SYNC_KEY).unwrap_or_default();
    if id.is_empty() {
        return collection_status(&key, &id, status::PROTOCOL_ERROR);
    }
    let since = match SyncKey::parse(&key) {
        None => return collection_status("0", &id, status::INVALID_KEY),
        // The phone's first key; its next Sync lists the folder.
        Some(SyncKey::Zero) => return collection_status(FIRST, &id, status::SUCCESS),
        Some(SyncKey::Since(since)) => since,
    };
    let wanted = wanted(collection.get(OPTIONS)).within(login.preferences.max_body_bytes);
    let commands = collection.get(COMMANDS);
    if commands.is_some_and(|c| c.elements().count() > MAX_CLIENT_COMMANDS) {
        return collection_status(&key, &id, status::PROTOCOL_ERROR);
    }
    let permanent = text(collection, DELETES_AS_MOVES).is_some_and(|d| d == "0");
    let made = match commands {
        Some(commands) => client_changes(mail, login, &id, commands, permanent, wanted).await,
        None => Made::default(),
    };
    let (since, mut next_key) = match acknowledged(mail, login, &id, since, &key, &made).await {
        Ok(keys) => keys,
        Err(refused) => return refused,
    };
    let mut answer = Element::of(COLLECTION);
    let get_changes = text(collection, GET_CHANGES).is_none_or(|g| g != "0");
    let mut more = false;
    let mut server = Element::of(COMMANDS);
    if get_changes {
        let asked = text(collection, WINDOW_SIZE)
            .and_then(|w| w.parse().ok())
            .or(global_window);
        match server_changes(mail, login, &id, &since, window(asked, wanted), wanted).await {
            Ok((commands, key, more_available)) => {
                server = commands;
                next_key = key;
                more = more_available;
            }
            Err(error) => {
                let key = if matches!(error, MailError::InvalidKey) {
                    "0"
                } else {
                    &key
                };
                return collection_status(key, &id, failed(&error));
            }
        }
    }
    answer = answer
        .with(Element::text_of(SYNC_KEY, next_key))
        .with(Element::text_of(COLLECTION_ID, id))
        .with(Element::text_of(STATUS, status::SUCCESS));
    if !made.responses.is_empty() {
        let mut responses = Element::of(RESPONSES);
        for response in made.responses {
            responses = responses.with(response);
        }
        answer = answer.with(responses);
    }
    if more {
        answer = answer.with(Element::of(MORE_AVAILABLE));
    }
    if !server.children.is_empty() {
        answer = answer.with(server);
    }
    answer
}

/// The token to sync from and the key to give after the phone's own
/// changes are recorded as told, so they are not told back, now or at its
/// next Sync; or the collection's failure.
async fn acknowledged(
    mail: &Mail,
    login: &Login,
    id: &str,
    since: String,
    key: &str,
    made: &Made,
) -> Result<(String, String), Element> {
    // A phone holding nothing changed nothing it was told of.
    if since.is_empty() || (made.flagged.is_empty() && made.removed.is_empty()) {
        return Ok((since, key.to_owned()));
    }
    match mail
        .acknowledge(login, id, &since, &made.flagged, &made.removed)
        .await
    {
        Ok(token) => Ok((token.clone(), token)),
        Err(error) => {
            let key = if matches!(error, MailError::InvalidKey) {
                "0"
            } else {
                key
            };
            Err(collection_status(key, id, failed(&error)))
        }
    }
}

/// What the phone's own changes came to.
#[derive(Debug, Default)]
struct Made {
    /// Per-item answers (failures, fetches, refused adds).
    responses: Vec<Element>,
    /// Flags set on the server.
    flagged: Vec<FlagsSet>,
    /// Messages deleted on the server.
    removed: Vec<String>,
}

fn item_status(of: Tag, server_id: &str, code: &str) -> Element {
    Element::of(of)
        .with(Element::text_of(SERVER_ID, server_id))
        .with(Element::text_of(STATUS, code))
}

async fn client_changes(
    mail: &Mail,
    login: &Login,
    collection: &str,
    commands: &Element,
    permanent: bool,
    wanted: Wanted,
) -> Made {
    let mut made = Made::default();
    // Flag changes grouped by what they set, so a phone marking fifty
    // messages read is one call.
    let mut flags: BTreeMap<(Option<bool>, Option<bool>), Vec<String>> = BTreeMap::new();
    let mut deletes = Vec::new();
    for command in commands.elements() {
        let server = text(command, SERVER_ID).unwrap_or_default();
        match command.tag() {
            CHANGE => {
                let change = command
                    .get(APPLICATION_DATA)
                    .map_or((None, None), email::client_change);
                if change != (None, None) {
                    flags.entry(change).or_default().push(server);
                }
            }
            DELETE => deletes.push(server),
            FETCH => made
                .responses
                .push(fetch(mail, login, collection, &server, wanted).await),
            ADD => {
                // Drafts are not created from a phone's Sync; the phone
                // keeps its item and is told it was not converted.
                let client = text(command, CLIENT_ID).unwrap_or_default();
                made.responses.push(
                    Element::of(ADD)
                        .with(Element::text_of(CLIENT_ID, client))
                        .with(Element::text_of(STATUS, status::CONVERSION)),
                );
            }
            _ => {}
        }
    }
    for ((read, flagged), servers) in flags {
        let set = FlagsSet {
            ids: servers.iter().map(|s| message_id(s, collection)).collect(),
            read,
            flagged,
        };
        match mail.set_flags(login, &set).await {
            Ok(()) => made.flagged.push(set),
            Err(error) => {
                let code = item_failure(&error);
                made.responses
                    .extend(servers.iter().map(|s| item_status(CHANGE, s, code)));
            }
        }
    }
    if !deletes.is_empty() {
        let ids: Vec<String> = deletes.iter().map(|s| message_id(s, collection)).collect();
        match mail.delete(login, &ids, permanent).await {
            Ok(()) => made.removed = ids,
            Err(error) => {
                let code = item_failure(&error);
                made.responses
                    .extend(deletes.iter().map(|s| item_status(DELETE, s, code)));
            }
        }
    }
    made
}

fn item_failure(error: &MailError) -> &'static str {
    match error {
        MailError::NotFound(_)
        | MailError::Refused(_)
        | MailError::OutOfRange(_)
        | MailError::InvalidKey
        | MailError::Folder(..) => status::NOT_FOUND,
        MailError::Unavailable(_) => {
            tracing::warn!(error = %pushmail_common::report::Report(error), "a phone's change failed");
            status::SERVER_ERROR
        }
    }
}

/// One message's `ApplicationData` with the body `wanted`, as a Sync or
/// an ItemOperations Fetch of it gives it.
pub async fn fetched(
    mail: &Mail,
    login: &Login,
    id: &str,
    wanted: Wanted,
) -> Result<Element, MailError> {
    let summary = mail.summary(login, id).await?;
    let body = mail
        .bodies(login, &[id.to_owned()], wanted.kind, wanted.max)
        .await?
        .into_iter()
        .next();
    Ok(email::added(
        &summary,
        body.as_ref(),
        login.preferences.attachments,
    ))
}

async fn fetch(
    mail: &Mail,
    login: &Login,
    collection: &str,
    server: &str,
    wanted: Wanted,
) -> Element {
    let id = message_id(server, collection);
    match fetched(mail, login, &id, wanted).await {
        Ok(data) => item_status(FETCH, server, status::SUCCESS).with(data),
        Err(error) => item_status(FETCH, server, item_failure(&error)),
    }
}

async fn server_changes(
    mail: &Mail,
    login: &Login,
    collection: &str,
    since: &str,
    window: u32,
    wanted: Wanted,
) -> Result<(Element, String, bool), MailError> {
    let changes = mail.sync(login, collection, since, window).await?;
    let mut bodies = HashMap::new();
    let ids: Vec<String> = changes.added.iter().map(|s| s.message_id.clone()).collect();
    for chunk in ids.chunks(BODIES_PER_CALL) {
        for body in mail.bodies(login, chunk, wanted.kind, wanted.max).await? {
            bodies.insert(body.message_id.clone(), body);
        }
    }
    let mut commands = Element::of(COMMANDS);
    for removed in &changes.removed {
        commands = commands.with(
            Element::of(DELETE).with(Element::text_of(SERVER_ID, server_id(removed, collection))),
        );
    }
    for (id, read, flagged) in &changes.changed {
        commands = commands.with(
            Element::of(CHANGE)
                .with(Element::text_of(SERVER_ID, server_id(id, collection)))
                .with(email::changed(*read, *flagged)),
        );
    }
    for summary in &changes.added {
        commands = commands.with(
            Element::of(ADD)
                .with(Element::text_of(
                    SERVER_ID,
                    server_id(&summary.message_id, collection),
                ))
                .with(email::added(
                    summary,
                    bodies.get(&summary.message_id),
                    login.preferences.attachments,
                )),
        );
    }
    Ok((commands, changes.token, changes.more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_drop_and_regain_their_folder() {
        let folder = "SU5CT1g";
        let id = format!("17.42.{folder}");
        assert_eq!(server_id(&id, folder), "17.42");
        assert_eq!(message_id("17.42", folder), id);
        // Another folder's id is kept whole both ways.
        assert_eq!(server_id("17.42.U2VudA", folder), "17.42.U2VudA");
        assert_eq!(message_id("17.42.U2VudA", folder), "17.42.U2VudA");
    }

    #[test]
    fn windows_are_bounded_by_count_and_by_body_bytes() {
        let plain = |max| Wanted {
            kind: BodyType::Plain,
            max,
        };
        assert_eq!(window(None, plain(5_120)), 100);
        assert_eq!(window(Some(1_000_000), plain(5_120)), MAX_WINDOW);
        assert_eq!(window(Some(0), plain(5_120)), 1);
        // Whole bodies: 8 MiB of 512 KiB each.
        assert_eq!(window(Some(100), plain(0)), 16);
    }

    #[test]
    fn the_size_preference_bounds_what_the_phone_asks() {
        let asked = |max| Wanted {
            kind: BodyType::Plain,
            max,
        };
        assert_eq!(asked(0).within(0).max, 0);
        assert_eq!(asked(0).within(4_096).max, 4_096);
        assert_eq!(asked(200).within(4_096).max, 200);
        assert_eq!(asked(500_000).within(4_096).max, 4_096);
        assert_eq!(asked(500_000).within(0).max, 500_000);
    }

    #[test]
    fn the_first_served_preference_wins_and_mime_needs_mime_support() {
        let preference = |kind: &str, size: &str| {
            Element::of(BODY_PREFERENCE)
                .with(Element::text_of(TYPE, kind))
                .with(Element::text_of(TRUNCATION_SIZE, size))
        };
        let options = Element::of(OPTIONS)
            .with(preference("3", "10"))
            .with(preference("2", "20000"))
            .with(preference("1", "500"));
        assert_eq!(
            wanted(Some(&options)),
            Wanted {
                kind: BodyType::Html,
                max: 20_000
            }
        );
        let no_mime = Element::of(OPTIONS)
            .with(Element::text_of(MIME_SUPPORT, "0"))
            .with(preference("4", "100"))
            .with(preference("1", "50"));
        assert_eq!(wanted(Some(&no_mime)).kind, BodyType::Plain);
        let mime = Element::of(OPTIONS)
            .with(Element::text_of(MIME_SUPPORT, "2"))
            .with(preference("4", "100"));
        assert_eq!(wanted(Some(&mime)).kind, BodyType::Mime);
        assert_eq!(wanted(None).kind, BodyType::Plain);
    }
}
