//! Mailbox search over gRPC against a real provider: Dovecot's own
//! search finds words in headers and text (Chinese included), in one
//! folder or in all of them, newest first, within received dates checked
//! exactly; bad searches get clear statuses.

#![allow(
    clippy::too_many_lines,
    reason = "a test reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_common::clock::{now_ms, timestamp};
use pushmail_common::service_identity::Service;
use pushmail_integration_tests::credential;
use pushmail_integration_tests::dovecot::{Dovecot, ImapProfile};
use pushmail_integration_tests::mailbox::{MailboxNode, USER, bound};
use pushmail_proto::mailbox::v1 as pb;
use tonic::Code;

fn activesync<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", credential(Service::ActiveSync))
            .parse()
            .unwrap(),
    );
    request
}

fn mail(n: usize, subject: &str, body: &str) -> Vec<u8> {
    format!(
        "From: Sender {n} <sender{n}@example.org>\r\nTo: {USER}\r\nSubject: {subject}\r\n\
         Message-ID: <search{n}@example.org>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

#[tokio::test]
async fn the_providers_search_finds_words_and_dates_newest_first() {
    let dovecot = Dovecot::start_provider(&[USER], ImapProfile::Modern)
        .await
        .unwrap();
    let messages = [
        mail(1, "budget draft", "numbers for the quarter"),
        mail(2, "lunch", "the budget is fine, see you at noon"),
        mail(3, "=?UTF-8?B?5a2j5bqm5oql5ZGK?=", "请审阅"),
        mail(4, "holiday", "nothing to see"),
    ];
    for message in &messages {
        dovecot.deliver(USER, message).await.unwrap();
    }
    let (binding, tenant, account) = bound(&dovecot).await;
    let node = MailboxNode::start(binding.addr).await;
    let mut client = node.client().await;
    let inbox = client
        .list_folders(activesync(pb::ListFoldersRequest {
            tenant_id: tenant.tenant_id.clone(),
            account_id: account.account_id.clone(),
        }))
        .await
        .unwrap()
        .into_inner()
        .folders
        .into_iter()
        .find(|f| f.role() == pb::FolderRole::Inbox)
        .unwrap();
    let request = |text: &str| pb::SearchRequest {
        tenant_id: tenant.tenant_id.clone(),
        account_id: account.account_id.clone(),
        folder_ids: vec![inbox.folder_id.clone()],
        text: text.to_owned(),
        ..Default::default()
    };
    let mut search = async |request: pb::SearchRequest| {
        client
            .search(activesync(request))
            .await
            .map(|r| r.into_inner())
    };
    let subjects = |found: &pb::SearchResponse| -> Vec<String> {
        found.found.iter().map(|s| s.subject.clone()).collect()
    };

    // In the subject of one and the text of another, newest first.
    let budget = search(request("BUDGET")).await.unwrap();
    assert_eq!(subjects(&budget), ["lunch", "budget draft"]);
    assert_eq!(budget.total, 2);
    assert!(budget.found[0].message_id.ends_with(&inbox.folder_id));
    // Chinese, in an encoded subject.
    let chinese = search(request("季度")).await.unwrap();
    assert_eq!(subjects(&chinese), ["季度报告"]);
    // Every folder when none is named; the limit keeps the newest.
    let everywhere = search(pb::SearchRequest {
        folder_ids: Vec::new(),
        limit: 1,
        ..request("")
    })
    .await
    .unwrap();
    assert_eq!(subjects(&everywhere), ["holiday"]);
    assert_eq!(everywhere.total, 4);
    // Dates: all arrived before tomorrow, none after it.
    let tomorrow = timestamp(now_ms() + 86_400_000);
    let before = search(pb::SearchRequest {
        received_before: Some(tomorrow),
        ..request("")
    })
    .await
    .unwrap();
    assert_eq!(before.found.len(), 4);
    let after = search(pb::SearchRequest {
        received_after: Some(tomorrow),
        ..request("budget")
    })
    .await
    .unwrap();
    assert!(after.found.is_empty(), "{after:?}");
    assert!(
        search(request("no-such-words"))
            .await
            .unwrap()
            .found
            .is_empty()
    );

    // Refusals: too many folders, words too long or with a line break,
    // dates backwards, a folder that is not there.
    for (bad, code) in [
        (
            pb::SearchRequest {
                folder_ids: vec![inbox.folder_id.clone(); 51],
                ..request("x")
            },
            Code::InvalidArgument,
        ),
        (request(&"x".repeat(257)), Code::InvalidArgument),
        // A line break would end the IMAP command and start another.
        (request("x\r\nA1 DELETE INBOX"), Code::InvalidArgument),
        (
            pb::SearchRequest {
                received_after: Some(tomorrow),
                received_before: Some(timestamp(now_ms())),
                ..request("x")
            },
            Code::InvalidArgument,
        ),
        (
            pb::SearchRequest {
                folder_ids: vec![
                    pushmail_mailbox::domain::FolderId::new("Nowhere".to_owned()).encode(),
                ],
                ..request("x")
            },
            Code::NotFound,
        ),
    ] {
        let refused = search(bad).await.unwrap_err();
        assert_eq!(refused.code(), code, "{refused:?}");
    }

    node.stop().await;
    binding.stop().await.unwrap();
}
