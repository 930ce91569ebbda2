//! Sending from an account with no login of its own (forwarded to the
//! platform by its enterprise): the mail goes through the tenant's relay,
//! a Debian Postfix with SMTP AUTH against Dovecot, logged in to as the
//! relay's user, and reaches the recipient's Dovecot mailbox from the
//! account's address; its copy is in the platform's own Sent folder.
//! Without a relay, or with the wrong password, the phone is told so and
//! nothing is sent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use pushmail_common::service_identity::Service;
use pushmail_integration_tests::mailbox::{
    BOB, MailboxNode, bobs_inbox, pem_file, sending_provider,
};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_integration_tests::{authed, credential};
use pushmail_proto::binding::v1 as binding;
use pushmail_proto::common::v1::Address;
use pushmail_proto::mailbox::v1 as pb;
use tonic::Code;

const RELAY_USER: &str = "relay@example.net";
const SENDER: &str = "li@corp.example.cn";

fn gateway<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", credential(Service::Gateway))
            .parse()
            .unwrap(),
    );
    request
}

fn draft(t: &str, a: &str, key: &str) -> pb::SendRequest {
    pb::SendRequest {
        tenant_id: t.to_owned(),
        account_id: a.to_owned(),
        kind: pb::SendKind::New.into(),
        to: vec![Address {
            name: "Bob".to_owned(),
            address: BOB.to_owned(),
        }],
        subject: "季度报告 from the relay".to_owned(),
        text_body: "Sent through the tenant's relay.".to_owned(),
        client_send_id: key.to_owned(),
        ..Default::default()
    }
}

fn relay(port: u16, password: &str) -> binding::SetSubmissionRelayRequest {
    binding::SetSubmissionRelayRequest {
        tenant_id: String::new(),
        server: Some(binding::ServerSettings {
            host: "localhost".to_owned(),
            port: u32::from(port),
            tls: binding::TlsMode::Starttls.into(),
            username: RELAY_USER.to_owned(),
        }),
        credentials: Some(binding::Credentials {
            password: password.to_owned(),
        }),
    }
}

/// Bob's only mail, as Python's email package reads it: from the
/// forwarded address, with the subject and the text the phone wrote.
async fn bob_has_it_from_the_forwarded_address(
    dovecot: &pushmail_integration_tests::dovecot::Dovecot,
) {
    let uids = bobs_inbox(dovecot, 1).await;
    assert_eq!(uids, serde_json::json!([1]), "sent once");
    let bob = dovecot.users[1].clone();
    let received = dovecot
        .imap_peer(&bob, &serde_json::json!([["message", "INBOX", "1"]]))
        .await
        .unwrap()[0]
        .clone();
    assert!(
        received["from"].as_str().unwrap().contains(SENDER),
        "{received}"
    );
    assert_eq!(received["subject"], "季度报告 from the relay");
    assert!(
        received["text"]
            .as_str()
            .unwrap()
            .contains("Sent through the tenant's relay."),
        "{received}"
    );
}

#[tokio::test]
async fn a_forwarded_account_sends_through_its_tenants_relay() {
    let (dovecot, postfix) = sending_provider(&[RELAY_USER, BOB]).await;
    let mut node = BindingNode::start().await.unwrap();
    let tenant = node.tenant().await.unwrap();
    let account = node.forwarded(&tenant, SENDER).await.unwrap();
    let certs = tempfile::tempdir().unwrap();
    let ca = pem_file(certs.path(), &postfix.certificate);
    let mailbox = MailboxNode::start_trusting(node.addr, Some(ca)).await;
    let mut client = mailbox.client().await;
    let (t, a) = (tenant.tenant_id.clone(), account.account_id.clone());

    // No relay yet: the phone is told why.
    let none = client.send(gateway(draft(&t, &a, "k1"))).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition, "{none:?}");
    assert!(none.message().contains("relay"), "{none:?}");

    // A wrong password: the relay refuses the login, nothing is sent.
    node.admin
        .set_submission_relay(authed(
            &tenant.api_key,
            relay(postfix.submission.port(), "not-the-password"),
        ))
        .await
        .unwrap();
    let wrong = client.send(gateway(draft(&t, &a, "k2"))).await.unwrap_err();
    assert_eq!(wrong.code(), Code::FailedPrecondition, "{wrong:?}");
    assert_eq!(
        wrong.metadata().get("reason").unwrap().to_str().unwrap(),
        "credentials"
    );

    let password = dovecot.users[0].password.clone();
    node.admin
        .set_submission_relay(authed(
            &tenant.api_key,
            relay(postfix.submission.port(), &password),
        ))
        .await
        .unwrap();
    let sent = client
        .send(gateway(draft(&t, &a, "k3")))
        .await
        .unwrap()
        .into_inner();

    bob_has_it_from_the_forwarded_address(&dovecot).await;

    // The copy is in the platform's own Sent folder, read.
    assert!(!sent.sent_message_id.is_empty(), "{sent:?}");
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
    assert_eq!(copy.subject, "季度报告 from the relay");
    assert_eq!(copy.rfc_message_id, sent.rfc_message_id);
    assert!(copy.flags.unwrap().seen);

    // The same send again (the phone retrying) sends nothing more.
    let again = client
        .send(gateway(draft(&t, &a, "k3")))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.rfc_message_id, sent.rfc_message_id);
    postfix
        .wait_queue_empty(std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(bobs_inbox(&dovecot, 1).await, serde_json::json!([1]));

    mailbox.stop().await;
    node.stop().await.unwrap();
}
