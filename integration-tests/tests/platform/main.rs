//! The whole platform end to end: binding, session, dispatch and ingest
//! each as its own process with its own telemetry, on a real Kafka broker
//! (tansu), PostgreSQL, Redis and Dovecot, and the demo device as the
//! phone. `flows`: mail in over IMAP and SMTP reaches the online phone
//! once, an offline phone gets an SMS wake-up and the mail on reconnect,
//! one trace runs through every service. `faults`: kill -9 of each
//! service and of the broker while mail flows loses and doubles nothing.
//! `redis_loss`: Redis losing every key twice while mail flows leaves no
//! phone (WebSocket, long poll, offline) without its mail or a resync.
//! `eas_ping`: a stock mail app's held ActiveSync Ping woken by mail sent
//! over SMTP.

#![allow(
    clippy::too_many_lines,
    reason = "a test or benchmark reads as one scenario, top to bottom"
)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // a panic is the test failure report

mod eas_ping;
mod faults;
mod flows;
mod redis_loss;

use pushmail_integration_tests::platform::Binaries;

fn binaries() -> Binaries {
    pushmail_integration_tests::binaries!()
}

/// A plain mail with `subject`, as a sender's MUA writes it.
fn mail(to: &str, subject: &str) -> String {
    format!(
        "From: Boss <boss@example.net>\r\nTo: <{to}>\r\nSubject: {subject}\r\n\
         Message-ID: <{}@example.net>\r\nDate: Fri, 27 Nov 2026 08:00:00 +0000\r\n\r\n\
         The figures for {subject} are in.\r\n",
        pushmail_integration_tests::unique("m")
    )
}
