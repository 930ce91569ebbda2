//! App passwords: made for a phone behind a verified number, shown once,
//! checked for the activesync service only, pinned to the first phone
//! that logs in, locked out against guessing (per address and first
//! group, so knowing an address does not lock its phone out, and per
//! peer), its own refusals marked for the front door, and void once the
//! password, its device or its binding is revoked.

use super::*;

#[derive(Clone, Copy)]
struct Login<'a> {
    username: &'a str,
    password: &'a str,
    peer: &'a str,
    phone: &'a str,
}

fn login(l: &Login<'_>) -> pb::AuthenticateAppPasswordRequest {
    pb::AuthenticateAppPasswordRequest {
        username: l.username.to_owned(),
        password: l.password.to_owned(),
        peer_ip: l.peer.to_owned(),
        client_device_id: l.phone.to_owned(),
        client_device_type: "iPhone".to_owned(),
    }
}

async fn check(
    client: &mut BindingServiceClient<Channel>,
    l: &Login<'_>,
) -> Result<tonic::Response<pb::AuthenticateAppPasswordResponse>, Status> {
    client
        .authenticate_app_password(as_service(Service::ActiveSync, login(l)))
        .await
}

async fn make(
    admin: &mut AdminServiceClient<Channel>,
    tenant: &TestTenant,
    account: &pb::Account,
    msisdn: &str,
    label: &str,
) -> Result<tonic::Response<pb::CreateAppPasswordResponse>, Status> {
    admin
        .create_app_password(authed(
            &tenant.key,
            pb::CreateAppPasswordRequest {
                tenant_id: tenant.id.clone(),
                account_id: account.account_id.clone(),
                msisdn: msisdn.to_owned(),
                label: label.to_owned(),
            },
        ))
        .await
}

async fn listed(
    admin: &mut AdminServiceClient<Channel>,
    tenant: &TestTenant,
    account: &pb::Account,
) -> Vec<pb::AppPassword> {
    admin
        .list_app_passwords(authed(
            &tenant.key,
            pb::ListAppPasswordsRequest {
                tenant_id: tenant.id.clone(),
                account_id: account.account_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .app_passwords
}

#[tokio::test]
async fn app_passwords_log_a_phone_in_once_pinned_and_stop_when_revoked() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let mallory = tenant(&mut admin, 10).await;
    let mut events = platform.events(&alice.id).await;
    let address = format!("{}@corp.example", unique("alice"));
    let account = account(&mut admin, &alice, &address).await;
    let msisdn = number();

    // Only a number verified bound to the account gets one, and only
    // its tenant may make it.
    refused(
        make(&mut admin, &alice, &account, &msisdn, "iPhone").await,
        Code::FailedPrecondition,
        "not verified bound",
    );
    refused(
        make(&mut admin, &mallory, &account, &msisdn, "iPhone").await,
        Code::NotFound,
        "account",
    );
    bind(&mut admin, &mut events, &alice, &account, &msisdn).await;
    refused(
        make(&mut admin, &alice, &account, &msisdn, "bad\u{7}label").await,
        Code::InvalidArgument,
        "label",
    );
    let made = make(&mut admin, &alice, &account, &msisdn, "Alice's iPhone")
        .await
        .unwrap()
        .into_inner();
    let password = made.password.clone();
    let groups: Vec<&str> = password.split('-').collect();
    assert_eq!(groups.len(), 4, "{password}");
    assert!(groups.iter().all(|g| g.len() == 4), "{password}");
    let row = made.app_password.unwrap();
    assert_eq!(row.msisdn, msisdn);
    assert!(row.client_device_id.is_empty(), "no phone yet");
    // The phone is a device of the number: dispatch sees it.
    let devices: Vec<String> = targets(&replica, &alice, &account)
        .await
        .into_iter()
        .map(|t| t.device_id)
        .collect();
    assert!(devices.contains(&row.device_id), "{devices:?}");
    let listed_once = listed(&mut admin, &alice, &account).await;
    assert_eq!(listed_once.len(), 1);
    assert!(
        !format!("{listed_once:?}").contains(&password),
        "never listed"
    );

    // The activesync service alone may check a login.
    let good = Login {
        username: &format!("CORP\\{}", address.to_uppercase()),
        password: &password.to_uppercase().replace('-', " "),
        peer: "198.51.100.7",
        phone: "ApplF17XK0XXHG7F",
    };
    // Binding marks the refusals that are the login's own, and only
    // those: the front door tells the phone of no others.
    let outcome = |status: &Status| {
        status
            .metadata()
            .get("x-pushmail-login")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let not_ours = internal
        .authenticate_app_password(as_service(Service::Ingest, login(&good)))
        .await
        .unwrap_err();
    assert_eq!(not_ours.code(), Code::PermissionDenied);
    assert_eq!(outcome(&not_ours), None);
    let wrong = check(
        &mut internal,
        &Login {
            password: "abcd-efgh-jkmn-pqrs",
            peer: "203.0.113.9",
            ..good
        },
    )
    .await
    .unwrap_err();
    assert_eq!(outcome(&wrong).as_deref(), Some("refused"));
    let first = check(&mut internal, &good).await.unwrap().into_inner();
    assert_eq!(first.tenant_id, alice.id);
    assert_eq!(first.account_id, account.account_id);
    assert_eq!(first.device_id, row.device_id);
    assert_eq!(first.address, address);
    assert_eq!(first.policy_key, 0, "not provisioned yet");
    // The phone's binding's preferences come with the login (the
    // defaults here: attachments on, 4 KiB pushes, no signature).
    let preferences = first
        .preferences
        .as_ref()
        .expect("the binding's preferences");
    assert!(preferences.attachments);
    assert_eq!(
        (preferences.max_push_bytes, preferences.signature.as_str()),
        (4_096, "")
    );
    // Provision: offered, acknowledged, then the phone's (activesync only).
    let provision = |key: u32| {
        as_service(
            Service::ActiveSync,
            pb::ProvisionDeviceRequest {
                tenant_id: alice.id.clone(),
                app_password_id: row.app_password_id.clone(),
                acknowledged_policy_key: key,
                policy_digest: "policy-1".to_owned(),
            },
        )
    };
    let offered = internal
        .provision_device(provision(0))
        .await
        .unwrap()
        .into_inner()
        .policy_key;
    assert_ne!(offered, 0);
    refused(
        internal.provision_device(provision(offered ^ 1)).await,
        Code::FailedPrecondition,
        "not the one offered",
    );
    let key = internal
        .provision_device(provision(offered))
        .await
        .unwrap()
        .into_inner()
        .policy_key;
    assert_ne!(key, 0);
    let provisioned = check(&mut internal, &good).await.unwrap().into_inner();
    assert_eq!(
        (provisioned.policy_key, provisioned.policy_digest.as_str()),
        (key, "policy-1")
    );
    let pinned = &listed(&mut admin, &alice, &account).await[0];
    assert_eq!(pinned.client_device_id, "ApplF17XK0XXHG7F");
    assert_eq!(pinned.client_device_type, "iPhone");
    assert!(pinned.last_used_at.is_some());
    // A repeat is remembered; another phone with the same password is not
    // this phone.
    check(&mut internal, &good).await.unwrap();
    let elsewhere = check(
        &mut internal,
        &Login {
            phone: "androidc1234",
            ..good
        },
    )
    .await
    .unwrap_err();
    assert_eq!(elsewhere.code(), Code::PermissionDenied);
    assert!(elsewhere.message().contains("another phone"));
    assert_eq!(outcome(&elsewhere).as_deref(), Some("other-phone"));
    for (password, why) in [
        ("abcd-efgh-jkmn-pqrs", "wrong"),
        ("short", "malformed"),
        ("", "empty"),
    ] {
        let result = check(
            &mut internal,
            &Login {
                password,
                peer: "203.0.113.9",
                ..good
            },
        )
        .await;
        refused(result, Code::Unauthenticated, "app password refused");
        eprintln!("{why} refused");
    }
    refused(
        check(
            &mut internal,
            &Login {
                username: "nobody@corp.example",
                ..good
            },
        )
        .await,
        Code::Unauthenticated,
        "app password refused",
    );

    // Revoking the password revokes the device: the login stops at once
    // and dispatch no longer targets the phone.
    let revoked = admin
        .revoke_app_password(authed(
            &alice.key,
            pb::RevokeAppPasswordRequest {
                tenant_id: alice.id.clone(),
                app_password_id: row.app_password_id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked_at.is_some());
    refused(
        check(&mut internal, &good).await,
        Code::Unauthenticated,
        "app password refused",
    );
    let devices: Vec<String> = targets(&replica, &alice, &account)
        .await
        .into_iter()
        .map(|t| t.device_id)
        .collect();
    assert!(!devices.contains(&row.device_id), "{devices:?}");
    refused(
        admin
            .revoke_app_password(authed(
                &mallory.key,
                pb::RevokeAppPasswordRequest {
                    tenant_id: mallory.id.clone(),
                    app_password_id: row.app_password_id.clone(),
                },
            ))
            .await,
        Code::NotFound,
        "app password",
    );

    // Revoking the device, or the binding, voids a password as well.
    let second = make(&mut admin, &alice, &account, &msisdn, "iPad")
        .await
        .unwrap()
        .into_inner();
    let second_login = Login {
        password: &second.password,
        phone: "ApplDMPXYZ",
        ..good
    };
    check(&mut internal, &second_login).await.unwrap();
    admin
        .revoke_device(authed(
            &alice.key,
            pb::RevokeDeviceRequest {
                tenant_id: alice.id.clone(),
                device_id: second.app_password.unwrap().device_id,
            },
        ))
        .await
        .unwrap();
    refused(
        check(&mut internal, &second_login).await,
        Code::Unauthenticated,
        "app password refused",
    );
    platform.finish(vec![replica]).await;
}

#[tokio::test]
async fn app_password_guessing_is_locked_out_per_address_and_peer() {
    let platform = Platform::new().await;
    let mut config = platform.config();
    config.app_passwords.max_failures = 3;
    let replica = platform.replica_with(config).await;
    let mut admin = replica.admin().await;
    let mut internal = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let mut events = platform.events(&alice.id).await;
    let address = format!("{}@corp.example", unique("alice"));
    let account = account(&mut admin, &alice, &address).await;
    let msisdn = number();
    let binding = bind(&mut admin, &mut events, &alice, &account, &msisdn).await;
    let made = make(&mut admin, &alice, &account, &msisdn, "phone")
        .await
        .unwrap()
        .into_inner();
    let good = Login {
        username: &address,
        password: &made.password,
        peer: "198.51.100.20",
        phone: "phone-1",
    };
    for peer in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        refused(
            check(
                &mut internal,
                &Login {
                    password: "zzzz-zzzz-zzzz-zzzz",
                    peer,
                    ..good
                },
            )
            .await,
            Code::Unauthenticated,
            "refused",
        );
    }
    // That guess has spent its budget (the address with the password's
    // first group): from a fresh peer it waits, and says how long...
    let status = check(
        &mut internal,
        &Login {
            password: "zzzz-zzzz-zzzz-zzzz",
            peer: "203.0.113.4",
            ..good
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let wait: u64 = status
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait > 0 && wait <= 900, "{wait}");
    // ...while the phone, whose password starts otherwise, is not locked
    // out by a stranger who knows its address.
    check(&mut internal, &good).await.unwrap();
    // A peer that spent its own budget waits whatever it tries.
    let spent = Login {
        password: "yyyy-yyyy-yyyy-yyyy",
        peer: "203.0.113.50",
        ..good
    };
    for _ in 0..3 {
        refused(
            check(&mut internal, &spent).await,
            Code::Unauthenticated,
            "refused",
        );
    }
    let status = check(
        &mut internal,
        &Login {
            password: "xxxx-xxxx-xxxx-xxxx",
            ..spent
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // A revoked binding voids the password (checked on a fresh replica,
    // whose budgets are its own).
    let other = platform.replica().await;
    let mut other_internal = other.internal().await;
    check(&mut other_internal, &good).await.unwrap();
    admin
        .revoke_binding(authed(
            &alice.key,
            pb::RevokeBindingRequest {
                tenant_id: alice.id.clone(),
                binding_id: binding.binding_id.clone(),
            },
        ))
        .await
        .unwrap();
    refused(
        check(&mut other_internal, &good).await,
        Code::Unauthenticated,
        "app password refused",
    );
    platform.finish(vec![replica, other]).await;
}

async fn order_wipe(
    admin: &mut AdminServiceClient<Channel>,
    tenant: &TestTenant,
    id: &str,
    kind: pb::WipeKind,
) -> Result<tonic::Response<pb::AppPassword>, Status> {
    admin
        .wipe_app_password(authed(
            &tenant.key,
            pb::WipeAppPasswordRequest {
                tenant_id: tenant.id.clone(),
                app_password_id: id.to_owned(),
                kind: kind.into(),
            },
        ))
        .await
}

#[tokio::test]
async fn a_remote_wipe_waits_for_the_phone_and_its_acknowledgement_revokes() {
    let platform = Platform::new().await;
    let replica = platform.replica().await;
    let mut admin = replica.admin().await;
    let mut internal = replica.internal().await;
    let alice = tenant(&mut admin, 10).await;
    let mallory = tenant(&mut admin, 10).await;
    let mut events = platform.events(&alice.id).await;
    let address = format!("{}@corp.example", unique("lost"));
    let account = account(&mut admin, &alice, &address).await;
    let msisdn = number();
    bind(&mut admin, &mut events, &alice, &account, &msisdn).await;
    let made = make(&mut admin, &alice, &account, &msisdn, "lost phone")
        .await
        .unwrap()
        .into_inner();
    let id = made.app_password.unwrap().app_password_id;
    let phone = Login {
        username: &address,
        password: &made.password,
        peer: "198.51.100.30",
        phone: "lost-phone",
    };
    let before = check(&mut internal, &phone).await.unwrap().into_inner();
    assert_eq!(before.wipe(), pb::WipeKind::Unspecified);

    // Only the tenant orders it, and it must say what to erase.
    refused(
        order_wipe(&mut admin, &mallory, &id, pb::WipeKind::Device).await,
        Code::NotFound,
        "app password",
    );
    refused(
        order_wipe(&mut admin, &alice, &id, pb::WipeKind::Unspecified).await,
        Code::InvalidArgument,
        "kind",
    );
    let ordered = order_wipe(&mut admin, &alice, &id, pb::WipeKind::Account)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ordered.wipe(), pb::WipeKind::Account);
    assert!(ordered.wipe_ordered_at.is_some() && ordered.wipe_done_at.is_none());
    let escalated = order_wipe(&mut admin, &alice, &id, pb::WipeKind::Device)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (escalated.wipe(), escalated.wipe_ordered_at),
        (pb::WipeKind::Device, ordered.wipe_ordered_at),
        "the kind changes; the first order's time stands"
    );

    // The phone still logs in, told of the wipe.
    let told = check(&mut internal, &phone).await.unwrap().into_inner();
    assert_eq!(told.wipe(), pb::WipeKind::Device);

    // The acknowledgement is the activesync service's alone.
    let acknowledgement = pb::AcknowledgeWipeRequest {
        tenant_id: alice.id.clone(),
        app_password_id: id.clone(),
        kind: pb::WipeKind::Device.into(),
    };
    refused(
        internal
            .acknowledge_wipe(as_service(Service::Dispatch, acknowledgement.clone()))
            .await,
        Code::PermissionDenied,
        "",
    );
    for _ in 0..2 {
        internal
            .acknowledge_wipe(as_service(Service::ActiveSync, acknowledgement.clone()))
            .await
            .expect("acknowledged (twice: a phone may repeat itself)");
    }
    refused(
        check(&mut internal, &phone).await,
        Code::Unauthenticated,
        "refused",
    );
    let after = listed(&mut admin, &alice, &account).await;
    assert_eq!(after.len(), 1);
    assert!(after[0].wipe_done_at.is_some() && after[0].revoked_at.is_some());
    // Its device went with it: dispatch no longer sees it.
    let devices: Vec<String> = targets(&replica, &alice, &account)
        .await
        .into_iter()
        .map(|t| t.device_id)
        .collect();
    assert!(!devices.contains(&after[0].device_id), "{devices:?}");
    refused(
        order_wipe(&mut admin, &alice, &id, pb::WipeKind::Device).await,
        Code::FailedPrecondition,
        "revoked",
    );

    // A password with no wipe ordered cannot be "acknowledged" away.
    let other = make(&mut admin, &alice, &account, &msisdn, "tablet")
        .await
        .unwrap()
        .into_inner();
    refused(
        internal
            .acknowledge_wipe(as_service(
                Service::ActiveSync,
                pb::AcknowledgeWipeRequest {
                    tenant_id: alice.id.clone(),
                    app_password_id: other.app_password.unwrap().app_password_id,
                    kind: pb::WipeKind::Device.into(),
                },
            ))
            .await,
        Code::FailedPrecondition,
        "no wipe",
    );
}
