//! Cross-cutting mechanics shared by every pushmail service: layered
//! config, telemetry, the event bus, the blob store, health, hosting and
//! shutdown, retries, the clock, embedded SQLite. No business logic lives
//! here (the outbox, SMS encoding, mail parsing, device tokens and traffic
//! counters have crates of their own); services meet only through
//! `proto/`.

pub mod auth;
pub mod backoff;
pub mod blob;
#[cfg(feature = "bus")]
pub mod bus;
pub mod cli;
pub mod clock;
pub mod config;
pub mod egress;
pub mod grpc;
pub mod health;
pub mod host;
pub mod http_error;
pub mod lifecycle;
pub mod listen;
pub mod redact;
pub mod redis;
pub mod report;
pub mod service_identity;
pub mod sqlite;
pub mod telemetry;
pub mod tls;
pub mod upstream;
