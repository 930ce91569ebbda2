//! Inbound mail from whoever can reach the SMTP and LMTP ports: without
//! its tenant's relay login, certificate or network nobody delivers to an
//! account, the answer never tells an address that exists from one that
//! does not, another tenant's trusted relay is as unknown as anyone, and a
//! mail sent first with a genuine mail's Message-ID does not swallow it.

use std::net::IpAddr;
use std::time::Duration;

use pushmail_integration_tests::smtp::Conversation;
use pushmail_integration_tests::unique;
use pushmail_proto::binding::v1 as pb;

use crate::Target;

const ATTACKER: &str = "127.0.0.1";

fn ip(text: &str) -> Option<IpAddr> {
    Some(text.parse().expect("an IP"))
}

/// The reply to `RCPT TO:<to>` in a fresh transaction from `from`.
async fn rcpt(server: std::net::SocketAddr, from: &str, hello: &str, to: &str) -> (u16, String) {
    let (mut c, greeting) = Conversation::open(server, ip(from)).await.unwrap();
    assert_eq!(greeting.0, 220, "{greeting:?}");
    assert_eq!(
        c.say(&format!("{hello} attacker.example")).await.unwrap().0,
        250
    );
    assert_eq!(
        c.say("MAIL FROM:<x@attacker.example>").await.unwrap().0,
        250
    );
    c.say(&format!("RCPT TO:<{to}>")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_but_the_tenants_own_relays_delivers_and_nothing_tells_which_addresses_exist() {
    let mut target = Target::start().await;
    let smtp = target.platform.smtp;
    let lmtp = target.platform.lmtp;
    let unknown = format!("{}@corp.example", unique("nobody"));

    // Injection without credentials, over SMTP and LMTP: refused, and an
    // address that exists gets the very answer one that does not gets.
    for (server, hello) in [(smtp, "EHLO"), (lmtp, "LHLO")] {
        let real = rcpt(server, ATTACKER, hello, &target.address).await;
        let fake = rcpt(server, ATTACKER, hello, &unknown).await;
        assert_eq!(real.0, 530, "{hello}: {real:?}");
        assert_eq!(real, fake, "{hello}: the answers tell addresses apart");
    }

    // Another tenant whose own relay connects from the attacker's address:
    // it delivers to its own account, and to the honest one not at all.
    let api = &mut target.platform.api;
    let mallory = api.tenant().await.unwrap();
    let own = format!("{}@corp.example", unique("mallory"));
    api.account(&mallory, &own, pb::AccountKind::EnterpriseForwarded, None)
        .await
        .unwrap();
    api.relay_policy(&mallory, &[&format!("{ATTACKER}/32")], &[])
        .await
        .unwrap();
    assert_eq!(rcpt(smtp, ATTACKER, "EHLO", &own).await.0, 250);
    let honest = rcpt(smtp, ATTACKER, "EHLO", &target.address).await;
    let nobody = rcpt(smtp, ATTACKER, "EHLO", &unknown).await;
    assert_eq!(honest.0, 530, "{honest:?}");
    assert_eq!(
        honest, nobody,
        "another tenant's address looks like no address"
    );

    // Nothing reached the honest phone: the next push it gets is the
    // normal mail's (`still_serves` checks the subject).
    target.still_serves().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_id_sent_first_from_elsewhere_does_not_swallow_the_genuine_mail() {
    let mut target = Target::start().await;
    // A second relay of the same tenant (a branch office, say) that an
    // attacker controls: it may deliver, and it sends the genuine mail's
    // Message-ID first.
    const BRANCH: &str = "127.0.0.4";
    target
        .platform
        .api
        .relay_policy(
            &target.tenant,
            &["127.0.0.2/32", &format!("{BRANCH}/32")],
            &[],
        )
        .await
        .unwrap();
    let message_id = format!("<{}@corp.example>", unique("genuine"));
    let mail = |subject: &str| {
        format!(
            "From: Boss <boss@corp.example>\r\nTo: <{}>\r\nSubject: {subject}\r\n\
             Message-ID: {message_id}\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\r\nbody\r\n",
            target.address
        )
    };
    let deliver = |from: &'static str, raw: String| {
        let smtp = target.platform.smtp;
        let to = target.address.clone();
        async move {
            let (mut c, _) = Conversation::open(smtp, ip(from)).await.unwrap();
            c.say("EHLO relay.example").await.unwrap();
            c.say("MAIL FROM:<boss@corp.example>").await.unwrap();
            assert_eq!(c.say(&format!("RCPT TO:<{to}>")).await.unwrap().0, 250);
            assert_eq!(c.say("DATA").await.unwrap().0, 354);
            let answer = c.data(&raw).await.unwrap();
            assert_eq!(answer.0, 250, "{answer:?}");
        }
    };
    deliver(BRANCH, mail("decoy")).await;
    let decoy = target
        .phone
        .notification_within(Duration::from_secs(60))
        .await
        .expect("the decoy is pushed (its relay may deliver)");
    assert_eq!(decoy.subject.as_deref(), Some("decoy"));
    deliver("127.0.0.2", mail("the real one")).await;
    let genuine = target
        .phone
        .notification_within(Duration::from_secs(60))
        .await
        .expect("the genuine mail was collapsed into the decoy");
    assert_eq!(genuine.subject.as_deref(), Some("the real one"));
    // The genuine relay's retry of the same mail is still a duplicate: the
    // next push is the normal mail's (one account's mail is dispatched in
    // order, so a repeat would come first).
    deliver("127.0.0.2", mail("the real one")).await;
    target.still_serves().await;
    target.stop().await;
}
