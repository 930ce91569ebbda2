//! ResolveRecipients (MS-ASCMD §2.2.1.15): the phone checks the names it
//! was given against the tenant's directory before sending, and is told
//! who each is, or which it might mean. The platform keeps no S/MIME
//! certificates and no free/busy: a phone asking for certificates is told
//! there are none; availability is not answered.

use pushmail_wbxml::{Element, Tag, tag};

use crate::login::{Login, Logins};

const RESOLVE_RECIPIENTS: Tag = tag("ResolveRecipients", "ResolveRecipients");
const RESPONSE: Tag = tag("ResolveRecipients", "Response");
const STATUS: Tag = tag("ResolveRecipients", "Status");
const TYPE: Tag = tag("ResolveRecipients", "Type");
const RECIPIENT: Tag = tag("ResolveRecipients", "Recipient");
const DISPLAY_NAME: Tag = tag("ResolveRecipients", "DisplayName");
const EMAIL_ADDRESS: Tag = tag("ResolveRecipients", "EmailAddress");
const CERTIFICATES: Tag = tag("ResolveRecipients", "Certificates");
const OPTIONS: Tag = tag("ResolveRecipients", "Options");
const TO: Tag = tag("ResolveRecipients", "To");
const CERTIFICATE_RETRIEVAL: Tag = tag("ResolveRecipients", "CertificateRetrieval");
const RECIPIENT_COUNT: Tag = tag("ResolveRecipients", "RecipientCount");
const MAX_AMBIGUOUS: Tag = tag("ResolveRecipients", "MaxAmbiguousRecipients");
const CERTIFICATE_COUNT: Tag = tag("ResolveRecipients", "CertificateCount");

/// ResolveRecipients' statuses (MS-ASCMD §2.2.3.177.12).
mod status {
    pub(super) const SUCCESS: &str = "1";
    pub(super) const PROTOCOL_ERROR: &str = "5";
    pub(super) const SERVER_ERROR: &str = "6";
    /// Of one name: resolved to one.
    pub(super) const RESOLVED: &str = "1";
    /// Of one name: several match; these are suggestions.
    pub(super) const AMBIGUOUS: &str = "2";
    /// Of one name: more match than the suggestions given.
    pub(super) const AMBIGUOUS_PARTIAL: &str = "3";
    /// Of one name: no one.
    pub(super) const UNRESOLVED: &str = "4";
    /// Of certificates: none is held.
    pub(super) const NO_CERTIFICATE: &str = "7";
}

/// Most names one request resolves (MS-ASCMD's bound).
const MAX_NAMES: usize = 100;

/// Suggestions for an ambiguous name when the phone does not say (and
/// the most given whatever it says).
const MAX_SUGGESTIONS: u32 = 19;

/// The directory's entry type (1: the GAL; 2: the user's contacts).
const GAL: &str = "1";

fn with_status(code: &str) -> Element {
    Element::of(RESOLVE_RECIPIENTS).with(Element::text_of(STATUS, code))
}

/// The answer to a ResolveRecipients `body` from the phone of `login`.
pub async fn answer(logins: &dyn Logins, login: &Login, body: &Element) -> Element {
    let names: Vec<String> = body.all(TO).map(|to| to.text().trim().to_owned()).collect();
    if body.tag() != RESOLVE_RECIPIENTS
        || names.is_empty()
        || names.len() > MAX_NAMES
        || names.iter().any(String::is_empty)
    {
        return with_status(status::PROTOCOL_ERROR);
    }
    let options = body.get(OPTIONS);
    let suggestions = options
        .and_then(|o| o.get(MAX_AMBIGUOUS))
        .and_then(|m| m.text().trim().parse().ok())
        .unwrap_or(MAX_SUGGESTIONS)
        .min(MAX_SUGGESTIONS);
    let certificates = options
        .and_then(|o| o.get(CERTIFICATE_RETRIEVAL))
        .is_some_and(|c| c.text().trim() != "1");
    let mut answer = with_status(status::SUCCESS);
    for name in names {
        let found = match logins.directory(login, &name, suggestions + 1).await {
            Ok(found) => found,
            Err(error) if error.code() == tonic::Code::InvalidArgument => Vec::new(),
            Err(error) => {
                tracing::warn!(%error, "recipients not resolved");
                return with_status(status::SERVER_ERROR);
            }
        };
        answer = answer.with(response(&name, found, suggestions, certificates));
    }
    answer
}

/// One name's response: the entry it names exactly, else the one it
/// matches alone, else the suggestions.
fn response(name: &str, mut found: Vec<String>, suggestions: u32, certificates: bool) -> Element {
    if let Some(exact) = found.iter().position(|a| a.eq_ignore_ascii_case(name)) {
        found = vec![found.swap_remove(exact)];
    }
    let code = match found.len() {
        0 => status::UNRESOLVED,
        1 => status::RESOLVED,
        // The directory was asked for one more than is given: more
        // match than the list holds.
        n if n > suggestions as usize => status::AMBIGUOUS_PARTIAL,
        _ => status::AMBIGUOUS,
    };
    if found.len() > 1 {
        found.truncate(suggestions as usize);
    }
    let mut response = Element::of(RESPONSE)
        .with(Element::text_of(TO, name))
        .with(Element::text_of(STATUS, code))
        .with(Element::text_of(RECIPIENT_COUNT, found.len().to_string()));
    for address in found {
        let mut recipient = Element::of(RECIPIENT)
            .with(Element::text_of(TYPE, GAL))
            .with(Element::text_of(DISPLAY_NAME, address.clone()))
            .with(Element::text_of(EMAIL_ADDRESS, address));
        if certificates {
            recipient = recipient.with(
                Element::of(CERTIFICATES)
                    .with(Element::text_of(STATUS, status::NO_CERTIFICATE))
                    .with(Element::text_of(CERTIFICATE_COUNT, "0")),
            );
        }
        response = response.with(recipient);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_and_count(response: &Element) -> (String, String) {
        (
            response.get(STATUS).unwrap().text(),
            response.get(RECIPIENT_COUNT).unwrap().text(),
        )
    }

    #[test]
    fn a_name_resolves_exactly_alone_or_to_suggestions() {
        let entries = |n: &[&str]| n.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let exact = response(
            "Ann@Corp.example",
            entries(&["ann@corp.example", "anna@corp.example"]),
            19,
            false,
        );
        assert_eq!(status_and_count(&exact), ("1".into(), "1".into()));
        assert_eq!(
            exact
                .get(RECIPIENT)
                .unwrap()
                .get(EMAIL_ADDRESS)
                .unwrap()
                .text(),
            "ann@corp.example"
        );
        let alone = response("bob", entries(&["bob@corp.example"]), 19, true);
        assert_eq!(status_and_count(&alone), ("1".into(), "1".into()));
        let certificates = alone.get(RECIPIENT).unwrap().get(CERTIFICATES).unwrap();
        assert_eq!(certificates.get(STATUS).unwrap().text(), "7");
        let three = entries(&["ann@c.example", "anna@c.example", "dan@c.example"]);
        let several = response("an", three.clone(), 3, false);
        assert_eq!(status_and_count(&several), ("2".into(), "3".into()));
        let partial = response("an", three, 2, false);
        assert_eq!(status_and_count(&partial), ("3".into(), "2".into()));
        // Resolved is resolved, whatever number of suggestions is asked.
        let one = response("bob", entries(&["bob@corp.example"]), 0, false);
        assert_eq!(status_and_count(&one), ("1".into(), "1".into()));
        let nobody = response("zed", Vec::new(), 19, false);
        assert_eq!(status_and_count(&nobody), ("4".into(), "0".into()));
        assert!(nobody.get(RECIPIENT).is_none());
    }
}
