//! The devices connected to this node, by device id, each with the command
//! channel of its connection task.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::task::AtomicWaker;
use tokio::sync::oneshot;

use crate::protocol::WireNotification;

/// What a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The device acked it.
    Acked,
    /// The connection closed before the ack.
    Closed,
}

/// Told to a connection task.
#[derive(Debug)]
pub(crate) enum Command {
    /// Write this (of that outbox generation, 0: unknown) and answer when acked.
    Deliver(u64, Box<WireNotification>, oneshot::Sender<Outcome>),
    /// Another connection of the device took over.
    TakenOver,
    /// The node drains: reconnect after this.
    Drain(Duration),
    /// The device was revoked.
    Revoked,
}

/// A connected device.
#[derive(Debug, Clone)]
pub(crate) struct Handle {
    /// Unique per connection, so a closing old connection never removes its successor.
    pub(crate) id: u64,
    /// The device's tenant.
    pub(crate) tenant: Arc<str>,
    /// The granted heartbeat interval.
    pub(crate) hb: Duration,
    /// Connected since, ms since the epoch.
    pub(crate) since_ms: i64,
    /// The connection's commands.
    pub(crate) tx: Arc<Mailbox>,
}

/// Most commands queued for one connection.
const MAILBOX: usize = 8;

/// A connection's command queue. Lighter than a tokio channel (which
/// allocates a 32-slot block up front): an idle connection's queue holds no
/// allocation at all, and idle memory is what bounds a node. The
/// connection polls it on every frame it reads, so that poll is one atomic
/// load while nothing is queued (a `Notify` would lock and link a waiter).
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    queue: Mutex<VecDeque<Command>>,
    /// Whether `queue` holds anything; written under its lock.
    pending: AtomicBool,
    waker: AtomicWaker,
    closed: AtomicBool,
}

impl Mailbox {
    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Command>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `command`; gives it back when the connection is gone or its queue full.
    pub(crate) fn try_send(&self, command: Command) -> Result<(), Command> {
        if self.closed.load(Ordering::Acquire) {
            return Err(command);
        }
        let mut queue = self.queue();
        if queue.len() >= MAILBOX {
            return Err(command);
        }
        queue.push_back(command);
        self.pending.store(true, Ordering::Release);
        drop(queue);
        self.waker.wake();
        Ok(())
    }

    fn pop(&self) -> Option<Command> {
        if !self.pending.load(Ordering::Acquire) {
            return None;
        }
        let mut queue = self.queue();
        let command = queue.pop_front();
        if queue.is_empty() {
            self.pending.store(false, Ordering::Release);
        }
        command
    }

    /// The next command.
    pub(crate) async fn recv(&self) -> Command {
        std::future::poll_fn(|cx| {
            if let Some(command) = self.pop() {
                return Poll::Ready(command);
            }
            self.waker.register(cx.waker());
            // A command queued between the first look and the register
            // woke nobody: look again.
            match self.pop() {
                Some(command) => Poll::Ready(command),
                None => Poll::Pending,
            }
        })
        .await
    }

    /// No more commands; what is queued is handed back to be answered.
    pub(crate) fn close(&self) -> Vec<Command> {
        self.closed.store(true, Ordering::Release);
        let mut queue = self.queue();
        self.pending.store(false, Ordering::Release);
        queue.drain(..).collect()
    }
}

/// Phones held by this node: what a session pod is sized and scaled by.
fn held(count: usize) {
    metrics::gauge!("pushmail_session_connections").set(count as f64);
}

/// This node's connected devices.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    devices: Mutex<HashMap<Arc<str>, Handle>>,
    next_id: AtomicU64,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Handle>> {
        self.devices
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A fresh connection id.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Registers a connection; returns the one it replaces.
    pub(crate) fn insert(&self, device: Arc<str>, handle: Handle) -> Option<Handle> {
        let mut devices = self.lock();
        let replaced = devices.insert(device, handle);
        held(devices.len());
        replaced
    }

    /// Removes the device if connection `id` still holds it.
    pub(crate) fn remove(&self, device: &str, id: u64) -> bool {
        let mut devices = self.lock();
        if devices.get(device).is_some_and(|h| h.id == id) {
            devices.remove(device);
            held(devices.len());
            true
        } else {
            false
        }
    }

    /// The device's connection here.
    pub(crate) fn get(&self, device: &str) -> Option<Handle> {
        self.lock().get(device).cloned()
    }

    /// Every connection, for draining.
    pub(crate) fn all(&self) -> Vec<Handle> {
        self.lock().values().cloned().collect()
    }

    /// How many devices are connected.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_connection_is_woken_and_commands_keep_their_order() {
        let mailbox = Arc::new(Mailbox::default());
        let waiting = tokio::spawn({
            let mailbox = mailbox.clone();
            async move {
                let first = mailbox.recv().await;
                let second = mailbox.recv().await;
                (first, second)
            }
        });
        tokio::task::yield_now().await;
        mailbox.try_send(Command::TakenOver).unwrap();
        mailbox.try_send(Command::Revoked).unwrap();
        let (first, second) = waiting.await.unwrap();
        assert!(matches!(first, Command::TakenOver), "{first:?}");
        assert!(matches!(second, Command::Revoked), "{second:?}");
    }

    #[tokio::test]
    async fn a_full_or_closed_mailbox_gives_the_command_back() {
        let mailbox = Mailbox::default();
        for _ in 0..MAILBOX {
            mailbox.try_send(Command::Revoked).unwrap();
        }
        assert!(mailbox.try_send(Command::TakenOver).is_err(), "full");
        assert!(matches!(mailbox.recv().await, Command::Revoked));
        mailbox.try_send(Command::TakenOver).unwrap();
        let queued = mailbox.close();
        assert_eq!(queued.len(), MAILBOX, "queued commands are handed back");
        assert!(matches!(queued.last(), Some(Command::TakenOver)));
        assert!(mailbox.try_send(Command::Revoked).is_err(), "closed");
    }
}
