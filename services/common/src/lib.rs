//! Cross-cutting mechanics shared by every pushmail service: layered
//! config, telemetry, the event bus, the blob store, health, hosting and
//! shutdown. No business logic lives here; services meet only through
//! `proto/`.

pub mod auth;
pub mod backoff;
pub mod blob;
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod device_token;
pub mod egress;
pub mod grpc;
pub mod health;
pub mod host;
pub mod http_error;
pub mod lifecycle;
pub mod listen;
pub mod mail;
pub mod outbox;
pub mod redact;
pub mod redis;
pub mod report;
pub mod service_identity;
pub mod sms;
pub mod sqlite;
pub mod telemetry;
pub mod tls;
pub mod traffic;
