//! The phone's side of pushmail ([8/9]): a device that holds a WebSocket
//! to a session node, negotiates and adapts its heartbeat, acks what it
//! receives, resumes from its last ack after any reconnect, and fetches a
//! message and an attachment preview from the gateway. `pushmail device`
//! runs it and prints what it receives; tests and the load generator use
//! it as a library.

pub mod client;
pub mod fetch;
pub mod frames;
pub mod heartbeat;
pub mod shown;

pub use client::{Device, DeviceConfig, Event};
pub use heartbeat::Heartbeat;
