//! An SMS centre for tests: the `smpp34` crate's SMPP 3.4 server (an
//! implementation independent of ours), scripted to accept, refuse or
//! throttle submits, and to send delivery receipts and unbinds.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use smpp34::server::ESME;
use smpp34::{
    SmppConnectionInformation, SmppError, SmppServer, SmppServerListener, Tlv, TlvTag,
    bind_transceiver, bind_transceiver_resp, submit_sm, submit_sm_resp,
};
use tokio::sync::Notify;

/// A submit the SMS centre accepted.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub message_id: String,
    pub destination: String,
    pub esm_class: u8,
    pub data_coding: u8,
    pub registered_delivery: u8,
    pub validity_period: String,
    pub short_message: Vec<u8>,
}

/// What the SMS centre does next.
#[derive(Debug, Default)]
pub struct Script {
    /// Binds with another password are refused.
    pub password: String,
    /// Destinations ending so are refused with ESME_RINVDSTADR.
    pub refuse_suffix: Option<String>,
    /// The next this many submits are answered ESME_RTHROTTLED.
    pub throttle_next: u32,
    /// Submits of a concatenated part 2 answered ESME_RMSGQFUL, this many times.
    pub queue_full_on_part_two: u32,
}

#[derive(Default)]
struct State {
    script: Mutex<Script>,
    accepted: Mutex<Vec<Accepted>>,
    refused: AtomicU32,
    binds: AtomicU32,
    esme: Mutex<Option<Arc<ESME>>>,
    changed: Notify,
    next_id: AtomicU32,
}

struct Listener(Arc<State>);

#[async_trait]
impl SmppServerListener for Listener {
    async fn on_bind_transceiver(
        &self,
        bind: bind_transceiver,
        _connection: &SmppConnectionInformation,
        _session: &String,
    ) -> bind_transceiver_resp {
        let password = lock(&self.0.script).password.clone();
        if bind.password != password {
            return bind.reject(SmppError::ESME_RINVPASWD);
        }
        self.0.binds.fetch_add(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
        bind.accept("test-smsc".to_owned(), Some(0x34))
    }

    async fn on_submit_sm(
        &self,
        submit: submit_sm,
        _connection: &SmppConnectionInformation,
        _session: &String,
    ) -> submit_sm_resp {
        let refusal = {
            let mut script = lock(&self.0.script);
            // UDH 05 00 03 ref total part: octet 5 is the part number.
            let part_two = submit.esm_class & 0x40 != 0 && submit.short_message.get(5) == Some(&2);
            if script.throttle_next > 0 {
                script.throttle_next -= 1;
                Some(SmppError::ESME_RTHROTTLED)
            } else if part_two && script.queue_full_on_part_two > 0 {
                script.queue_full_on_part_two -= 1;
                Some(SmppError::ESME_RMSGQFUL)
            } else if script
                .refuse_suffix
                .as_ref()
                .is_some_and(|s| submit.destination_addr.ends_with(s.as_str()))
            {
                Some(SmppError::ESME_RINVDSTADR)
            } else {
                None
            }
        };
        if let Some(error) = refusal {
            self.0.refused.fetch_add(1, Ordering::SeqCst);
            self.0.changed.notify_waiters();
            return submit.reject(error);
        }
        // Hexadecimal ids, as many SMS centres give them.
        let message_id = format!(
            "{:x}",
            0x1000 + self.0.next_id.fetch_add(1, Ordering::SeqCst)
        );
        lock(&self.0.accepted).push(Accepted {
            message_id: message_id.clone(),
            destination: submit.destination_addr.clone(),
            esm_class: submit.esm_class,
            data_coding: submit.data_coding,
            registered_delivery: submit.registered_delivery,
            validity_period: submit.validity_period.clone(),
            short_message: submit.short_message.clone(),
        });
        self.0.changed.notify_waiters();
        submit.accept(message_id)
    }

    async fn on_esme_bound(&self, esme: ESME, _session: &String) {
        *lock(&self.0.esme) = Some(Arc::new(esme));
        self.0.changed.notify_waiters();
    }

    async fn on_esme_unbound(&self, _session: &String) {
        *lock(&self.0.esme) = None;
        self.0.changed.notify_waiters();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running SMS centre on a loopback port.
pub struct Smsc {
    server: SmppServer,
    state: Arc<State>,
    /// `127.0.0.1:port`.
    pub address: String,
}

impl Smsc {
    /// Starts one accepting binds with `password`. `enquire_link_ms` is how
    /// often it probes the ESME; `inactivity_ms` closes a link that long silent.
    pub async fn start(password: &str, enquire_link_ms: u64, inactivity_ms: u64) -> Self {
        let state = Arc::new(State::default());
        lock(&state.script).password = password.to_owned();
        let port = crate::free_port();
        let mut server = SmppServer::new_with_default_timers(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            port,
            Arc::new(Listener(state.clone())),
            5_000,
            enquire_link_ms,
            inactivity_ms,
            5_000,
            4_096,
        );
        server.start().await;
        Self {
            server,
            state,
            address: format!("127.0.0.1:{port}"),
        }
    }

    /// Changes what happens next.
    pub fn script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut lock(&self.state.script));
    }

    /// Submits accepted so far.
    pub fn accepted(&self) -> Vec<Accepted> {
        lock(&self.state.accepted).clone()
    }

    /// Submits refused so far.
    pub fn refused(&self) -> u32 {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Binds accepted so far.
    pub fn binds(&self) -> u32 {
        self.state.binds.load(Ordering::SeqCst)
    }

    /// Waits (up to `limit`) until `done` holds.
    pub async fn until(&self, limit: Duration, done: impl Fn(&Self) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let changed = self.state.changed.notified();
            if done(self) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return done(self);
            }
        }
    }

    fn esme(&self) -> anyhow::Result<Arc<ESME>> {
        lock(&self.state.esme)
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no ESME is bound"))
    }

    /// Sends a delivery receipt with the optional parameters of SMPP 3.4.
    pub async fn receipt(&self, message_id: &str, state: u8) -> anyhow::Result<u32> {
        let tlvs = vec![
            Tlv::new(
                TlvTag::ReceiptedMessageId as u16,
                format!("{message_id}\0").into_bytes(),
            ),
            Tlv::new(TlvTag::MessageStateTlv as u16, vec![state]),
        ];
        self.deliver(0x04, &format!("id:{message_id} stat:{state}"), tlvs)
            .await
    }

    /// Sends a receipt written only as Appendix B text (older SMS centres).
    pub async fn text_receipt(&self, text: &str) -> anyhow::Result<u32> {
        self.deliver(0x04, text, Vec::new()).await
    }

    /// Sends a message from a phone (not a receipt).
    pub async fn mobile_originated(&self, text: &str) -> anyhow::Result<u32> {
        self.deliver(0x00, text, Vec::new()).await
    }

    /// Sends a deliver_sm; the ESME's answer status.
    async fn deliver(&self, esm_class: u8, text: &str, tlvs: Vec<Tlv>) -> anyhow::Result<u32> {
        let answer = self
            .esme()?
            .deliver_sm()
            .source_addr("8613800138000")
            .destination_addr("pushmail")
            .esm_class(esm_class)
            .short_message(text.as_bytes().to_vec())
            .tlvs(tlvs)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("deliver_sm failed: {e:?}"))?;
        Ok(answer.command_status())
    }

    /// Unbinds the bound ESME (an SMS centre going for maintenance). The
    /// server of smpp34 1.5.1 does not hand the ESME's unbind_resp to the
    /// caller (it times out whatever the ESME answers), so what tells is
    /// whether the ESME binds again, not this call's result.
    pub async fn unbind(&self) -> anyhow::Result<()> {
        let esme = self.esme()?;
        tokio::spawn(async move {
            let _ = esme.send_unbind().await;
        });
        Ok(())
    }

    /// Stops accepting.
    pub async fn stop(mut self) {
        self.server.stop().await;
    }
}
