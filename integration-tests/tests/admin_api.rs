//! The gateway's REST admin API against a real binding (PostgreSQL, Redis,
//! the broker): a tenant's whole onboarding flow over HTTP, every route
//! refused to another tenant's key with nothing changed, operators, portal
//! sessions, rate limits, request ids, bad input, and the OpenAPI document
//! matching the routes. Every answer the tests get is validated against
//! the schema the gateway's own OpenAPI document declares for its route,
//! method and status, errors included.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

use std::net::SocketAddr;
use std::sync::Arc;

use pushmail_common::bus;
use pushmail_integration_tests::http::{self, Response};
use pushmail_integration_tests::nodes::BindingNode;
use pushmail_integration_tests::topics::TenantTopics;
use pushmail_integration_tests::{OPERATOR_TOKEN, edge, kafka_bus, otp_code, unique};
use pushmail_proto::events::v1 as events;
use pushmail_proto::events::v1::{SmsOutbound, sms_outbound};
use pushmail_proto::topics::{DELIVERY, SMS_OUTBOUND};
use serde_json::{Value, json};

/// The gateway's OpenAPI document as a contract: what each answer's body
/// must be, by route, method and status.
mod contract {
    use serde_json::{Value, json};

    use super::Response;

    pub(super) struct Contract {
        doc: Value,
    }

    impl Contract {
        pub(super) async fn of(at: std::net::SocketAddr) -> Self {
            let r = super::http::get(at, "/api/v1/openapi.json", &[])
                .await
                .unwrap();
            assert_eq!(r.status, 200, "{}", r.text());
            Self { doc: r.json() }
        }

        /// The documented route a concrete path (query string aside) is
        /// an instance of: the one matching with the most literal segments.
        pub(super) fn route_of(&self, path: &str) -> Option<String> {
            let path = path.split('?').next().unwrap_or_default();
            let segments: Vec<&str> = path.split('/').collect();
            self.doc["paths"]
                .as_object()?
                .keys()
                .filter_map(|template| {
                    let parts: Vec<&str> = template.split('/').collect();
                    if parts.len() != segments.len() {
                        return None;
                    }
                    let mut literal = 0;
                    for (part, segment) in parts.iter().zip(&segments) {
                        if part.starts_with('{') {
                            continue;
                        }
                        if part != segment {
                            return None;
                        }
                        literal += 1;
                    }
                    Some((literal, template.clone()))
                })
                .max()
                .map(|(_, template)| template)
        }

        /// The schema the document declares for an answer, as a JSON
        /// Schema that resolves the document's `$ref`s, or why there is
        /// none. The document lists the fields each body has; one the
        /// answer has beyond them is drift too, so objects are closed
        /// (`unevaluatedProperties`, which sees through `allOf`).
        pub(super) fn schema(
            &self,
            method: &str,
            route: &str,
            status: u16,
        ) -> Result<Value, String> {
            let operation = &self.doc["paths"][route][method.to_ascii_lowercase()];
            if !operation.is_object() {
                return Err(format!("{method} {route} is not documented"));
            }
            let answer = &operation["responses"][status.to_string()];
            if !answer.is_object() {
                return Err(format!(
                    "{method} {route}: status {status} is not documented"
                ));
            }
            let mut components = self.doc["components"]["schemas"].clone();
            close_all(&mut components);
            let mut schema = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": {"schemas": components},
            });
            match answer["content"]["application/json"]["schema"].clone() {
                Value::Null => {
                    schema["maxLength"] = json!(0);
                    schema["type"] = json!("string");
                }
                mut body => {
                    close(&mut body, false, &self.doc["components"]["schemas"]);
                    schema["allOf"] = json!([body]);
                }
            }
            Ok(schema)
        }

        /// Fails the test unless `r` is what the document says `method
        /// path` answers with its status.
        pub(super) fn check(&self, method: &str, path: &str, r: &Response) {
            let Some(route) = self.route_of(path) else {
                // Not an API route (the fallback): the error body alone.
                assert_eq!(r.status, 404, "{method} {path}");
                let errors = self.errors("ErrorBody", &r.json());
                assert!(errors.is_empty(), "{method} {path}: {errors:?}");
                return;
            };
            let schema = self
                .schema(method, &route, r.status)
                .unwrap_or_else(|e| panic!("{e}: {}", r.text()));
            let instance = if r.body.is_empty() {
                Value::String(String::new())
            } else {
                r.json()
            };
            let errors = validate(&schema, &instance);
            assert!(
                errors.is_empty(),
                "{method} {path} ({route}) {}: {errors:?}\n{}",
                r.status,
                r.text()
            );
        }

        /// What is wrong with `body` as the component schema `name`.
        pub(super) fn errors(&self, name: &str, body: &Value) -> Vec<String> {
            let mut components = self.doc["components"]["schemas"].clone();
            close_all(&mut components);
            let schema = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "components": {"schemas": components},
                "$ref": format!("#/components/schemas/{name}"),
            });
            validate(&schema, body)
        }
    }

    /// Closes each component schema.
    fn close_all(components: &mut Value) {
        let open = components.clone();
        if let Value::Object(schemas) = components {
            for schema in schemas.values_mut() {
                close(schema, false, &open);
            }
        }
    }

    fn validate(schema: &Value, instance: &Value) -> Vec<String> {
        let validator = jsonschema::validator_for(schema)
            .unwrap_or_else(|e| panic!("the document's schema does not compile: {e}"));
        validator
            .iter_errors(instance)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect()
    }

    /// Closes every object schema with declared properties. Where objects
    /// are composed (`allOf`) the composition is closed, not its parts: a
    /// part sees only its own properties. A part named by `$ref` is
    /// inlined open for that reason, as the component stays closed where
    /// it is used alone.
    fn close(schema: &mut Value, open: bool, components: &Value) {
        let Value::Object(map) = schema else {
            if let Value::Array(items) = schema {
                items.iter_mut().for_each(|s| close(s, false, components));
            }
            return;
        };
        let composed = map.contains_key("allOf");
        if let Some(Value::Array(parts)) = map.get_mut("allOf") {
            for part in parts.iter_mut() {
                let named = part["$ref"]
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    .map(|name| components[name].clone());
                if let Some(named) = named {
                    *part = named;
                }
                close(part, true, components);
            }
        }
        let closable = composed || map.contains_key("properties");
        if closable
            && !open
            && !map.contains_key("additionalProperties")
            && !map.contains_key("unevaluatedProperties")
        {
            map.insert("unevaluatedProperties".to_owned(), Value::Bool(false));
        }
        for (key, value) in map.iter_mut() {
            if key != "allOf" {
                close(value, false, components);
            }
        }
    }
}

use contract::Contract;

struct Client {
    at: SocketAddr,
    auth: String,
    contract: Arc<Contract>,
}

impl Client {
    async fn new(at: SocketAddr, key: &str) -> Self {
        Self::with(Arc::new(Contract::of(at).await), at, key)
    }

    fn with(contract: Arc<Contract>, at: SocketAddr, key: &str) -> Self {
        Self {
            at,
            auth: format!("Bearer {key}"),
            contract,
        }
    }

    /// Sends a request; its answer must be what the document says.
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Response {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut headers = vec![("Authorization", self.auth.as_str())];
        if !body.is_empty() {
            headers.push(("Content-Type", "application/json"));
        }
        let r = http::call(self.at, method, path, &headers, body.as_bytes())
            .await
            .unwrap();
        self.contract.check(method, path, &r);
        r
    }
}

fn code(r: &Response) -> String {
    r.json()["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn code_sent_to(watch: &mut TenantTopics, msisdn: &str) -> String {
    loop {
        let sms: SmsOutbound = watch.next(SMS_OUTBOUND).await.unwrap();
        if let (true, Some(sms_outbound::Body::Text(text))) = (sms.msisdn == msisdn, sms.body) {
            return otp_code(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn a_tenant_onboards_over_rest_and_another_tenant_touches_none_of_it() {
    let mut binding = BindingNode::start().await.unwrap();
    let a = binding.tenant().await.unwrap();
    let b = binding.tenant().await.unwrap();
    let gateway = edge::gateway(edge::gateway_config(binding.addr, binding.addr))
        .await
        .unwrap();
    edge::serving(gateway.addr).await;
    let alice = Client::new(gateway.addr, &a.api_key).await;
    let mallory = Client::new(gateway.addr, &b.api_key).await;
    let t = format!("/api/v1/tenants/{}", a.tenant_id);
    let bus = kafka_bus().await.unwrap();
    let mut watch = TenantTopics::on(&bus, &a.tenant_id, &[SMS_OUTBOUND.name()])
        .await
        .unwrap();

    // Who am I; an account; search; one account.
    let me = alice.send("GET", "/api/v1/me", None).await;
    assert_eq!(
        me.json(),
        json!({"role": "tenant", "tenant_id": a.tenant_id, "sms_outbox": false})
    );
    let address = format!("{}@corp.example", unique("li"));
    let created = alice
        .send(
            "POST",
            &format!("{t}/accounts"),
            Some(json!({"address": address, "kind": "external_imap", "password": "s3cret-pw",
                "server": {"host": "imap.corp.example", "port": 993, "tls": "implicit", "username": address}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert!(
        !created.text().contains("s3cret-pw"),
        "a password never comes back"
    );
    let account = created.json();
    assert_eq!(account["kind"], "external_imap");
    assert_eq!(account["has_credentials"], true);
    assert_eq!(account["server"]["tls"], "implicit");
    let account_id = account["id"].as_str().unwrap().to_owned();
    let found = alice
        .send("GET", &format!("{t}/accounts?query=li-&page_size=10"), None)
        .await;
    assert_eq!(found.status, 200, "{}", found.text());
    assert!(
        found.json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == account_id)
    );
    let one = alice
        .send("GET", &format!("{t}/accounts/{account_id}"), None)
        .await;
    assert_eq!(one.json()["address"], address.as_str());
    assert!(one.header("x-request-id").is_some_and(|id| !id.is_empty()));

    // Bind a number with the code from the SMS topic; preferences.
    let msisdn = pushmail_integration_tests::msisdn();
    let started = alice
        .send(
            "POST",
            &format!("{t}/accounts/{account_id}/bindings"),
            Some(json!({"msisdn": msisdn})),
        )
        .await;
    assert_eq!(started.status, 201, "{}", started.text());
    assert_eq!(started.json()["state"], "pending");
    let binding_id = started.json()["id"].as_str().unwrap().to_owned();
    let otp = code_sent_to(&mut watch, &msisdn).await;
    assert!(!started.text().contains(&otp), "the code goes by SMS only");
    let wrong = alice
        .send(
            "POST",
            &format!("{t}/bindings/{binding_id}/verify"),
            Some(json!({"code": "000000x"})),
        )
        .await;
    assert!(
        wrong.status >= 400 && wrong.status < 500,
        "{}",
        wrong.text()
    );
    let verified = alice
        .send(
            "POST",
            &format!("{t}/bindings/{binding_id}/verify"),
            Some(json!({"code": otp})),
        )
        .await;
    assert_eq!(
        (verified.status, verified.json()["state"].as_str()),
        (200, Some("verified")),
        "{}",
        verified.text()
    );
    let bindings = alice
        .send("GET", &format!("{t}/accounts/{account_id}/bindings"), None)
        .await;
    assert_eq!(bindings.json()["items"][0]["msisdn"], msisdn.as_str());
    let preferences = json!({"content_level": "subject_sender", "max_push_bytes": 2048, "attachments": false,
        "quiet_hours": {"start_minute": 1320, "end_minute": 420, "time_zone": "Asia/Shanghai"},
        "black_list": ["@spam.example"], "white_list": [], "signature": "sent from my phone"});
    let put = alice
        .send(
            "PUT",
            &format!("{t}/bindings/{binding_id}/preferences"),
            Some(preferences),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let got = alice
        .send(
            "GET",
            &format!("{t}/bindings/{binding_id}/preferences"),
            None,
        )
        .await
        .json();
    assert_eq!(got["content_level"], "subject_sender");
    assert_eq!(got["quiet_hours"]["time_zone"], "Asia/Shanghai");
    assert_eq!(got["black_list"], json!(["@spam.example"]));

    // A phone on the number, registered over REST: its token shown once;
    // a fresh token on request; listed with its presence (unknown here: no
    // session node), never with a token.
    let registered = alice
        .send(
            "POST",
            &format!("{t}/devices"),
            Some(json!({"msisdn": msisdn, "label": "li's phone"})),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    let registered = registered.json();
    let device_id = registered["device"]["id"].as_str().unwrap().to_owned();
    let first_token = registered["token"].as_str().unwrap().to_owned();
    assert!(first_token.starts_with("pmd1."), "{registered}");
    assert_eq!(registered["device"]["has_push_client"], true);
    assert!(registered["token_expires_at_ms"].as_i64().unwrap() > 0);
    let reissued = alice
        .send("POST", &format!("{t}/devices/{device_id}/token"), None)
        .await;
    assert_eq!(reissued.status, 200, "{}", reissued.text());
    let second_token = reissued.json()["token"].as_str().unwrap().to_owned();
    assert!(second_token.starts_with("pmd1.") && second_token != first_token);
    let unverified = alice
        .send(
            "POST",
            &format!("{t}/devices"),
            Some(json!({"msisdn": pushmail_integration_tests::msisdn()})),
        )
        .await;
    assert!(
        (400..500).contains(&unverified.status),
        "a phone only on a number verified here: {}",
        unverified.text()
    );
    let on_number = format!("{t}/devices?msisdn={}", msisdn.replace('+', "%2B"));
    let devices = alice.send("GET", &on_number, None).await;
    assert_eq!(devices.status, 200, "{}", devices.text());
    assert_eq!(devices.json()["items"][0]["id"], device_id.as_str());
    assert_eq!(devices.json()["items"][0]["online"], Value::Null);
    for token in [&first_token, &second_token] {
        assert!(
            !devices.text().contains(token.as_str()),
            "no device token in listings"
        );
    }

    // The mailbox moves and its password changes, checked as at creation.
    let moved = alice
        .send(
            "PATCH",
            &format!("{t}/accounts/{account_id}"),
            Some(json!({"password": "n3w-s3cret",
                "server": {"host": "imap2.corp.example", "port": 143, "tls": "starttls", "username": "li"}})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text());
    assert!(!moved.text().contains("n3w-s3cret"));
    assert_eq!(moved.json()["server"]["host"], "imap2.corp.example");
    assert_eq!(moved.json()["server"]["tls"], "starttls");
    for (body, why) in [
        (json!({}), "nothing to change"),
        (json!({"password": "x", "colour": "red"}), "unknown field"),
        (
            json!({"server": {"host": "10.1.2.3", "port": 143, "tls": "none", "username": "li"}}),
            "server.host",
        ),
    ] {
        let refused = alice
            .send("PATCH", &format!("{t}/accounts/{account_id}"), Some(body))
            .await;
        assert_eq!(refused.status, 400, "{why}: {}", refused.text());
        assert!(refused.text().contains(why), "{why}: {}", refused.text());
    }

    // Submission settings: given at creation, replaced, removed, read
    // back; refused for a forwarded account and on an internal network.
    let sender = format!("{}@corp.example", unique("sender"));
    let created = alice
        .send(
            "POST",
            &format!("{t}/accounts"),
            Some(json!({"address": sender, "kind": "external_pop3", "password": "s3cret-pw",
                "server": {"host": "pop.corp.example", "port": 995, "tls": "implicit", "username": sender},
                "submission": {"host": "smtp.corp.example", "port": 587, "tls": "starttls", "username": ""}})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let sender_id = created.json()["id"].as_str().unwrap().to_owned();
    let sender_path = format!("{t}/accounts/{sender_id}");
    assert_eq!(
        alice.send("GET", &sender_path, None).await.json()["submission"],
        json!({"host": "smtp.corp.example", "port": 587, "tls": "starttls", "username": ""})
    );
    let replaced = alice
        .send(
            "PATCH",
            &sender_path,
            Some(json!({"submission": {"host": "smtp2.corp.example", "port": 465, "tls": "implicit", "username": "li"}})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.text());
    let read = alice.send("GET", &sender_path, None).await.json();
    assert_eq!(
        read["submission"],
        json!({"host": "smtp2.corp.example", "port": 465, "tls": "implicit", "username": "li"})
    );
    assert_eq!(
        read["server"]["host"], "pop.corp.example",
        "the server stays"
    );
    for (body, why) in [
        (
            json!({"submission": {"host": "smtp.corp.example", "port": 587, "tls": "starttls", "username": ""},
                "clear_submission": true}),
            "clear_submission",
        ),
        (
            json!({"submission": {"host": "192.168.1.1", "port": 587, "tls": "starttls", "username": ""}}),
            "submission.host",
        ),
        (
            json!({"submission": {"host": "smtp.corp.example", "port": 0, "tls": "starttls", "username": ""}}),
            "submission.port",
        ),
    ] {
        let refused = alice.send("PATCH", &sender_path, Some(body)).await;
        assert_eq!(refused.status, 400, "{why}: {}", refused.text());
        assert!(refused.text().contains(why), "{why}: {}", refused.text());
    }
    let cleared = alice
        .send(
            "PATCH",
            &sender_path,
            Some(json!({"clear_submission": true})),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text());
    assert_eq!(
        alice.send("GET", &sender_path, None).await.json()["submission"],
        Value::Null
    );
    let forwarded = alice
        .send(
            "POST",
            &format!("{t}/accounts"),
            Some(json!({"address": format!("{}@corp.example", unique("fwd")), "kind": "enterprise_forwarded",
                "submission": {"host": "smtp.corp.example", "port": 587, "tls": "starttls", "username": ""}})),
        )
        .await;
    assert_eq!(forwarded.status, 400, "{}", forwarded.text());
    assert!(
        forwarded.text().contains("submission"),
        "{}",
        forwarded.text()
    );
    // No SMS outbox on this platform (an SMS centre's job): not there.
    let none = alice.send("GET", &format!("{t}/sms"), None).await;
    assert_eq!((none.status, code(&none).as_str()), (404, "not_found"));
    // Receipts on the delivery topic land in the account's log, once each;
    // one naming another tenant is not logged under this account.
    let receipt = |tenant: &str, event: &str, status: events::DeliveryStatus, at_s: i64| {
        let receipt = events::DeliveryReceipt {
            meta: Some(pushmail_proto::common::v1::EventMeta {
                event_id: event.to_owned(),
                tenant_id: tenant.to_owned(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: at_s,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            device_id: device_id.clone(),
            account_id: account_id.clone(),
            idempotency_key: "INBOX/7/42".to_owned(),
            channel: events::DeliveryChannel::HeldConnection.into(),
            status: status.into(),
            sequence: 42,
            ..Default::default()
        };
        let context = bus::EventContext {
            event_id: event.to_owned(),
            tenant_id: tenant.to_owned(),
        };
        bus::encode(DELIVERY, &device_id, &context, &receipt)
    };
    let now_s = jiff::Timestamp::now().as_second();
    let (first, second, foreign) = (unique("ev"), unique("ev"), unique("ev"));
    for record in [
        receipt(
            &a.tenant_id,
            &first,
            events::DeliveryStatus::Queued,
            now_s - 5,
        ),
        receipt(
            &a.tenant_id,
            &second,
            events::DeliveryStatus::Acked,
            now_s - 4,
        ),
        receipt(
            &a.tenant_id,
            &second,
            events::DeliveryStatus::Acked,
            now_s - 4,
        ),
        receipt(
            &b.tenant_id,
            &foreign,
            events::DeliveryStatus::Failed,
            now_s - 3,
        ),
    ] {
        bus.publish(DELIVERY.name(), record).await.unwrap();
    }
    let log_path = format!("{t}/accounts/{account_id}/deliveries");
    let mut log = Value::Null;
    for _ in 0..300 {
        log = alice.send("GET", &log_path, None).await.json();
        if log["items"].as_array().is_some_and(|i| i.len() >= 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{log}");
    assert_eq!(items[0]["status"], "acked", "newest first: {log}");
    assert_eq!(items[0]["channel"], "held_connection");
    assert_eq!(items[1]["status"], "queued");
    assert_eq!(items[1]["at_ms"], (now_s - 5) * 1_000);
    let paged = alice
        .send("GET", &format!("{log_path}?page_size=1"), None)
        .await
        .json();
    let cursor = paged["next_cursor"].as_str().unwrap().to_owned();
    let rest = alice
        .send(
            "GET",
            &format!("{log_path}?page_size=1&cursor={cursor}"),
            None,
        )
        .await
        .json();
    assert_eq!(rest["items"][0]["status"], "queued", "{rest}");
    let bad = alice
        .send("GET", &format!("{log_path}?cursor=nonsense"), None)
        .await;
    assert_eq!(bad.status, 400);

    let traffic = alice
        .send(
            "GET",
            &format!("{t}/traffic?account={account_id}&from=2026-01-01&to=2026-12-31"),
            None,
        )
        .await;
    assert_eq!(
        (traffic.status, traffic.json()["days"].is_array()),
        (200, true),
        "{}",
        traffic.text()
    );

    // Another tenant's key: every route on tenant A's resources refused.
    let bt = format!("/api/v1/tenants/{}", b.tenant_id);
    let keys = alice.send("GET", &format!("{t}/keys"), None).await.json();
    let key_id = keys["items"][0]["id"].as_str().unwrap().to_owned();
    let relay = alice
        .send("POST", &format!("{t}/relay/credentials"), Some(json!({})))
        .await
        .json();
    let relay_id = relay["id"].as_str().unwrap().to_owned();
    // An app password of tenant A, over REST: shown once, never listed.
    let app_path = format!("{t}/accounts/{account_id}/app-passwords");
    let app = alice
        .send(
            "POST",
            &app_path,
            Some(json!({"msisdn": msisdn, "label": "Alice's iPhone"})),
        )
        .await;
    assert_eq!(app.status, 201, "{}", app.text());
    let app = app.json();
    let app_password = app["password"].as_str().unwrap().to_owned();
    assert_eq!(app_password.len(), 19, "{app}");
    let app_id = app["app_password"]["id"].as_str().unwrap().to_owned();
    let apps = alice.send("GET", &app_path, None).await;
    assert_eq!(apps.json()["items"][0]["label"], "Alice's iPhone");
    assert!(!apps.text().contains(&app_password));
    // A remote wipe of its phone: the kind must be one there is.
    let wipe_path = format!("{t}/app-passwords/{app_id}/wipe");
    let vague = alice
        .send("POST", &wipe_path, Some(json!({"kind": "sideways"})))
        .await;
    assert!(matches!(vague.status, 400 | 422), "{}", vague.text());
    let ordered = alice
        .send("POST", &wipe_path, Some(json!({"kind": "account"})))
        .await;
    assert_eq!(ordered.status, 200, "{}", ordered.text());
    let ordered = ordered.json();
    assert_eq!(ordered["wipe"]["kind"], "account", "{ordered}");
    assert!(ordered["wipe"]["done_at_ms"].is_null(), "{ordered}");
    let attempts: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", format!("{t}/accounts"), None),
        (
            "POST",
            format!("{t}/accounts"),
            Some(json!({"address": "x@corp.example", "kind": "webhook"})),
        ),
        ("GET", format!("{t}/accounts/{account_id}"), None),
        (
            "PATCH",
            format!("{t}/accounts/{account_id}"),
            Some(json!({"password": "mallory"})),
        ),
        ("DELETE", format!("{t}/accounts/{account_id}"), None),
        ("GET", format!("{t}/accounts/{account_id}/bindings"), None),
        ("GET", format!("{t}/accounts/{account_id}/deliveries"), None),
        (
            "POST",
            format!("{t}/accounts/{account_id}/bindings"),
            Some(json!({"msisdn": "+8613900000000"})),
        ),
        (
            "POST",
            format!("{t}/bindings/{binding_id}/verify"),
            Some(json!({"code": "123456"})),
        ),
        ("POST", format!("{t}/bindings/{binding_id}/revoke"), None),
        (
            "GET",
            format!("{t}/bindings/{binding_id}/preferences"),
            None,
        ),
        (
            "PUT",
            format!("{t}/bindings/{binding_id}/preferences"),
            Some(json!({"content_level": "notice", "max_push_bytes": 1, "attachments": true})),
        ),
        ("GET", on_number.clone(), None),
        (
            "POST",
            format!("{t}/devices"),
            Some(json!({"msisdn": msisdn})),
        ),
        ("POST", format!("{t}/devices/{device_id}/token"), None),
        ("POST", format!("{t}/devices/{device_id}/revoke"), None),
        ("GET", format!("{t}/sms"), None),
        (
            "GET",
            format!("{t}/traffic?account={account_id}&from=2026-01-01&to=2026-12-31"),
            None,
        ),
        // Tenant A's ids under tenant B's own path.
        ("GET", format!("{bt}/accounts/{account_id}"), None),
        (
            "PATCH",
            format!("{bt}/accounts/{account_id}"),
            Some(json!({"password": "mallory"})),
        ),
        ("DELETE", format!("{bt}/accounts/{account_id}"), None),
        ("POST", format!("{bt}/bindings/{binding_id}/revoke"), None),
        (
            "GET",
            format!("{bt}/bindings/{binding_id}/preferences"),
            None,
        ),
        ("POST", format!("{bt}/devices/{device_id}/token"), None),
        ("POST", format!("{bt}/devices/{device_id}/revoke"), None),
        (
            "POST",
            format!("{bt}/keys/{key_id}/revoke"),
            Some(json!({"confirm_last_key": true})),
        ),
        (
            "POST",
            format!("{bt}/relay/credentials/{relay_id}/revoke"),
            None,
        ),
        (
            "GET",
            format!("{t}/accounts/{account_id}/app-passwords"),
            None,
        ),
        (
            "POST",
            format!("{t}/accounts/{account_id}/app-passwords"),
            Some(json!({"msisdn": msisdn, "label": "mallory"})),
        ),
        ("POST", format!("{t}/app-passwords/{app_id}/revoke"), None),
        ("POST", format!("{bt}/app-passwords/{app_id}/revoke"), None),
        (
            "POST",
            format!("{t}/app-passwords/{app_id}/wipe"),
            Some(json!({"kind": "device"})),
        ),
        (
            "POST",
            format!("{bt}/app-passwords/{app_id}/wipe"),
            Some(json!({"kind": "device"})),
        ),
        // Keys, domains and the relay of tenant A.
        ("GET", format!("{t}/keys"), None),
        ("POST", format!("{t}/keys"), Some(json!({}))),
        (
            "POST",
            format!("{t}/keys/{key_id}/revoke"),
            Some(json!({"confirm_last_key": true})),
        ),
        ("GET", format!("{t}/domains"), None),
        (
            "PUT",
            format!("{t}/domains"),
            Some(json!({"domains": ["evil.example"]})),
        ),
        ("GET", format!("{t}/relay/credentials"), None),
        ("POST", format!("{t}/relay/credentials"), Some(json!({}))),
        (
            "POST",
            format!("{t}/relay/credentials/{relay_id}/revoke"),
            None,
        ),
        ("GET", format!("{t}/relay/policy"), None),
        (
            "PUT",
            format!("{t}/relay/policy"),
            Some(json!({"allowed_sources": ["0.0.0.0/0"]})),
        ),
        ("GET", format!("{t}/relay/submission"), None),
        (
            "PUT",
            format!("{t}/relay/submission"),
            Some(json!({"server": {"host": "smtp.evil.example", "port": 587,
                "tls": "starttls", "username": "mallory"}, "password": "x"})),
        ),
        ("DELETE", format!("{t}/relay/submission"), None),
        (
            "POST",
            "/api/v1/tenants".to_owned(),
            Some(json!({"name": "evil", "max_accounts": 1, "sms_per_day": 1})),
        ),
    ];
    let documented_tenant_routes = pushmail_gateway::api::ROUTES
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/tenants/"))
        .count();
    assert_eq!(
        documented_tenant_routes, 35,
        "a new route needs its cross-tenant case here"
    );
    for (method, path, body) in attempts {
        let r = mallory.send(method, &path, body).await;
        assert!(
            matches!(r.status, 403 | 404),
            "{method} {path}: {} {}",
            r.status,
            r.text()
        );
        assert!(
            !r.text().contains(&address),
            "{method} {path} leaked: {}",
            r.text()
        );
    }
    // Nothing of A's changed.
    assert_eq!(
        alice
            .send("GET", &format!("{t}/accounts/{account_id}"), None)
            .await
            .status,
        200
    );
    let still = alice
        .send("GET", &format!("{t}/accounts/{account_id}/bindings"), None)
        .await
        .json();
    assert_eq!(still["items"][0]["state"], "verified");
    let prefs = alice
        .send(
            "GET",
            &format!("{t}/bindings/{binding_id}/preferences"),
            None,
        )
        .await
        .json();
    assert_eq!(prefs["content_level"], "subject_sender");
    let devices = alice.send("GET", &on_number, None).await.json();
    assert_eq!(devices["items"][0]["revoked"], false);
    let kept = alice
        .send("GET", &format!("{t}/accounts/{account_id}"), None)
        .await
        .json();
    assert_eq!(kept["server"]["host"], "imap2.corp.example");
    let keys = alice.send("GET", &format!("{t}/keys"), None).await.json();
    assert_eq!(
        (
            keys["items"].as_array().unwrap().len(),
            &keys["items"][0]["active"]
        ),
        (1, &json!(true)),
        "{keys}"
    );
    let relays = alice
        .send("GET", &format!("{t}/relay/credentials"), None)
        .await
        .json();
    assert!(relays["items"][0]["revoked_at_ms"].is_null(), "{relays}");
    let policy = alice
        .send("GET", &format!("{t}/relay/policy"), None)
        .await
        .json();
    assert_eq!(policy["allowed_sources"], json!([]));

    // An operator sees across tenants and creates them; a tenant cannot.
    let operator = Client::new(gateway.addr, OPERATOR_TOKEN).await;
    assert_eq!(
        operator.send("GET", "/api/v1/me", None).await.json()["role"],
        "operator"
    );
    assert_eq!(
        operator
            .send("GET", &format!("{t}/accounts/{account_id}"), None)
            .await
            .status,
        200
    );
    assert_eq!(operator.send("GET", "/api/v1/sms", None).await.status, 404);
    let tenant = operator
        .send(
            "POST",
            "/api/v1/tenants",
            Some(json!({"name": unique("acme"), "max_accounts": 5, "sms_per_day": 10})),
        )
        .await;
    assert_eq!(tenant.status, 201, "{}", tenant.text());
    assert!(
        tenant.json()["api_key"]
            .as_str()
            .unwrap()
            .starts_with("pmk_")
    );

    // Revoke, delete: the end of the flow.
    let revoked = alice
        .send("POST", &format!("{t}/devices/{device_id}/revoke"), None)
        .await;
    assert_eq!(revoked.json()["revoked"], true);
    let unbound = alice
        .send("POST", &format!("{t}/bindings/{binding_id}/revoke"), None)
        .await;
    assert_eq!(unbound.json()["state"], "revoked");
    let deleted = alice
        .send("DELETE", &format!("{t}/accounts/{account_id}"), None)
        .await;
    assert_eq!(deleted.status, 204);
    let gone = alice
        .send("GET", &format!("{t}/accounts/{account_id}"), None)
        .await;
    assert_eq!((gone.status, code(&gone).as_str()), (404, "not_found"));

    gateway.stop().await.unwrap();
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_refused_whole_with_a_machine_readable_error() {
    let mut binding = BindingNode::start().await.unwrap();
    let a = binding.tenant().await.unwrap();
    let gateway = edge::gateway(edge::gateway_config(binding.addr, binding.addr))
        .await
        .unwrap();
    edge::serving(gateway.addr).await;
    let alice = Client::new(gateway.addr, &a.api_key).await;
    let accounts = format!("/api/v1/tenants/{}/accounts", a.tenant_id);
    let count = || async {
        alice.send("GET", &accounts, None).await.json()["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count().await;

    let raw = |body: &'static [u8]| {
        let auth = alice.auth.clone();
        let path = accounts.clone();
        let contract = alice.contract.clone();
        async move {
            let r = http::call(
                gateway.addr,
                "POST",
                &path,
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                body,
            )
            .await
            .unwrap();
            contract.check("POST", &path, &r);
            r
        }
    };
    for (body, what) in [
        (&b"{\"address\": "[..], "truncated JSON"),
        (b"not json at all", "not JSON"),
        (b"{\"address\": 42, \"kind\": \"webhook\"}", "a wrong type"),
        (b"{\"address\": \"x@y.example\", \"kind\": \"webhook\", \"admin\": true}", "an unknown field"),
        (b"{\"address\": \"x@y.example\", \"kind\": \"carrier-pigeon\"}", "an unknown kind"),
        (b"{\"address\": \"x@y.example\", \"kind\": \"external_imap\", \"server\": {\"host\": \"h\", \"port\": 1, \"tls\": \"maybe\", \"username\": \"u\"}}", "a bad TLS mode"),
    ] {
        let r = raw(body).await;
        assert_eq!((r.status, code(&r).as_str()), (400, "bad_request"), "{what}: {}", r.text());
    }
    let no_type = http::call(
        gateway.addr,
        "POST",
        &accounts,
        &[("Authorization", &alice.auth)],
        b"{}",
    )
    .await
    .unwrap();
    alice.contract.check("POST", &accounts, &no_type);
    assert_eq!(no_type.status, 400, "{}", no_type.text());
    let huge = format!(
        "{{\"address\": \"{}\", \"kind\": \"webhook\"}}",
        "x".repeat(100_000)
    );
    let r = http::call(
        gateway.addr,
        "POST",
        &accounts,
        &[
            ("Authorization", &alice.auth),
            ("Content-Type", "application/json"),
        ],
        huge.as_bytes(),
    )
    .await
    .unwrap();
    alice.contract.check("POST", &accounts, &r);
    assert_eq!(
        (r.status, code(&r).as_str()),
        (413, "body_too_large"),
        "{}",
        r.text()
    );
    let invalid = alice
        .send(
            "POST",
            &accounts,
            Some(json!({"address": "not an address", "kind": "webhook"})),
        )
        .await;
    assert_eq!(
        invalid.status,
        400,
        "binding's validation: {}",
        invalid.text()
    );
    assert_eq!(count().await, before, "nothing half-applied");

    for query in [
        "page_size=abc",
        "cursor=%%%garbage",
        "colour=red",
        "page_size=-1",
    ] {
        let r = alice
            .send("GET", &format!("{accounts}?{query}"), None)
            .await;
        assert_eq!(
            (r.status, code(&r).as_str()),
            (400, "bad_request"),
            "{query}: {}",
            r.text()
        );
    }
    let r = alice
        .send(
            "GET",
            &format!(
                "/api/v1/tenants/{}/traffic?account=x&from=yesterday&to=2026-12-31",
                a.tenant_id
            ),
            None,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = alice
        .send("GET", "/api/v1/tenants/not-a-uuid/accounts", None)
        .await;
    assert!(matches!(r.status, 400 | 403), "{}", r.text());
    let r = alice.send("GET", "/api/v1/nowhere", None).await;
    assert_eq!((r.status, code(&r).as_str()), (404, "not_found"));

    gateway.stop().await.unwrap();
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn portal_sessions_rate_limits_request_ids_and_the_document() {
    let mut binding = BindingNode::start().await.unwrap();
    let a = binding.tenant().await.unwrap();
    let mut config = edge::gateway_config(binding.addr, binding.addr);
    config.api.requests_per_minute = 60;
    config.api.burst = 40;
    let gateway = edge::gateway(config).await.unwrap();
    edge::serving(gateway.addr).await;
    let at = gateway.addr;
    let contract = Contract::of(at).await;

    // Sign in: a sealed cookie, never the key; it works for reads, and
    // for changes only with the portal header.
    let body = json!({"api_key": a.api_key}).to_string();
    let signed = http::call(
        at,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await
    .unwrap();
    contract.check("POST", "/api/v1/session", &signed);
    assert_eq!(signed.status, 200, "{}", signed.text());
    assert_eq!(signed.json()["tenant_id"], a.tenant_id.as_str());
    let set_cookie = signed.header("set-cookie").unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"),
        "{set_cookie}"
    );
    assert!(!set_cookie.contains(&a.api_key) && !signed.text().contains(&a.api_key));
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let me = http::get(at, "/api/v1/me", &[("Cookie", &cookie)])
        .await
        .unwrap();
    contract.check("GET", "/api/v1/me", &me);
    assert_eq!(me.json()["role"], "tenant");
    let accounts = format!("/api/v1/tenants/{}/accounts", a.tenant_id);
    let new =
        json!({"address": format!("{}@corp.example", unique("s")), "kind": "webhook"}).to_string();
    let forged = http::call(
        at,
        "POST",
        &accounts,
        &[("Cookie", &cookie), ("Content-Type", "application/json")],
        new.as_bytes(),
    )
    .await
    .unwrap();
    contract.check("POST", &accounts, &forged);
    assert_eq!(
        (forged.status, code(&forged).as_str()),
        (403, "forbidden"),
        "{}",
        forged.text()
    );
    let made = http::call(
        at,
        "POST",
        &accounts,
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/json"),
            ("X-Pushmail-Portal", "1"),
        ],
        new.as_bytes(),
    )
    .await
    .unwrap();
    contract.check("POST", &accounts, &made);
    assert_eq!(made.status, 201, "{}", made.text());
    let out = http::call(at, "DELETE", "/api/v1/session", &[("Cookie", &cookie)], b"")
        .await
        .unwrap();
    contract.check("DELETE", "/api/v1/session", &out);
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    let bad = http::call(
        at,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        b"{\"api_key\": \"pmk_wrong\"}",
    )
    .await
    .unwrap();
    contract.check("POST", "/api/v1/session", &bad);
    assert_eq!(
        (bad.status, code(&bad).as_str()),
        (401, "unauthenticated"),
        "{}",
        bad.text()
    );
    let tampered = http::get(at, "/api/v1/me", &[("Cookie", "pm_session=AAAA")])
        .await
        .unwrap();
    contract.check("GET", "/api/v1/me", &tampered);
    assert_eq!(tampered.status, 401);

    // Request ids: the caller's kept, else one made.
    let mine = http::get(
        at,
        "/api/v1/openapi.json",
        &[("X-Request-Id", "trace-me-42")],
    )
    .await
    .unwrap();
    assert_eq!(mine.header("x-request-id"), Some("trace-me-42"));

    // The document lists exactly the routes, and each documented route
    // exists (credentials asked for, not 404/405/501).
    contract.check("GET", "/api/v1/openapi.json", &mine);
    let doc = mine.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, pushmail_gateway::api::ROUTES.len());
    for route in pushmail_gateway::api::ROUTES {
        assert!(
            paths[route.path][route.method.to_ascii_lowercase()].is_object(),
            "{route:?}"
        );
        if route.public {
            continue;
        }
        let path = route
            .path
            .replace("{tenant}", &a.tenant_id)
            .replace("{account}", "0193a1b2-0000-7000-8000-0000000000a1")
            .replace("{binding}", "0193a1b2-0000-7000-8000-0000000000b1")
            .replace("{device}", "0193a1b2-0000-7000-8000-0000000000d1")
            .replace("{key}", "0193a1b2-0000-7000-8000-0000000000e1")
            .replace("{credential}", "0193a1b2-0000-7000-8000-0000000000f1");
        let r = http::call(
            at,
            route.method,
            &path,
            &[("Content-Type", "application/json")],
            b"{}",
        )
        .await
        .unwrap();
        contract.check(route.method, &path, &r);
        assert_eq!(
            (r.status, code(&r).as_str()),
            (401, "unauthenticated"),
            "{} {path}",
            route.method
        );
    }

    // The contract can fail: what differs from the document is refused.
    let account = json!({"id": "0193a1b2-0000-7000-8000-0000000000a1", "tenant_id": a.tenant_id,
        "address": "li@corp.example", "kind": "webhook", "server": null,
        "has_credentials": false, "created_at_ms": 1_767_225_600_000_i64,
        "watched_folders": []});
    assert_eq!(contract.errors("Account", &account), Vec::<String>::new());
    let broken = |change: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut body = account.as_object().unwrap().clone();
        change(&mut body);
        Value::Object(body)
    };
    for (body, what) in [
        (broken(&|b| drop(b.remove("id"))), "a missing field"),
        (
            broken(&|b| drop(b.insert("kind".into(), json!("carrier-pigeon")))),
            "an undocumented value",
        ),
        (
            broken(&|b| drop(b.insert("created_at_ms".into(), json!("soon")))),
            "a wrong type",
        ),
        (
            broken(&|b| drop(b.insert("password".into(), json!("s3cret")))),
            "an undocumented field",
        ),
    ] {
        assert!(
            !contract.errors("Account", &body).is_empty(),
            "{what} passed: {body}"
        );
    }
    assert!(
        !contract
            .errors("ErrorBody", &json!({"error": {"code": 404}}))
            .is_empty()
    );
    // Composed schemas (a key and the key shown once) are closed as a whole.
    let mut key = json!({"id": "k", "prefix": "pmk_0123456789", "description": "", "created_at_ms": 1,
        "expires_at_ms": null, "revoked_at_ms": null, "active": true, "api_key": "pmk_secret"});
    assert_eq!(contract.errors("CreatedApiKey", &key), Vec::<String>::new());
    assert!(
        !contract.errors("ApiKey", &key).is_empty(),
        "the key itself is not listed"
    );
    key["owner"] = json!("mallory");
    assert!(
        !contract.errors("CreatedApiKey", &key).is_empty(),
        "an undocumented field"
    );
    let answer = |status: u16, body: &Value| Response {
        status,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    };
    let one_account = format!("{accounts}/0193a1b2-0000-7000-8000-0000000000a1");
    let not_found = json!({"error": {"code": "not_found", "message": "no such account"}});
    contract.check("GET", &one_account, &answer(200, &account));
    contract.check("GET", &one_account, &answer(404, &not_found));
    for (r, what) in [
        (answer(200, &not_found), "an error body as a 200"),
        (answer(201, &account), "an undocumented status"),
        (answer(404, &account), "an account as an error"),
    ] {
        let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            contract.check("GET", &one_account, &r);
        }));
        assert!(refused.is_err(), "{what} passed");
    }

    // Rate: a burst of 40, then 429 with Retry-After for this key only.
    let alice = Client::new(at, &a.api_key).await;
    let mut limited = None;
    for _ in 0..60 {
        let r = alice.send("GET", "/api/v1/me", None).await;
        if r.status == 429 {
            limited = Some(r);
            break;
        }
    }
    let limited = limited.expect("the rate is enforced");
    assert_eq!(code(&limited), "rate_limited");
    assert!(limited.header("retry-after").is_some());
    let b = binding.tenant().await.unwrap();
    assert_eq!(
        Client::new(at, &b.api_key)
            .await
            .send("GET", "/api/v1/me", None)
            .await
            .status,
        200
    );

    gateway.stop().await.unwrap();
    binding.stop().await.unwrap();
}

#[tokio::test]
async fn keys_rotate_relays_get_credentials_and_code_floods_get_429_over_rest() {
    let mut binding = BindingNode::start().await.unwrap();
    let a = binding.tenant().await.unwrap();
    let gateway = edge::gateway(edge::gateway_config(binding.addr, binding.addr))
        .await
        .unwrap();
    edge::serving(gateway.addr).await;
    let t = format!("/api/v1/tenants/{}", a.tenant_id);
    let first = Client::new(gateway.addr, &a.api_key).await;

    // Keys: list, create (shown once), rotate, refuse the last by accident.
    let keys = first.send("GET", &format!("{t}/keys"), None).await;
    assert_eq!(keys.status, 200, "{}", keys.text());
    let first_id = keys.json()["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(!keys.text().contains(&a.api_key), "never listed");
    let made = first
        .send(
            "POST",
            &format!("{t}/keys"),
            Some(json!({"description": "deploy bot"})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let second_key = made.json()["api_key"].as_str().unwrap().to_owned();
    let second_id = made.json()["id"].as_str().unwrap().to_owned();
    let second = Client::new(gateway.addr, &second_key).await;
    assert_eq!(second.send("GET", "/api/v1/me", None).await.status, 200);
    let revoked = second
        .send(
            "POST",
            &format!("{t}/keys/{first_id}/revoke"),
            Some(json!({"grace_seconds": 0})),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text());
    assert_eq!(revoked.json()["active"], false);
    let old = first.send("GET", "/api/v1/me", None).await;
    assert_eq!((old.status, code(&old).as_str()), (401, "unauthenticated"));
    let last = second
        .send("POST", &format!("{t}/keys/{second_id}/revoke"), None)
        .await;
    assert_eq!(last.status, 409, "{}", last.text());
    assert!(last.text().contains("last working key"), "{}", last.text());

    // Domains: operators only.
    let operator = Client::new(gateway.addr, OPERATOR_TOKEN).await;
    let domains = json!({"domains": [format!("{}.example", unique("rest"))]});
    let denied = second
        .send("PUT", &format!("{t}/domains"), Some(domains.clone()))
        .await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    let set = operator
        .send("PUT", &format!("{t}/domains"), Some(domains.clone()))
        .await;
    assert_eq!(
        (set.status, set.json()),
        (200, domains.clone()),
        "{}",
        set.text()
    );
    assert_eq!(
        second
            .send("GET", &format!("{t}/domains"), None)
            .await
            .json(),
        domains
    );

    // Relay credentials and policy.
    let relay = second
        .send(
            "POST",
            &format!("{t}/relay/credentials"),
            Some(json!({"description": "mx1"})),
        )
        .await;
    assert_eq!(relay.status, 201, "{}", relay.text());
    let password = relay.json()["password"].as_str().unwrap().to_owned();
    let relay_id = relay.json()["id"].as_str().unwrap().to_owned();
    let listed = second
        .send("GET", &format!("{t}/relay/credentials"), None)
        .await;
    assert_eq!(
        listed.json()["items"][0]["username"],
        relay.json()["username"]
    );
    assert!(!listed.text().contains(&password), "never listed");
    let gone = second
        .send(
            "POST",
            &format!("{t}/relay/credentials/{relay_id}/revoke"),
            None,
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert!(gone.json()["revoked_at_ms"].is_i64());
    let policy =
        json!({"allowed_sources": ["203.0.113.0/24"], "client_cert_sha256": ["ab".repeat(32)]});
    let put = second
        .send("PUT", &format!("{t}/relay/policy"), Some(policy.clone()))
        .await;
    assert_eq!(
        (put.status, put.json()),
        (200, policy.clone()),
        "{}",
        put.text()
    );
    let bad = second
        .send(
            "PUT",
            &format!("{t}/relay/policy"),
            Some(json!({"allowed_sources": ["mx.example"]})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert_eq!(
        second
            .send("GET", &format!("{t}/relay/policy"), None)
            .await
            .json(),
        policy
    );
    outbound_relay(&second, &t).await;

    // A resend inside the cooldown: 429 with Retry-After, binding's words.
    let account = second
        .send(
            "POST",
            &format!("{t}/accounts"),
            Some(json!({"address": format!("{}@example.net", unique("otp")), "kind": "webhook"})),
        )
        .await
        .json();
    // A webhook account has no folders to watch: refused, naming the field.
    let folders = second
        .send(
            "PATCH",
            &format!("{t}/accounts/{}", account["id"].as_str().unwrap()),
            Some(json!({"watched_folders": ["Work"]})),
        )
        .await;
    assert_eq!(folders.status, 400, "{}", folders.text());
    assert!(
        folders.text().contains("watched_folders"),
        "{}",
        folders.text()
    );
    let bindings = format!("{t}/accounts/{}/bindings", account["id"].as_str().unwrap());
    let msisdn = pushmail_integration_tests::msisdn();
    let sent = second
        .send("POST", &bindings, Some(json!({"msisdn": msisdn})))
        .await;
    assert_eq!(sent.status, 201, "{}", sent.text());
    let flood = second
        .send("POST", &bindings, Some(json!({"msisdn": msisdn})))
        .await;
    assert_eq!(flood.status, 429, "{}", flood.text());
    let wait: u64 = flood.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert!(flood.text().contains("msisdn"), "{}", flood.text());

    gateway.stop().await.unwrap();
    binding.stop().await.unwrap();
}

/// The outbound relay over REST: none at first, set (the password never
/// shown), a first relay without a password refused, removed.
async fn outbound_relay(client: &Client, t: &str) {
    let path = format!("{t}/relay/submission");
    let none = client.send("GET", &path, None).await;
    assert_eq!((none.status, none.json()), (200, json!({"server": null})));
    let server = json!({"host": "smtp.corp.example", "port": 587, "tls": "starttls",
        "username": "relay-user"});
    let refused = client
        .send("PUT", &path, Some(json!({"server": server.clone()})))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("credentials.password"),
        "{}",
        refused.text()
    );
    let set = client
        .send(
            "PUT",
            &path,
            Some(json!({"server": server.clone(), "password": "relay-secret"})),
        )
        .await;
    assert_eq!(
        (set.status, set.json()),
        (200, json!({"server": server.clone()})),
        "{}",
        set.text()
    );
    let shown = client.send("GET", &path, None).await;
    assert_eq!(shown.json(), json!({"server": server}));
    assert!(!shown.text().contains("relay-secret"));
    let removed = client.send("DELETE", &path, None).await;
    assert_eq!(
        (removed.status, removed.json()),
        (200, json!({"server": null}))
    );
}
