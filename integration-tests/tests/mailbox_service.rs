//! The mailbox service over gRPC, as the gateway calls it: binding (its
//! own database) says where the account's mail lives, Dovecot holds it,
//! the service's sync states are in PostgreSQL. Folders, a windowed sync,
//! flags, moves, deletes and raw fetch reach the provider; replies and
//! attachments uploaded in chunks go out through Postfix; bad calls get
//! clear statuses.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_common::service_identity::Service;
use pushmail_integration_tests::credential;
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_integration_tests::mailbox::{BOB, MailboxNode, Sending, USER, bobs_inbox, bound};
use pushmail_proto::mailbox::v1 as pb;
use tonic::Code;

/// `message` as `service` sends it.
fn as_service<T>(service: Service, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", credential(service)).parse().unwrap(),
    );
    request
}

fn gateway<T>(message: T) -> tonic::Request<T> {
    as_service(Service::Gateway, message)
}

fn activesync<T>(message: T) -> tonic::Request<T> {
    as_service(Service::ActiveSync, message)
}

fn mail(n: usize) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: {USER}\r\nSubject: message {n}\r\n\
         Message-ID: <m{n}@example.org>\r\n\r\nbody of message {n}\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn the_gateway_reads_and_files_mail_through_the_service() {
    let dovecot = Dovecot::start_provider(&[USER], ImapProfile::Modern)
        .await
        .unwrap();
    for n in 1..=5 {
        dovecot.deliver(USER, &mail(n)).await.unwrap();
    }
    let user = dovecot.users[0].clone();
    let (binding, tenant, account) = bound(&dovecot).await;
    let node = MailboxNode::start(binding.addr).await;
    let mut client = node.client().await;
    let (t, a) = (tenant.tenant_id.clone(), account.account_id.clone());

    // Folders with their roles.
    let folders = client
        .list_folders(gateway(pb::ListFoldersRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .folders;
    let by_role = |role: pb::FolderRole| {
        folders
            .iter()
            .find(|f| f.role() == role)
            .unwrap_or_else(|| panic!("a {role:?} folder in {folders:?}"))
            .clone()
    };
    let inbox = by_role(pb::FolderRole::Inbox);
    let archive = by_role(pb::FolderRole::Archive);
    let trash = by_role(pb::FolderRole::Trash);
    assert_eq!(inbox.total, 5);
    assert_eq!(inbox.unread, 5);

    // A first sync in windows of 2, newest first, then nothing.
    let mut token = String::new();
    let mut subjects = Vec::new();
    let mut ids = Vec::new();
    loop {
        let page = client
            .sync(gateway(pb::SyncRequest {
                tenant_id: t.clone(),
                account_id: a.clone(),
                folder_id: inbox.folder_id.clone(),
                since_token: token.clone(),
                window: 2,
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(page.added.len() <= 2);
        for summary in &page.added {
            subjects.push(summary.subject.clone());
            ids.push(summary.message_id.clone());
        }
        token = page.next_token;
        if !page.more_available {
            break;
        }
    }
    let expected: Vec<String> = (1..=5).rev().map(|n| format!("message {n}")).collect();
    assert_eq!(subjects, expected);

    // Read: the provider has it, and the next sync says so.
    client
        .set_flags(gateway(pb::SetFlagsRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_ids: vec![ids[0].clone()],
            update: Some(pb::FlagUpdate {
                seen: Some(true),
                ..Default::default()
            }),
            device_id: String::new(),
        }))
        .await
        .unwrap();
    let seen = dovecot
        .imap_peer(&user, &serde_json::json!([["flags", "INBOX", "5"]]))
        .await
        .unwrap();
    assert!(seen[0]["flags"].to_string().contains("Seen"), "{seen:?}");
    let changes = client
        .sync(gateway(pb::SyncRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            folder_id: inbox.folder_id.clone(),
            since_token: token.clone(),
            window: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changes.changed.len(), 1);
    assert_eq!(changes.changed[0].message_id, ids[0]);
    assert!(changes.changed[0].flags.unwrap().seen);

    // The whole message, as mailed.
    let mut stream = client
        .fetch_raw(gateway(pb::FetchRawRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_id: ids[1].clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let mut raw = Vec::new();
    let mut total = 0;
    while let Some(chunk) = stream.message().await.unwrap() {
        total = total.max(chunk.total_bytes);
        raw.extend(chunk.data);
    }
    assert_eq!(raw.len() as u64, total);
    assert!(String::from_utf8_lossy(&raw).contains("Subject: message 4"));

    // Filed to the archive, deleted to the trash, then for good.
    let moved = client
        .r#move(gateway(pb::MoveRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_ids: vec![ids[1].clone()],
            to_folder_id: archive.folder_id.clone(),
            device_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .moved;
    assert_eq!(moved.len(), 1);
    assert!(!moved[0].new_message_id.is_empty());
    let deleted = client
        .delete(gateway(pb::DeleteRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_ids: vec![ids[2].clone()],
            permanent: false,
            device_id: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .moved;
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].new_message_id.ends_with(&trash.folder_id));
    client
        .delete(gateway(pb::DeleteRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_ids: vec![deleted[0].new_message_id.clone()],
            permanent: false,
            device_id: String::new(),
        }))
        .await
        .unwrap();
    let uids = |folder: &'static str| {
        let dovecot = &dovecot;
        let user = &user;
        async move {
            dovecot
                .imap_peer(user, &serde_json::json!([["uids", folder]]))
                .await
                .unwrap()[0]
                .clone()
        }
    };
    assert_eq!(uids("INBOX").await, serde_json::json!([1, 2, 5]));
    assert_eq!(uids("Archive").await, serde_json::json!([1]));
    assert_eq!(uids("Trash").await, serde_json::json!([]));

    // The next sync of INBOX lists both as removed.
    let after = client
        .sync(gateway(pb::SyncRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            folder_id: inbox.folder_id.clone(),
            since_token: changes.next_token.clone(),
            window: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let mut removed = after.removed.clone();
    removed.sort();
    let mut expected = vec![ids[1].clone(), ids[2].clone()];
    expected.sort();
    assert_eq!(removed, expected);

    // Bad calls: each a clear status.
    let sync_with = |token: &str| pb::SyncRequest {
        tenant_id: t.clone(),
        account_id: a.clone(),
        folder_id: inbox.folder_id.clone(),
        since_token: token.to_owned(),
        window: 0,
    };
    let refused = client
        .sync(gateway(sync_with("not-a-token")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(refused.metadata().get("reason").unwrap(), "token-invalid");
    let refused = client
        .sync(gateway(sync_with("0123456789abcdef0123456789abcdef")))
        .await
        .unwrap_err();
    assert_eq!(refused.metadata().get("reason").unwrap(), "token-invalid");
    let refused = client
        .sync(as_service(Service::Ingest, sync_with("")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    let unknown = client
        .list_folders(gateway(pb::ListFoldersRequest {
            tenant_id: t.clone(),
            account_id: "00000000-0000-7000-8000-000000000000".to_owned(),
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let too_many = client
        .set_flags(gateway(pb::SetFlagsRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_ids: vec![ids[0].clone(); 1_001],
            update: None,
            device_id: String::new(),
        }))
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
    let forged = client
        .get_message(gateway(pb::GetMessageRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_id: "not-an-id".to_owned(),
        }))
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::InvalidArgument);
    let gone = client
        .get_message(gateway(pb::GetMessageRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_id: ids[2].clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");

    // The provider stops: unavailable, and nothing was lost.
    drop(dovecot);
    let down = client
        .list_folders(gateway(pb::ListFoldersRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(down.code(), Code::Unavailable, "{down:?}");

    node.stop().await;
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn the_phone_replies_through_the_service_and_the_provider() {
    let mut sending = Sending::start().await;
    let question = format!(
        "From: Bob <{BOB}>\r\nTo: {USER}\r\nSubject: lunch?\r\nMessage-ID: <lunch@example.net>\r\n\r\nNoon at the usual place?\r\n"
    );
    sending
        .dovecot
        .deliver(USER, question.as_bytes())
        .await
        .unwrap();
    let (t, a) = (sending.t.clone(), sending.a.clone());
    let user = sending.dovecot.users[0].clone();
    let client = &mut sending.client;
    let dovecot = &sending.dovecot;
    let postfix = &sending.postfix;

    let folders = client
        .list_folders(gateway(pb::ListFoldersRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .folders;
    let inbox = folders
        .iter()
        .find(|f| f.role() == pb::FolderRole::Inbox)
        .unwrap()
        .clone();
    let page = client
        .sync(gateway(pb::SyncRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            folder_id: inbox.folder_id.clone(),
            since_token: String::new(),
            window: 0,
        }))
        .await
        .unwrap()
        .into_inner();
    let original = page.added[0].message_id.clone();

    let reply = pb::SendRequest {
        tenant_id: t.clone(),
        account_id: a.clone(),
        kind: pb::SendKind::Reply.into(),
        reference_message_id: original.clone(),
        text_body: "Yes, see you there.".to_owned(),
        language: "en".to_owned(),
        client_send_id: "phone-1".to_owned(),
        signature: Some(pb::Signature {
            text: "Sent from my phone".to_owned(),
            html: String::new(),
        }),
        ..Default::default()
    };
    let sent = client
        .send(gateway(reply.clone()))
        .await
        .unwrap()
        .into_inner();
    assert!(!sent.rfc_message_id.is_empty());
    assert!(!sent.sent_message_id.is_empty(), "a copy in Sent");

    // Bob has it.
    assert_eq!(bobs_inbox(dovecot, 1).await, serde_json::json!([1]));
    let bob = dovecot.users[1].clone();

    // The same Send again (the phone lost the answer): the same answer,
    // nothing sent twice.
    let again = client.send(gateway(reply)).await.unwrap().into_inner();
    assert_eq!(again, sent);
    postfix
        .wait_queue_empty(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let uids = dovecot
        .imap_peer(&bob, &serde_json::json!([["uids", "INBOX"]]))
        .await
        .unwrap();
    assert_eq!(uids[0], serde_json::json!([1]));

    // The original is marked answered; the Sent copy is there, seen.
    let flags = dovecot
        .imap_peer(&user, &serde_json::json!([["flags", "INBOX", "1"]]))
        .await
        .unwrap();
    assert!(
        flags[0]["flags"].to_string().contains("Answered"),
        "{flags:?}"
    );
    let copy = client
        .get_message(gateway(pb::GetMessageRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_id: sent.sent_message_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .summary
        .unwrap();
    assert_eq!(copy.subject, "Re: lunch?");
    assert_eq!(copy.in_reply_to, "lunch@example.net");
    assert!(copy.flags.unwrap().seen);

    // Bad sends: each a clear status, nothing sent.
    let unknown = client
        .send(gateway(pb::SendRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            kind: pb::SendKind::Reply.into(),
            reference_message_id: original.replacen(".1.", ".999.", 1),
            text_body: "?".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    let crowd = client
        .send(gateway(pb::SendRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            kind: pb::SendKind::New.into(),
            to: (0..10_000)
                .map(|i| pushmail_proto::common::v1::Address {
                    name: String::new(),
                    address: format!("u{i}@example.net"),
                })
                .collect(),
            subject: "all".to_owned(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(crowd.code(), Code::InvalidArgument, "{crowd:?}");
    let no_kind = client
        .send(gateway(pb::SendRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            ..Default::default()
        }))
        .await
        .unwrap_err();
    assert_eq!(no_kind.code(), Code::InvalidArgument);
    postfix
        .wait_queue_empty(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    let uids = dovecot
        .imap_peer(&bob, &serde_json::json!([["uids", "INBOX"]]))
        .await
        .unwrap();
    assert_eq!(uids[0], serde_json::json!([1]));

    sending.stop().await;
}

#[tokio::test]
async fn a_large_attachment_goes_up_in_chunks_and_arrives_byte_for_byte() {
    const MIB: usize = 1024 * 1024;
    let mut sending = Sending::start().await;
    let (t, a) = (sending.t.clone(), sending.a.clone());
    let file: Vec<u8> = (0..3 * MIB + 12_345)
        .map(|i| (u32::try_from(i).unwrap().wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let client = &mut sending.client;

    let begun = client
        .begin_upload(gateway(pb::BeginUploadRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            file_name: "/sdcard/DCIM/site-survey.bin".to_owned(),
            content_type: "application/octet-stream".to_owned(),
            total_bytes: file.len() as u64,
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((begun.received_bytes, begun.complete), (0, false));
    assert!(begun.expires_at.is_some());
    let id = begun.upload_id.clone();

    let send = |upload_ids: Vec<String>| pb::SendRequest {
        tenant_id: t.clone(),
        account_id: a.clone(),
        kind: pb::SendKind::New.into(),
        to: vec![pushmail_proto::common::v1::Address {
            name: "Bob".to_owned(),
            address: BOB.to_owned(),
        }],
        subject: "the survey".to_owned(),
        text_body: "Attached.".to_owned(),
        upload_ids,
        ..Default::default()
    };
    // Named before it is complete: refused, nothing sent.
    let early = client
        .send(gateway(send(vec![id.clone()])))
        .await
        .unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    assert_eq!(early.metadata().get("reason").unwrap(), "upload-incomplete");

    let chunk = |offset: usize| pb::UploadChunkRequest {
        tenant_id: t.clone(),
        account_id: a.clone(),
        upload_id: id.clone(),
        offset: offset as u64,
        data: file[offset..(offset + MIB).min(file.len())].to_vec(),
    };
    for offset in [0, MIB] {
        let upload = client
            .upload_chunk(gateway(chunk(offset)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(upload.received_bytes, (offset + MIB) as u64);
    }
    let staged = sending.node.blobs.path().join("staging");
    assert_eq!(
        std::fs::read_dir(&staged).map_or(0, Iterator::count),
        1,
        "this upload's chunks staged while it is in progress"
    );
    // The connection dropped before the answer: the phone repeats the
    // second chunk, is told where the upload stands, and resumes there.
    let repeated = client.upload_chunk(gateway(chunk(MIB))).await.unwrap_err();
    assert_eq!(repeated.code(), Code::Aborted, "{repeated:?}");
    assert_eq!(
        repeated.metadata().get("received-bytes").unwrap(),
        &(2 * MIB).to_string()
    );
    let asked = client
        .get_upload(gateway(pb::GetUploadRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            upload_id: id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(asked.received_bytes, (2 * MIB) as u64);
    let mut offset = asked.received_bytes as usize;
    let mut last = asked;
    while offset < file.len() {
        last = client
            .upload_chunk(gateway(chunk(offset)))
            .await
            .unwrap()
            .into_inner();
        offset = last.received_bytes as usize;
    }
    assert!(last.complete);
    assert_eq!(
        std::fs::read_dir(&staged).map_or(0, Iterator::count),
        0,
        "chunks unstaged once complete"
    );

    // Another account of the tenant cannot use it.
    let foreign = client
        .get_upload(gateway(pb::GetUploadRequest {
            tenant_id: t.clone(),
            account_id: "00000000-0000-7000-8000-000000000000".to_owned(),
            upload_id: id.clone(),
        }))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::NotFound);

    let sent = client
        .send(gateway(send(vec![id.clone()])))
        .await
        .unwrap()
        .into_inner();
    assert!(!sent.sent_message_id.is_empty());
    let uids = bobs_inbox(&sending.dovecot, 1).await;
    assert_eq!(uids, serde_json::json!([1]), "sent once");
    let bob = sending.dovecot.users[1].clone();
    let attachments = sending
        .dovecot
        .imap_peer(&bob, &serde_json::json!([["attachments", "INBOX", "1"]]))
        .await
        .unwrap();
    let digest = pushmail_common::blob::BlobRef::of(&file);
    assert_eq!(
        attachments[0],
        serde_json::json!([{
            "name": "site-survey.bin",
            "type": "application/octet-stream",
            "size": file.len(),
            "sha256": digest.as_str().trim_start_matches("sha256:"),
        }])
    );

    // Bad uploads: each a clear status.
    let client = &mut sending.client;
    let huge = client
        .begin_upload(gateway(pb::BeginUploadRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            file_name: "huge.iso".to_owned(),
            content_type: String::new(),
            total_bytes: 1 << 40,
        }))
        .await
        .unwrap_err();
    assert_eq!(huge.code(), Code::InvalidArgument, "{huge:?}");
    let unknown = client
        .upload_chunk(gateway(pb::UploadChunkRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            upload_id: "0123456789abcdef0123456789abcdef".to_owned(),
            offset: 0,
            data: vec![1],
        }))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    let stranger = client
        .begin_upload(gateway(pb::BeginUploadRequest {
            tenant_id: t.clone(),
            account_id: "00000000-0000-7000-8000-000000000000".to_owned(),
            file_name: "x".to_owned(),
            content_type: String::new(),
            total_bytes: 1,
        }))
        .await
        .unwrap_err();
    assert_eq!(stranger.code(), Code::NotFound, "no account, no staging");

    sending.stop().await;
}

#[tokio::test]
async fn activesync_follows_the_tree_estimates_and_reads_bodies_cut_to_size() {
    let dovecot = Dovecot::start_provider(&[USER], ImapProfile::Modern)
        .await
        .unwrap();
    for n in 1..=3 {
        dovecot.deliver(USER, &mail(n)).await.unwrap();
    }
    let user = dovecot.users[0].clone();
    let (binding, tenant, account) = bound(&dovecot).await;
    let node = MailboxNode::start(binding.addr).await;
    let mut client = node.client().await;
    let (t, a) = (tenant.tenant_id.clone(), account.account_id.clone());

    // The tree: all of it first, parents before children; nothing new
    // keeps the token; a folder made elsewhere is one change; a repeated
    // token is answered again; an unknown one must start over.
    let changes = |token: &str| pb::FolderChangesRequest {
        tenant_id: t.clone(),
        account_id: a.clone(),
        since_token: token.to_owned(),
    };
    let all = client
        .folder_changes(activesync(changes("")))
        .await
        .unwrap()
        .into_inner();
    assert!(all.added.iter().any(|f| f.role() == pb::FolderRole::Inbox));
    assert!(all.changed.is_empty() && all.removed.is_empty());
    let same = client
        .folder_changes(activesync(changes(&all.next_token)))
        .await
        .unwrap()
        .into_inner();
    assert!(same.added.is_empty());
    assert_eq!(same.next_token, all.next_token);
    dovecot
        .imap_peer(
            &user,
            &serde_json::json!([["create", "Clients"], ["create", "Clients/Acme"]]),
        )
        .await
        .unwrap();
    let made = client
        .folder_changes(activesync(changes(&all.next_token)))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = made.added.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["Clients", "Acme"]);
    assert_eq!(made.added[1].parent_id, made.added[0].folder_id);
    let again = client
        .folder_changes(activesync(changes(&all.next_token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.added, made.added);
    dovecot
        .imap_peer(
            &user,
            &serde_json::json!([["delete", "Clients/Acme"], ["delete", "Clients"]]),
        )
        .await
        .unwrap();
    let gone = client
        .folder_changes(activesync(changes(&made.next_token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        gone.removed,
        [
            made.added[1].folder_id.clone(),
            made.added[0].folder_id.clone()
        ],
        "children before their parents"
    );
    let unknown = client
        .folder_changes(activesync(changes("0123456789abcdef0123456789abcdef")))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert_eq!(unknown.metadata().get("reason").unwrap(), "token-invalid");

    // Estimates count without giving or issuing anything.
    let inbox = all
        .added
        .iter()
        .find(|f| f.role() == pb::FolderRole::Inbox)
        .unwrap()
        .folder_id
        .clone();
    let estimate = |token: &str| pb::EstimateSyncRequest {
        tenant_id: t.clone(),
        account_id: a.clone(),
        folder_id: inbox.clone(),
        since_token: token.to_owned(),
    };
    let whole = client
        .estimate_sync(activesync(estimate("")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(whole.estimate, 3);
    let page = client
        .sync(activesync(pb::SyncRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            folder_id: inbox.clone(),
            since_token: String::new(),
            window: 1,
        }))
        .await
        .unwrap()
        .into_inner();
    let rest = client
        .estimate_sync(activesync(estimate(&page.next_token)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(rest.estimate, 2, "the rest of a paged answer");

    // Bodies: plain, the message as mailed, cut where asked; a gone
    // message left out; more than 64 at once refused.
    let id = page.added[0].message_id.clone();
    let bodies = |kind: pb::BodyType, max: u64, ids: Vec<String>| pb::GetBodiesRequest {
        tenant_id: t.clone(),
        account_id: a.clone(),
        message_ids: ids,
        r#type: kind.into(),
        max_bytes: max,
    };
    let text = client
        .get_bodies(activesync(bodies(pb::BodyType::Html, 0, vec![id.clone()])))
        .await
        .unwrap()
        .into_inner()
        .bodies;
    assert_eq!(text.len(), 1);
    assert_eq!(text[0].r#type(), pb::BodyType::Plain, "no HTML: plain text");
    assert!(String::from_utf8_lossy(&text[0].data).starts_with("body of message 3"));
    assert!(!text[0].truncated);
    let missing = format!("{}.999.{inbox}", id.split('.').next().unwrap());
    let cut = client
        .get_bodies(activesync(bodies(
            pb::BodyType::Mime,
            20,
            vec![id.clone(), missing],
        )))
        .await
        .unwrap()
        .into_inner()
        .bodies;
    assert_eq!(cut.len(), 1, "the missing one is left out");
    // The message as the server holds it (Dovecot adds Return-Path).
    let mut stream = client
        .fetch_raw(activesync(pb::FetchRawRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_id: id.clone(),
        }))
        .await
        .unwrap()
        .into_inner();
    let mut raw = Vec::new();
    while let Some(chunk) = stream.message().await.unwrap() {
        raw.extend(chunk.data);
    }
    assert_eq!(cut[0].data, &raw[..20]);
    assert!(cut[0].truncated);
    assert_eq!(cut[0].total_bytes, raw.len() as u64);
    let many = client
        .get_bodies(activesync(bodies(pb::BodyType::Plain, 0, vec![id; 65])))
        .await
        .unwrap_err();
    assert_eq!(many.code(), Code::InvalidArgument);

    // A part the message does not have.
    let no_part = client
        .get_attachment(activesync(pb::GetAttachmentRequest {
            tenant_id: t.clone(),
            account_id: a.clone(),
            message_id: page.added[0].message_id.clone(),
            part_id: "2".to_owned(),
            offset: 0,
            max_bytes: 0,
        }))
        .await
        .unwrap_err();
    assert_eq!(no_part.code(), Code::NotFound, "{no_part:?}");

    // Another service's credential is refused.
    let refused = client
        .folder_changes(as_service(Service::Ingest, changes("")))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);

    node.stop().await;
    binding.stop().await.unwrap();
}
