//! The device mailbox API end to end, as a phone speaks it: a device bound
//! through binding (PostgreSQL, the broker for its verification SMS), the
//! gateway in front of the mailbox service, Dovecot holding the mail and
//! Postfix sending. The phone lists folders, syncs by token, reads,
//! downloads the raw message, marks read, uploads an attachment in chunks
//! (one repeated), replies with it and its signature, files and deletes;
//! bad requests get the protocol's error codes.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::net::SocketAddr;

use pushmail_integration_tests::mailbox::{BOB, Sending, USER, bobs_inbox};
use pushmail_integration_tests::{authed, http};
use pushmail_proto::binding::v1 as binding;
use serde_json::{Value, json};

struct Phone {
    at: SocketAddr,
    auth: String,
    base: String,
}

impl Phone {
    async fn get(&self, path: &str) -> http::Response {
        http::get(
            self.at,
            &format!("{}{path}", self.base),
            &[("Authorization", &self.auth)],
        )
        .await
        .unwrap()
    }

    async fn post(&self, path: &str, body: &Value) -> http::Response {
        http::call(
            self.at,
            "POST",
            &format!("{}{path}", self.base),
            &[
                ("Authorization", &self.auth),
                ("Content-Type", "application/json"),
            ],
            body.to_string().as_bytes(),
        )
        .await
        .unwrap()
    }

    async fn patch(&self, path: &str, offset: usize, data: &[u8]) -> http::Response {
        http::call(
            self.at,
            "PATCH",
            &format!("{}{path}", self.base),
            &[
                ("Authorization", &self.auth),
                ("Content-Type", "application/offset+octet-stream"),
                ("Upload-Offset", &offset.to_string()),
            ],
            data,
        )
        .await
        .unwrap()
    }
}

/// The signature in the device's binding preferences.
async fn set_signature(sending: &mut Sending, signature: &str) {
    let key = sending.tenant.api_key.clone();
    let bindings = sending
        .binding
        .admin
        .list_bindings(authed(
            &key,
            binding::ListBindingsRequest {
                tenant_id: sending.t.clone(),
                account_id: sending.a.clone(),
                page: None,
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .bindings;
    let mut preferences = sending
        .binding
        .admin
        .get_preferences(authed(
            &key,
            binding::GetPreferencesRequest {
                tenant_id: sending.t.clone(),
                binding_id: bindings[0].binding_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    preferences.signature = signature.to_owned();
    sending
        .binding
        .admin
        .update_preferences(authed(
            &key,
            binding::UpdatePreferencesRequest {
                preferences: Some(preferences),
            },
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_phone_reads_files_and_replies_with_an_upload_over_http() {
    let mut sending = Sending::start().await;
    let question = format!(
        "From: Bob <{BOB}>\r\nTo: {USER}\r\nSubject: site survey\r\n\
         Message-ID: <survey@example.net>\r\n\r\nCan you send the photos?\r\n"
    );
    sending
        .dovecot
        .deliver(USER, question.as_bytes())
        .await
        .unwrap();
    let (token, gateway) = sending.phone().await;
    set_signature(&mut sending, "Sent from my phone").await;
    let phone = Phone {
        at: gateway.addr,
        auth: format!("Bearer {token}"),
        base: format!("/v1/accounts/{}/mailbox", sending.a),
    };

    // Folders, with roles.
    let folders = phone.get("/folders").await;
    assert_eq!(folders.status, 200, "{}", folders.text());
    let folders = folders.json()["folders"].clone();
    let by_role = |role: &str| {
        folders
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["role"] == role)
            .unwrap_or_else(|| panic!("a {role} folder in {folders}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (inbox, archive) = (by_role("inbox"), by_role("archive"));

    // The first sync lists the question.
    let first = phone.get(&format!("/folders/{inbox}/changes")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    assert_eq!(first["added"][0]["subject"], "site survey");
    assert_eq!(first["added"][0]["from"]["address"], BOB);
    assert_eq!(first["more"], false);
    let id = first["added"][0]["id"].as_str().unwrap().to_owned();
    let token = first["next"].as_str().unwrap().to_owned();

    // Read, raw, and marked read.
    let message = phone.get(&format!("/messages/{id}")).await.json();
    assert_eq!(message["message_id"], "survey@example.net");
    assert!(!message["parts"].as_array().unwrap().is_empty());
    let raw = phone.get(&format!("/messages/{id}/raw")).await;
    assert_eq!(raw.header("content-type"), Some("message/rfc822"));
    assert!(raw.text().contains("Can you send the photos?"));
    let read = phone
        .post("/flags", &json!({"ids": [id], "seen": true}))
        .await;
    assert_eq!(read.status, 204, "{}", read.text());
    let changes = phone
        .get(&format!("/folders/{inbox}/changes?since={token}"))
        .await
        .json();
    assert_eq!(changes["changed"][0]["id"], id.as_str());
    assert_eq!(changes["changed"][0]["flags"]["seen"], true);

    // An attachment in two chunks, the first sent twice.
    let photo: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let begun = phone
        .post(
            "/uploads",
            &json!({"file_name": "site.jpg", "content_type": "image/jpeg", "size": photo.len()}),
        )
        .await;
    assert_eq!(begun.status, 201, "{}", begun.text());
    let upload = begun.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        begun.header("location"),
        Some(format!("{}/uploads/{upload}", phone.base).as_str())
    );
    let path = format!("/uploads/{upload}");
    let half = photo.len() / 2;
    assert_eq!(phone.patch(&path, 0, &photo[..half]).await.status, 200);
    let again = phone.patch(&path, 0, &photo[..half]).await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert_eq!(again.json()["error"]["code"], "offset");
    assert_eq!(
        again.header("upload-offset"),
        Some(half.to_string().as_str())
    );
    let done = phone.patch(&path, half, &photo[half..]).await;
    assert_eq!(done.json()["complete"], true, "{}", done.text());
    let state = phone.get(&path).await;
    assert_eq!(
        state.header("upload-offset"),
        Some(photo.len().to_string().as_str())
    );

    // The reply: threaded, signed, with the photo; the question answered.
    let sent = phone
        .post(
            "/send",
            &json!({
                "kind": "reply",
                "reference": id,
                "text": "Here they are.",
                "uploads": [upload],
                "client_send_id": "reply-1",
            }),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text());
    let sent_id = sent.json()["sent_id"].as_str().unwrap().to_owned();
    assert_eq!(bobs_inbox(&sending.dovecot, 1).await, json!([1]));
    let bob = sending.dovecot.users[1].clone();
    let attachments = sending
        .dovecot
        .imap_peer(&bob, &json!([["attachments", "INBOX", "1"]]))
        .await
        .unwrap();
    assert_eq!(attachments[0][0]["name"], "site.jpg");
    assert_eq!(attachments[0][0]["size"], photo.len());
    let copy = phone.get(&format!("/messages/{sent_id}/raw")).await.text();
    assert!(copy.contains("Sent from my phone"), "{copy}");
    assert!(copy.contains("In-Reply-To: <survey@example.net>"), "{copy}");
    let original = phone.get(&format!("/messages/{id}")).await.json();
    assert_eq!(original["flags"]["answered"], true);

    // Filed, then the copy deleted to the trash.
    let filed = phone
        .post("/move", &json!({"ids": [id], "to": archive}))
        .await;
    assert_eq!(filed.status, 200, "{}", filed.text());
    assert!(
        filed.json()["moved"][0]["new_id"]
            .as_str()
            .unwrap()
            .ends_with(&archive)
    );
    let deleted = phone.post("/delete", &json!({"ids": [sent_id]})).await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let trash = by_role("trash");
    assert!(
        deleted.json()["moved"][0]["new_id"]
            .as_str()
            .unwrap()
            .ends_with(&trash),
        "{}",
        deleted.text()
    );

    // Bad requests: the protocol's codes.
    let stale = phone
        .get(&format!("/folders/{inbox}/changes?since=not-a-token"))
        .await;
    assert_eq!(stale.status, 409);
    assert_eq!(stale.json()["error"]["code"], "token_invalid");
    let unknown_kind = phone.post("/send", &json!({"kind": "fax"})).await;
    assert_eq!(unknown_kind.status, 400);
    let no_offset = http::call(
        phone.at,
        "PATCH",
        &format!("{}{path}", phone.base),
        &[("Authorization", &phone.auth)],
        b"x",
    )
    .await
    .unwrap();
    assert_eq!(no_offset.status, 400);
    let anonymous = http::get(phone.at, &format!("{}/folders", phone.base), &[])
        .await
        .unwrap();
    assert_eq!(anonymous.status, 401);
    // Bob's account in the same tenant, which the mailbox service would
    // serve: this device is not bound to it, so the gateway answers as if
    // there were none.
    let bobs = sending
        .binding
        .mailbox_account(
            &sending.tenant,
            &sending.dovecot.users[1],
            sending.dovecot.imap.port(),
            binding::AccountKind::ExternalImap,
        )
        .await
        .unwrap();
    let elsewhere = http::get(
        phone.at,
        &format!("/v1/accounts/{}/mailbox/folders", bobs.account_id),
        &[("Authorization", &phone.auth)],
    )
    .await
    .unwrap();
    assert_eq!(elsewhere.status, 404, "another account looks like none");

    gateway.stop().await.unwrap();
    sending.stop().await;
}
