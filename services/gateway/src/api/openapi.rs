//! The OpenAPI 3.1 document, built from [`super::ROUTES`] (the table the
//! router is built from) and the schemas of the JSON the handlers write.

use serde_json::{Map, Value, json};

use super::ROUTES;

/// The schemas of keys, domains and the SMTP relay (apart: one `json!`
/// of every schema passes the macro's recursion limit).
fn tenancy_schemas() -> Value {
    let id = json!({"type": "string", "format": "uuid"});
    json!({
        "ApiKey": {"type": "object", "properties": {"id": id, "prefix": {"type": "string"}, "description": {"type": "string"},
            "created_at_ms": {"type": "integer"}, "expires_at_ms": {"type": ["integer", "null"]},
            "revoked_at_ms": {"type": ["integer", "null"]}, "active": {"type": "boolean"}}},
        "ApiKeyList": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/ApiKey"}}}},
        "NewApiKey": {"type": "object", "additionalProperties": false, "properties": {"description": {"type": "string"},
            "ttl_seconds": {"type": "integer", "description": "0: until revoked"}}},
        "CreatedApiKey": {"allOf": [{"$ref": "#/components/schemas/ApiKey"}, {"type": "object",
            "properties": {"api_key": {"type": "string", "description": "shown once"}}}]},
        "RevokeApiKey": {"type": "object", "additionalProperties": false, "properties": {
            "grace_seconds": {"type": "integer", "description": "the key works this long more (at most 30 days); 0: stops at once"},
            "confirm_last_key": {"type": "boolean", "description": "required to revoke the tenant's last working key"}}},
        "Domains": {"type": "object", "required": ["domains"], "additionalProperties": false,
            "properties": {"domains": {"type": "array", "items": {"type": "string"}}}},
        "RelayCredential": {"type": "object", "properties": {"id": id, "username": {"type": "string"}, "description": {"type": "string"},
            "created_at_ms": {"type": "integer"}, "revoked_at_ms": {"type": ["integer", "null"]}}},
        "RelayCredentialList": {"type": "object", "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/RelayCredential"}}}},
        "NewRelayCredential": {"type": "object", "additionalProperties": false, "properties": {"description": {"type": "string"}}},
        "CreatedRelayCredential": {"type": "object", "properties": {"id": id, "username": {"type": "string"},
            "password": {"type": "string", "description": "shown once"}}},
        "RelayPolicy": {"type": "object", "additionalProperties": false, "properties": {
            "allowed_sources": {"type": "array", "items": {"type": "string"}, "description": "CIDRs or addresses"},
            "client_cert_sha256": {"type": "array", "items": {"type": "string"}, "description": "64 hex digits each"}}},
        "CreatedTenant": {"type": "object", "properties": {"tenant_id": id, "api_key": {"type": "string", "description": "shown once"}}},
    })
}

/// The schemas of a phone's lifecycle, account changes and the SMS outbox.
fn lifecycle_schemas() -> Value {
    let id = json!({"type": "string", "format": "uuid"});
    json!({
        "AccountChange": {"type": "object", "additionalProperties": false,
            "description": "at least one of server and password",
            "properties": {"server": {"$ref": "#/components/schemas/Server"},
                "password": {"type": "string", "writeOnly": true}}},
        "NewDevice": {"type": "object", "required": ["msisdn"], "additionalProperties": false, "properties": {
            "msisdn": {"type": "string", "description": "a number verified in the tenant"},
            "label": {"type": "string"},
            "has_push_client": {"type": "boolean", "description": "holds a connection (default true); false: woken by SMS only"}}},
        "RegisteredDevice": {"type": "object", "properties": {
            "device": {"$ref": "#/components/schemas/Device"},
            "token": {"type": "string", "description": "the device token, shown once: the phone presents it to the session node"},
            "token_expires_at_ms": {"type": "integer"}}},
        "Sms": {"type": "object", "properties": {"id": {"type": "string"}, "tenant_id": id, "msisdn": {"type": "string"},
            "purpose": {"enum": ["otp", "wake_up", "notice", "unspecified"]}, "kind": {"enum": ["text", "wap_push"]},
            "text": {"type": "string", "description": "the text, or the WAP Push's indication text"},
            "url": {"type": "string", "description": "the WAP Push's URL; empty for a text"},
            "account_id": {"type": "string"}, "device_id": {"type": "string"}, "at_ms": {"type": "integer"}}},
        "SmsPage": {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": {"$ref": "#/components/schemas/Sms"}},
            "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"}}},
    })
}

fn schemas() -> Value {
    let mut all = core_schemas();
    for more in [tenancy_schemas(), lifecycle_schemas()] {
        if let (Some(all), Value::Object(more)) = (all.as_object_mut(), more) {
            all.extend(more);
        }
    }
    all
}

fn core_schemas() -> Value {
    let id = json!({"type": "string", "format": "uuid"});
    let page = |item: &str| {
        json!({"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}},
            "next_cursor": {"type": ["string", "null"], "description": "pass as `cursor` for the next page"}}})
    };
    json!({
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["code", "message"], "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
        "OpenApi": {"type": "object"},
        "SignIn": {"type": "object", "required": ["api_key"], "additionalProperties": false,
            "properties": {"api_key": {"type": "string", "writeOnly": true}}},
        "Me": {"type": "object", "properties": {"role": {"enum": ["tenant", "operator"]}, "tenant_id": {"type": ["string", "null"]},
            "sms_outbox": {"type": "boolean", "description": "whether the platform keeps an SMS outbox (no SMS centre): /sms answers"}}},
        "NewTenant": {"type": "object", "required": ["name", "max_accounts", "sms_per_day"], "additionalProperties": false,
            "properties": {"name": {"type": "string"}, "max_accounts": {"type": "integer"}, "sms_per_day": {"type": "integer"},
                "push_per_minute": {"type": "integer", "description": "0: no limit"},
                "domains": {"type": "array", "items": {"type": "string"}, "description": "mail domains the tenant owns"},
                "codes_per_day": {"type": "integer", "description": "verification codes per UTC day, apart from sms_per_day; 0: the platform default"}}},
        "Server": {"type": "object", "required": ["host", "port", "tls", "username"], "additionalProperties": false,
            "properties": {"host": {"type": "string"}, "port": {"type": "integer"}, "tls": {"enum": ["none", "starttls", "implicit"]},
                "username": {"type": "string"}}},
        "NewAccount": {"type": "object", "required": ["address", "kind"], "additionalProperties": false, "properties": {
            "address": {"type": "string"}, "kind": {"enum": ["external_imap", "external_pop3", "enterprise_forwarded", "webhook"]},
            "server": {"$ref": "#/components/schemas/Server"}, "password": {"type": "string", "writeOnly": true}}},
        "Account": {"type": "object", "properties": {"id": id, "tenant_id": id, "address": {"type": "string"},
            "kind": {"type": "string"}, "server": {"oneOf": [{"$ref": "#/components/schemas/Server"}, {"type": "null"}]},
            "has_credentials": {"type": "boolean"}, "created_at_ms": {"type": "integer"}}},
        "AccountPage": page("Account"),
        "NewBinding": {"type": "object", "required": ["msisdn"], "additionalProperties": false,
            "properties": {"msisdn": {"type": "string", "description": "E.164, e.g. +8613800138000"}}},
        "Code": {"type": "object", "required": ["code"], "additionalProperties": false, "properties": {"code": {"type": "string"}}},
        "Binding": {"type": "object", "properties": {"id": id, "tenant_id": id, "account_id": id, "msisdn": {"type": "string"},
            "state": {"enum": ["pending", "verified", "revoked"]}, "updated_at_ms": {"type": "integer"}}},
        "BindingPage": page("Binding"),
        "QuietHours": {"type": "object", "required": ["start_minute", "end_minute", "time_zone"], "additionalProperties": false,
            "properties": {"start_minute": {"type": "integer"}, "end_minute": {"type": "integer"}, "time_zone": {"type": "string"}}},
        "NewPreferences": {"type": "object", "required": ["content_level", "max_push_bytes", "attachments"], "additionalProperties": false,
            "properties": {"content_level": {"enum": ["notice", "subject_sender", "subject_sender_snippet"]},
                "max_push_bytes": {"type": "integer"}, "attachments": {"type": "boolean"},
                "quiet_hours": {"$ref": "#/components/schemas/QuietHours"},
                "black_list": {"type": "array", "items": {"type": "string"}}, "white_list": {"type": "array", "items": {"type": "string"}},
                "signature": {"type": "string"}}},
        "Preferences": {"type": "object", "properties": {"binding_id": id, "content_level": {"type": "string"},
            "max_push_bytes": {"type": "integer"}, "attachments": {"type": "boolean"},
            "quiet_hours": {"oneOf": [{"$ref": "#/components/schemas/QuietHours"}, {"type": "null"}]},
            "black_list": {"type": "array", "items": {"type": "string"}}, "white_list": {"type": "array", "items": {"type": "string"}},
            "signature": {"type": "string"}}},
        "Device": {"type": "object", "properties": {"id": id, "tenant_id": id, "msisdn": {"type": "string"}, "label": {"type": "string"},
            "has_push_client": {"type": "boolean"}, "revoked": {"type": "boolean"}, "created_at_ms": {"type": "integer"},
            "online": {"type": ["boolean", "null"], "description": "connected to a session node now; null when unknown"}}},
        "DevicePage": page("Device"),
        "Delivery": {"type": "object", "properties": {"device_id": {"type": "string"}, "idempotency_key": {"type": "string"},
            "channel": {"enum": ["held_connection", "replay", "sms_wake_up", "sms_notice", "unspecified"]},
            "status": {"enum": ["acked", "queued", "sms_submitted", "sms_delivered", "failed", "suppressed", "deferred", "unspecified"]},
            "detail": {"type": "string"}, "sequence": {"type": "integer"}, "at_ms": {"type": "integer"}}},
        "DeliveryPage": page("Delivery"),
        "TrafficDay": {"type": "object", "properties": {"account_id": id, "day": {"type": "string", "format": "date"},
            "pushed_count": {"type": "integer"}, "pushed_bytes": {"type": "integer"}, "fetched_count": {"type": "integer"},
            "fetched_bytes": {"type": "integer"}, "sms_count": {"type": "integer"}}},
        "Traffic": {"type": "object", "properties": {"days": {"type": "array", "items": {"$ref": "#/components/schemas/TrafficDay"}}}},
    })
}

fn error_response(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The answers a route documents: its success, and the errors it can give.
fn responses(r: &super::Route) -> Map<String, Value> {
    let mut responses = Map::new();
    let success = match (r.method, r.response) {
        ("POST", Some(schema))
            if !r.path.ends_with("/verify")
                && !r.path.ends_with("/revoke")
                && !r.path.ends_with("/token")
                && !r.path.ends_with("/session") =>
        {
            ("201", Some(schema))
        }
        (_, Some(schema)) => ("200", Some(schema)),
        (_, None) => ("204", None),
    };
    responses.insert(
        success.0.to_owned(),
        match success.1 {
            Some(schema) => json!({"description": "done", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}),
            None => json!({"description": "done"}),
        },
    );
    for (code, text) in [
        (
            "400",
            "invalid JSON, wrong types, unknown fields or parameters, a bad cursor",
        ),
        ("401", "no or an invalid credential"),
        (
            "403",
            "the credential may not do this (another tenant's resource, an operator-only call)",
        ),
        ("404", "no such resource"),
        ("409", "conflicts with the current state"),
        ("413", "body over 64 KiB"),
        (
            "429",
            "over the credential's rate or a limit such as a verification code's cooldown (Retry-After)",
        ),
    ] {
        if r.public && matches!(code, "401" | "403" | "404" | "409") {
            continue;
        }
        responses.insert(code.to_owned(), error_response(text));
    }
    responses
}

/// The document.
pub(super) fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut parameters: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        parameters.extend(r.query.iter().map(|name| {
            json!({"name": name, "in": "query", "required": matches!(*name, "from" | "to" | "account" | "msisdn"), "schema": {"type": "string"}})
        }));
        let responses = responses(r);
        let mut operation = json!({
            "summary": r.summary,
            "operationId": format!("{} {}", r.method, r.path),
            "parameters": parameters,
            "responses": responses,
        });
        if let Some(schema) = r.request {
            operation["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        if r.public {
            operation["security"] = json!([]);
        }
        let entry = paths.entry(r.path.to_owned()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "pushmail admin API", "version": "1",
            "description": "Tenants' accounts, number bindings, devices and their tokens, preferences, traffic and (where kept) the SMS outbox. Every request is scoped to the credential's tenant; operators may act on any tenant."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}, {"session": []}],
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "a tenant API key (pmk_…) or the operator token"},
                "session": {"type": "apiKey", "in": "cookie", "name": super::session::COOKIE,
                    "description": "portal session; changes also need the X-Pushmail-Portal header"},
            },
            "schemas": schemas(),
        },
        "paths": paths,
    })
}
