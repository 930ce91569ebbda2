//! One bound SMPP connection to an SMS centre, as a transceiver ESME:
//! requests are windowed (at most `window` unanswered at once) and matched
//! to responses by sequence number; enquire_link probes the link when it
//! is quiet and a missing answer closes it; the SMS centre's deliver_sm
//! (delivery receipts) are handed to the caller, who answers each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use smpp34::{SmppError, deliver_sm};

use crate::pdu::{self, Bind, Frame, PduError, Status, Submit, command};

/// How a session is opened and kept.
#[derive(Debug, Clone)]
pub(crate) struct SessionSettings {
    /// `host:port`.
    pub(crate) address: String,
    /// The bind's credentials and identity.
    pub(crate) bind: Bind,
    /// Requests unanswered at once.
    pub(crate) window: usize,
    /// How long a request waits for its response (and the bind for its).
    pub(crate) response_timeout: Duration,
    /// Quiet time after which enquire_link probes the link.
    pub(crate) enquire_link: Duration,
}

/// Why a session could not be opened or a request answered.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// TCP connect failed.
    #[error("connecting to the SMS centre at {address}")]
    Connect {
        /// The address dialled.
        address: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The SMS centre refused the bind.
    #[error("bind refused: {0}")]
    BindRefused(Status),
    /// No response within the response timeout.
    #[error("no response within {0:?}")]
    Timeout(Duration),
    /// The link closed before the response came.
    #[error("the link closed before the response")]
    Closed,
    /// We could not encode the request.
    #[error(transparent)]
    Pdu(#[from] PduError),
    /// The SMS centre's response could not be read; the link is closed,
    /// since what else it sent cannot be trusted either.
    #[error("unreadable response from the SMS centre")]
    BadResponse(#[source] PduError),
}

/// A deliver_sm from the SMS centre, to be answered with [`Session::answer`].
#[derive(Debug)]
pub(crate) struct Inbound {
    /// Its sequence number (the answer echoes it).
    pub(crate) sequence: u32,
    /// The message, or why it could not be read.
    pub(crate) message: Result<deliver_sm, PduError>,
    /// The session it came on.
    pub(crate) session: Arc<Session>,
}

type Pending = Mutex<HashMap<u32, oneshot::Sender<Frame>>>;

/// A bound session. Dropping every handle does not close it; [`Session::close`] does.
#[derive(Debug)]
pub(crate) struct Session {
    name: String,
    writer: mpsc::Sender<Vec<u8>>,
    pending: Pending,
    sequence: AtomicU32,
    window: Semaphore,
    response_timeout: Duration,
    closed: CancellationToken,
}

/// Outgoing PDUs waiting for the socket.
const WRITE_QUEUE: usize = 256;

impl Session {
    /// Connects and binds as a transceiver; `inbound` receives deliver_sm.
    pub(crate) async fn open(
        name: &str,
        settings: &SessionSettings,
        inbound: mpsc::Sender<Inbound>,
    ) -> Result<Arc<Self>, SessionError> {
        let stream = tokio::time::timeout(
            settings.response_timeout,
            TcpStream::connect(&settings.address),
        )
        .await
        .map_err(|_| SessionError::Timeout(settings.response_timeout))?
        .map_err(|source| SessionError::Connect {
            address: settings.address.clone(),
            source,
        })?;
        stream.set_nodelay(true).ok();
        let (read, write) = stream.into_split();
        let (writer, queue) = mpsc::channel(WRITE_QUEUE);
        let session = Arc::new(Self {
            name: name.to_owned(),
            writer,
            pending: Mutex::new(HashMap::new()),
            sequence: AtomicU32::new(1),
            window: Semaphore::new(settings.window.max(1)),
            response_timeout: settings.response_timeout,
            closed: CancellationToken::new(),
        });
        let last_read = Arc::new(Mutex::new(Instant::now()));
        tokio::spawn(write_loop(write, queue, session.closed.clone()));
        tokio::spawn(read_loop(read, session.clone(), inbound, last_read.clone()));
        let response = session
            .request(|sequence| settings.bind.encode(sequence))
            .await;
        match response {
            Ok(frame) if frame.status() == Status::OK => {
                tracing::info!(
                    smsc = name,
                    peer = %frame.bind_resp_system_id(),
                    "bound as transceiver"
                );
                tokio::spawn(keepalive(session.clone(), settings.enquire_link, last_read));
                Ok(session)
            }
            Ok(frame) => {
                session.close();
                Err(SessionError::BindRefused(frame.status()))
            }
            Err(err) => {
                session.close();
                Err(err)
            }
        }
    }

    /// Submits one message; the SMS centre's message id on success, its
    /// status otherwise (`Ok(Err(status))`).
    pub(crate) async fn submit(
        &self,
        message: &Submit,
    ) -> Result<Result<String, Status>, SessionError> {
        message.check()?;
        let _slot = self
            .window
            .acquire()
            .await
            .map_err(|_| SessionError::Closed)?;
        let frame = self.request(|sequence| message.encode(sequence)).await?;
        frame.submit_resp().map_err(|err| {
            self.close();
            SessionError::BadResponse(err)
        })
    }

    /// Answers a deliver_sm.
    pub(crate) async fn answer(&self, sequence: u32, status: SmppError) {
        self.send(pdu::deliver_sm_resp(sequence, status)).await;
    }

    /// Unbinds politely (bounded by the response timeout), then closes.
    pub(crate) async fn unbind(&self) {
        if !self.closed.is_cancelled() {
            let _ = self.request(|sequence| Ok(pdu::unbind(sequence))).await;
        }
        self.close();
    }

    /// Closes the link; requests waiting fail with [`SessionError::Closed`].
    pub(crate) fn close(&self) {
        self.closed.cancel();
        self.window.close();
        self.lock_pending().clear();
    }

    /// Resolves when the link is closed.
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await;
    }

    /// The SMS centre's name in config.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// True until the link closes.
    pub(crate) fn is_open(&self) -> bool {
        !self.closed.is_cancelled()
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u32, oneshot::Sender<Frame>>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn next_sequence(&self) -> u32 {
        // 1..=0x7FFFFFFF, wrapping (§5.1.4).
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        (n & 0x7FFF_FFFF).max(1)
    }

    /// Sends the request `encode` writes with its sequence number; its response.
    async fn request(
        &self,
        encode: impl FnOnce(u32) -> Result<Vec<u8>, PduError>,
    ) -> Result<Frame, SessionError> {
        if self.closed.is_cancelled() {
            return Err(SessionError::Closed);
        }
        let sequence = self.next_sequence();
        let pdu = encode(sequence)?;
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(sequence, tx);
        self.send(pdu).await;
        let answer = tokio::select! {
            answer = tokio::time::timeout(self.response_timeout, rx) => answer,
            () = self.closed.cancelled() => {
                self.lock_pending().remove(&sequence);
                return Err(SessionError::Closed);
            }
        };
        match answer {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(_)) => Err(SessionError::Closed),
            Err(_) => {
                self.lock_pending().remove(&sequence);
                Err(SessionError::Timeout(self.response_timeout))
            }
        }
    }

    async fn send(&self, bytes: Vec<u8>) {
        if self.writer.send(bytes).await.is_err() {
            self.close();
        }
    }

    fn resolve(&self, frame: Frame) {
        let waiting = self.lock_pending().remove(&frame.sequence());
        match waiting {
            Some(tx) => {
                let _ = tx.send(frame);
            }
            None => tracing::debug!(
                smsc = %self.name,
                sequence = frame.sequence(),
                "a response nobody waits for (timed out)"
            ),
        }
    }
}

async fn write_loop(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut queue: mpsc::Receiver<Vec<u8>>,
    closed: CancellationToken,
) {
    loop {
        let bytes = tokio::select! {
            bytes = queue.recv() => match bytes {
                Some(bytes) => bytes,
                None => break,
            },
            () = closed.cancelled() => {
                // What was queued before the close still goes (an
                // unbind_resp is queued just before its link closes).
                while let Ok(bytes) = queue.try_recv() {
                    if write.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                break;
            }
        };
        if write.write_all(&bytes).await.is_err() {
            break;
        }
    }
    closed.cancel();
    let _ = write.shutdown().await;
}

/// Why the read side of a link ended.
#[derive(Debug, thiserror::Error)]
enum LinkLost {
    /// The SMS centre sent bytes that are no PDU.
    #[error("unreadable PDU from the SMS centre")]
    Frame(#[from] PduError),
    /// Reading failed.
    #[error("reading from the SMS centre")]
    Io(#[from] std::io::Error),
    /// The SMS centre closed the connection.
    #[error("the SMS centre closed the connection")]
    Closed,
}

async fn read_loop(
    mut read: tokio::net::tcp::OwnedReadHalf,
    session: Arc<Session>,
    inbound: mpsc::Sender<Inbound>,
    last_read: Arc<Mutex<Instant>>,
) {
    let mut buf = BytesMut::with_capacity(4096);
    let outcome: Result<(), LinkLost> = async {
        loop {
            while let Some(frame) = Frame::decode(&mut buf)? {
                *last_read
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
                handle_frame(&session, frame, &inbound).await;
            }
            let read = tokio::select! {
                read = read.read_buf(&mut buf) => read?,
                () = session.closed() => return Ok(()),
            };
            if read == 0 {
                return Err(LinkLost::Closed);
            }
        }
    }
    .await;
    if let Err(err) = outcome {
        let reason = pushmail_common::report::Report(&err);
        tracing::warn!(smsc = %session.name, %reason, "SMPP link lost");
    }
    session.close();
}

async fn handle_frame(session: &Arc<Session>, frame: Frame, inbound: &mpsc::Sender<Inbound>) {
    match frame.command_id() {
        command::ENQUIRE_LINK => session.send(frame.enquire_link_resp()).await,
        command::DELIVER_SM => {
            let item = Inbound {
                sequence: frame.sequence(),
                message: frame.deliver_sm(),
                session: session.clone(),
            };
            if inbound.send(item).await.is_err() {
                session
                    .answer(frame.sequence(), SmppError::ESME_RX_T_APPN)
                    .await;
            }
        }
        command::UNBIND => {
            session.send(pdu::unbind_resp(frame.sequence())).await;
            tracing::info!(smsc = %session.name, "the SMS centre unbound");
            session.close();
        }
        id if command::is_response(id) => session.resolve(frame),
        other => {
            tracing::warn!(smsc = %session.name, command_id = other, "unsupported PDU; answered generic_nack");
            session.send(pdu::generic_nack(frame.sequence())).await;
        }
    }
}

/// Probes a quiet link; a probe without an answer closes it, so the link
/// reconnects instead of queueing submits into a dead socket.
async fn keepalive(session: Arc<Session>, every: Duration, last_read: Arc<Mutex<Instant>>) {
    loop {
        let quiet_since = *last_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        tokio::select! {
            () = tokio::time::sleep_until(quiet_since + every) => {}
            () = session.closed() => return,
        }
        let quiet_since = *last_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if quiet_since.elapsed() < every {
            continue;
        }
        match session
            .request(|sequence| Ok(pdu::enquire_link(sequence)))
            .await
        {
            Ok(_) => {}
            Err(SessionError::Closed) => return,
            Err(err) => {
                tracing::warn!(smsc = %session.name, error = %pushmail_common::report::Report(&err), "enquire_link unanswered; closing the link");
                session.close();
                return;
            }
        }
    }
}
