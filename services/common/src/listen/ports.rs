//! Loopback ports for processes configured by address (the tests),
//! which must be told a port before they bind it.
//!
//! A port from `bind(0)` comes from the kernel's ephemeral range and is
//! released before the process binds it, so any outgoing connection (to
//! Kafka, Redis, PostgreSQL…) may take it in between: with hundreds of
//! test connections a run, that happened. Ports are drawn instead from
//! below the ephemeral range, which the kernel never hands out on its own,
//! and claimed with a marker file so two test processes choosing at once
//! do not draw the same one.

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use rand::Rng as _;

/// The lowest port drawn: above the well-known and most registered
/// service ports.
const LOWEST: u16 = 10_000;
/// A claim older than this is taken to be from a process that has bound
/// its port (or died); the port is checked free again anyway.
const CLAIM_LIFETIME: Duration = Duration::from_secs(120);

/// A loopback port no one listens on now, outside the kernel's ephemeral
/// range and not handed to another caller in the last two minutes.
///
/// # Panics
/// When no port is free after many draws (the machine is out of ports).
#[must_use]
pub fn free_port() -> u16 {
    let highest = ephemeral_start().saturating_sub(1).max(LOWEST + 1_000);
    let claims = std::env::temp_dir().join("pushmail-ports");
    let _ = std::fs::create_dir_all(&claims);
    let mut rng = rand::rng();
    for _ in 0..10_000 {
        let port = rng.random_range(LOWEST..=highest);
        if claim(&claims, port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {LOWEST} and {highest}");
}

/// Where the kernel starts ephemeral ports (Linux); the usual 32768
/// where that cannot be read.
fn ephemeral_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// Claims `port` for this caller: false when another claimed it lately.
fn claim(claims: &std::path::Path, port: u16) -> bool {
    let marker: PathBuf = claims.join(port.to_string());
    let created = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker);
    if created.is_ok() {
        return true;
    }
    let stale = std::fs::metadata(&marker)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|at| SystemTime::now().duration_since(at).ok())
        .is_some_and(|age| age > CLAIM_LIFETIME);
    // Renewing the stale claim's time makes it this caller's; a racing
    // caller renewing too is caught by the bind check only, as before.
    stale
        && std::fs::File::options()
            .write(true)
            .open(&marker)
            .and_then(|file| file.set_modified(SystemTime::now()))
            .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_below_the_ephemeral_range_bindable_and_not_repeated() {
        let ports: Vec<u16> = (0..50).map(|_| free_port()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len(), "a port was handed out twice");
        for port in ports {
            assert!(port >= LOWEST && port < ephemeral_start());
            assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
        }
    }
}
