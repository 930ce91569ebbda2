//! The gRPC edge: who may call (the gateway's and activesync's
//! credentials), the account's
//! mailbox opened for one request (a kept session from the pool when
//! there is one), ids decoded and grouped by folder, a Send run to its
//! end whatever becomes of the caller, and every failure answered through
//! `Refusal`.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use pushmail_common::service_identity::{Service as Caller, ServiceVerifier};
use pushmail_proto::mailbox::v1 as pb;
use pushmail_proto::mailbox::v1::mailbox_service_server::MailboxService;
use tonic::{Request, Response, Status};

use crate::accounts::{Access, Accounts, Store};
use crate::backend::Mailbox;
use crate::changes::Change;
use crate::compose::{Kind, compose};
use crate::config::SyncConfig;
use crate::domain::{FolderId, FolderRole, MessageKey, Uid};
use crate::imap::ImapConnector;
use crate::refusal::{MAX_IDS, Refusal};
use crate::sends::Claim;
use crate::submit::Submitter;
use crate::sync::{Scope, States, Token, sync};
use crate::wire;

/// Who may call: the gateway and the ActiveSync front door, for phones.
const ALLOWED: &[Caller] = &[Caller::Gateway, Caller::ActiveSync];
/// Bytes per streamed chunk of a raw message.
const CHUNK: usize = 64 * 1024;

type RawStream = Pin<Box<dyn Stream<Item = Result<pb::RawChunk, Status>> + Send>>;

/// What a request needs.
pub(crate) struct Mailboxes {
    pub(crate) accounts: Arc<dyn Accounts>,
    /// The platform's own store: its index and the blobs it names.
    pub(crate) local: Arc<dyn crate::local::Index>,
    pub(crate) blobs: Arc<dyn pushmail_common::blob::BlobStore>,
    pub(crate) imap: ImapConnector,
    pub(crate) submitter: Submitter,
    pub(crate) states: Arc<dyn States>,
    pub(crate) sends: Arc<dyn crate::sends::Sends>,
    pub(crate) uploads: Arc<crate::uploads::Uploads>,
    /// Most bytes of uploads one Send attaches (the bound of what is read
    /// back from the provider, since the Sent copy is read like any mail).
    pub(crate) max_send_bytes: u64,
    pub(crate) sync: SyncConfig,
    pub(crate) callers: ServiceVerifier,
    /// Tells the account's other phones what one did.
    pub(crate) changes: crate::changes::Changes,
    /// Sends in progress, bounded (each holds its message in memory).
    pub(crate) sending: Arc<tokio::sync::Semaphore>,
    /// How long a Send waits for its turn.
    pub(crate) busy_wait: std::time::Duration,
}

/// A turn to send, waiting at most `wait` for one.
async fn admit(
    sending: &Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
    match tokio::time::timeout(wait, sending.clone().acquire_owned()).await {
        Ok(Ok(permit)) => Ok(permit),
        // Timed out, or closed (never: the service holds it).
        _ => Err(Refusal::Busy),
    }
}

/// Messages of one request grouped by folder and UIDVALIDITY.
type Groups = BTreeMap<(FolderId, u32), Vec<Uid>>;

/// The folders of a request's messages.
fn folders_of(groups: &Groups) -> Vec<FolderId> {
    groups.keys().map(|(folder, _)| folder.clone()).collect()
}

fn identified<'a>(tenant: &'a str, account: &'a str) -> Result<(&'a str, &'a str), Refusal> {
    if tenant.is_empty() || account.is_empty() {
        return Err(Refusal::Unidentified);
    }
    Ok((tenant, account))
}

fn groups(ids: &[String]) -> Result<Groups, Refusal> {
    if ids.is_empty() {
        return Err(Refusal::NoMessages);
    }
    if ids.len() > MAX_IDS {
        return Err(Refusal::TooMany { asked: ids.len() });
    }
    let mut groups = Groups::new();
    for id in ids {
        let key = MessageKey::decode(id)?;
        groups
            .entry((key.folder, key.uid_validity))
            .or_default()
            .push(key.uid);
    }
    Ok(groups)
}

/// Runs `$body` with `$m` the opened mailbox of `$access`, then closes it
/// whatever came of it. (A macro: an async closure taking the mailbox
/// would not be `Send` for every lifetime, which tonic needs.)
macro_rules! opened {
    ($this:expr, $access:expr, |$m:ident| $body:expr) => {{
        let mut mailbox = $this.open($access).await?;
        let result: Result<_, Refusal> = async {
            let $m: &mut dyn Mailbox = mailbox.as_mut();
            $body
        }
        .await;
        mailbox.close().await;
        result
    }};
}

mod folders;
mod search;
mod views;

pub(crate) use views::MAX_BODIES;

impl Mailboxes {
    /// Where the account's mail lives.
    async fn access(&self, tenant: &str, account: &str) -> Result<Access, Refusal> {
        let (tenant, account) = identified(tenant, account)?;
        Ok(self.accounts.access(tenant, account).await?)
    }

    /// The account's mailbox, connected.
    async fn open(&self, access: &Access) -> Result<Box<dyn Mailbox>, Refusal> {
        match &access.store {
            Store::Imap(imap) => Ok(Box::new(self.imap.open(imap).await?)),
            Store::Local(owner) => Ok(Box::new(crate::local::LocalMailbox::new(
                self.local.clone(),
                self.blobs.clone(),
                owner.clone(),
            ))),
        }
    }

    async fn list_folders(
        &self,
        r: pb::ListFoldersRequest,
    ) -> Result<pb::ListFoldersResponse, Refusal> {
        let folders = opened!(
            self,
            &self.access(&r.tenant_id, &r.account_id).await?,
            |m| Ok(m.folders().await?)
        )?;
        Ok(pb::ListFoldersResponse {
            folders: folders.iter().map(wire::folder).collect(),
        })
    }

    async fn sync(&self, r: pb::SyncRequest) -> Result<pb::SyncResponse, Refusal> {
        let folder = FolderId::decode(&r.folder_id)?;
        let since = match r.since_token.as_str() {
            "" => None,
            text => Some(Token::parse(text).ok_or(Refusal::BadToken)?),
        };
        let scope = Scope {
            tenant: r.tenant_id.clone(),
            account: r.account_id.clone(),
            folder,
        };
        let window = self.sync.window(r.window);
        let states = self.states.as_ref();
        let synced = opened!(
            self,
            &self.access(&r.tenant_id, &r.account_id).await?,
            |m| Ok(sync(m, states, &scope, since.as_ref(), window).await?)
        )?;
        Ok(wire::synced(&synced))
    }

    async fn get_message(&self, r: pb::GetMessageRequest) -> Result<pb::Message, Refusal> {
        let key = MessageKey::decode(&r.message_id)?;
        let listed = opened!(
            self,
            &self.access(&r.tenant_id, &r.account_id).await?,
            |m| {
                Ok(m.summaries(&key.folder, key.uid_validity, &[key.uid])
                    .await?)
            }
        )?;
        let listed = listed
            .into_iter()
            .next()
            .ok_or_else(|| crate::backend::BackendError::NoMessage(r.message_id.clone()))?;
        Ok(pb::Message {
            parts: listed.summary.parts.iter().map(wire::part).collect(),
            summary: Some(wire::summary(&listed.key, &listed.summary)),
        })
    }

    async fn fetch_raw(&self, r: pb::FetchRawRequest) -> Result<Vec<u8>, Refusal> {
        let key = MessageKey::decode(&r.message_id)?;
        opened!(
            self,
            &self.access(&r.tenant_id, &r.account_id).await?,
            |m| Ok(m.raw(&key).await?)
        )
    }

    async fn set_flags(&self, r: pb::SetFlagsRequest) -> Result<pb::SetFlagsResponse, Refusal> {
        let groups = groups(&r.message_ids)?;
        let update = wire::flag_update(r.update.as_ref());
        opened!(
            self,
            &self.access(&r.tenant_id, &r.account_id).await?,
            |m| {
                for ((folder, uid_validity), uids) in &groups {
                    m.set_flags(folder, *uid_validity, uids, update).await?;
                }
                Ok(())
            }
        )?;
        if !update.is_empty() {
            self.tell(
                &r.tenant_id,
                &r.account_id,
                &r.device_id,
                Change::Flags,
                folders_of(&groups),
            );
        }
        Ok(pb::SetFlagsResponse {})
    }

    /// Tells the account's other phones that `origin` changed `folders`.
    fn tell(
        &self,
        tenant: &str,
        account: &str,
        origin: &str,
        change: Change,
        folders: Vec<FolderId>,
    ) {
        self.changes.tell(crate::changes::Changed {
            tenant: tenant.to_owned(),
            account: account.to_owned(),
            origin: origin.to_owned(),
            change,
            folders,
        });
    }

    async fn move_to(&self, r: pb::MoveRequest) -> Result<pb::MoveResponse, Refusal> {
        let groups = groups(&r.message_ids)?;
        let to = FolderId::decode(&r.to_folder_id)?;
        let moved = opened!(
            self,
            &self.access(&r.tenant_id, &r.account_id).await?,
            |m| move_groups(m, &groups, &to).await
        )?;
        let mut folders = folders_of(&groups);
        folders.push(to);
        self.tell(
            &r.tenant_id,
            &r.account_id,
            &r.device_id,
            Change::Moved,
            folders,
        );
        Ok(pb::MoveResponse { moved })
    }

    async fn delete(&self, r: pb::DeleteRequest) -> Result<pb::DeleteResponse, Refusal> {
        let groups = groups(&r.message_ids)?;
        let permanent = r.permanent;
        let (moved, trash) = opened!(
            self,
            &self.access(&r.tenant_id, &r.account_id).await?,
            |m| {
                let trash = if permanent {
                    None
                } else {
                    Some(
                        m.folder_with_role(FolderRole::Trash)
                            .await?
                            .ok_or(Refusal::NoTrash)?,
                    )
                };
                let mut moved = Vec::new();
                for ((folder, uid_validity), uids) in &groups {
                    match &trash {
                        Some(trash) if trash != folder => {
                            let one: Groups =
                                [((folder.clone(), *uid_validity), uids.clone())].into();
                            moved.extend(move_groups(m, &one, trash).await?);
                        }
                        _ => m.expunge(folder, *uid_validity, uids).await?,
                    }
                }
                Ok((moved, trash))
            }
        )?;
        let mut folders = folders_of(&groups);
        folders.extend(trash);
        self.tell(
            &r.tenant_id,
            &r.account_id,
            &r.device_id,
            Change::Deleted,
            folders,
        );
        Ok(pb::DeleteResponse { moved })
    }
}

impl Mailboxes {
    async fn send(&self, r: pb::SendRequest) -> Result<pb::SendResponse, Refusal> {
        let kind = kind(r.kind())?;
        let access = self.access(&r.tenant_id, &r.account_id).await?;
        let idempotency = (!r.client_send_id.is_empty()).then(|| crate::sends::SendKey {
            tenant: r.tenant_id.clone(),
            account: r.account_id.clone(),
            client_send_id: r.client_send_id.clone(),
        });
        if let Some(key) = &idempotency {
            match self.sends.claim(key).await? {
                Claim::Mine => {}
                Claim::Done(sent) => {
                    return Ok(pb::SendResponse {
                        rfc_message_id: sent.rfc_message_id,
                        sent_message_id: sent.sent_message_id,
                    });
                }
                Claim::InFlight => return Err(Refusal::SendInFlight),
            }
        }
        let result = self
            .send_claimed(r, kind, access, idempotency.as_ref())
            .await;
        if let (Err(refusal), Some(key)) = (&result, &idempotency)
            && !refusal.maybe_sent()
            && let Err(error) = self.sends.release(key).await
        {
            // The claim lapses after ABANDONED_AFTER; until then a retry
            // with this key is told the send is in flight.
            tracing::warn!(error = %pushmail_common::report::Report(&error), "a failed send's claim could not be released");
        }
        result
    }

    /// The send itself, its key (if any) claimed. An error means nothing
    /// was sent, unless [`Refusal::maybe_sent`] says otherwise.
    async fn send_claimed(
        &self,
        r: pb::SendRequest,
        kind: Kind,
        access: Access,
        idempotency: Option<&crate::sends::SendKey>,
    ) -> Result<pb::SendResponse, Refusal> {
        let submission = access.submission.clone().ok_or(Refusal::NoSubmission)?;
        let reference = (kind != Kind::New)
            .then(|| MessageKey::decode(&r.reference_message_id))
            .transpose()?;
        let mut draft = if r.mime.is_empty() {
            wire::draft(&r, kind)
        } else {
            wire::phone_draft(&r, kind).map_err(Refusal::PhoneMessage)?
        };
        if !r.upload_ids.is_empty() {
            let owner = owner(&r.tenant_id, &r.account_id);
            draft.files.extend(
                self.uploads
                    .files(&owner, &r.upload_ids, self.max_send_bytes)
                    .await?,
            );
        }
        let submitter = &self.submitter;
        let sender = access.address.clone();
        opened!(self, &access, |m| {
            let original = match &reference {
                Some(key) => {
                    let raw = m.raw(key).await?;
                    let contents = pushmail_mime::contents(&raw, &original_limits(raw.len()))
                        .map_err(Refusal::Original)?;
                    Some((contents, raw))
                }
                None => None,
            };
            let composed = compose(
                &sender,
                &draft,
                original.as_ref().map(|(c, raw)| (c, raw.as_slice())),
                pushmail_common::clock::now_ms(),
            )?;
            // The message as encoded (attachments in base64) is what the
            // Sent folder holds and what is read back later: it must fit
            // the bound every read of a message has.
            let size = composed.raw.len() as u64;
            if size > self.max_send_bytes {
                return Err(Refusal::TooLarge {
                    size,
                    max: self.max_send_bytes,
                });
            }
            submitter
                .submit(
                    &submission,
                    &sender.address,
                    &composed.recipients,
                    &composed.raw,
                )
                .await?;
            // Sent: what follows is bookkeeping; a failure there must not
            // make the phone send again.
            let sent = file_sent_copy(m, &composed.raw, !r.no_sent_copy).await;
            if let Some(key) = &reference {
                mark_original(m, key, kind).await;
            }
            let touched = sent
                .iter()
                .chain(&reference)
                .map(|key| key.folder.clone())
                .collect();
            self.tell(
                &r.tenant_id,
                &r.account_id,
                &r.device_id,
                Change::Sent,
                touched,
            );
            let answer = crate::sends::Sent {
                rfc_message_id: composed.message_id,
                sent_message_id: sent.map(|k| k.encode()).unwrap_or_default(),
            };
            if let Some(key) = idempotency {
                remember(self.sends.as_ref(), key, &answer).await;
            }
            Ok(pb::SendResponse {
                rfc_message_id: answer.rfc_message_id,
                sent_message_id: answer.sent_message_id,
            })
        })
    }
}

/// Records a send's answer, retrying a database that fails for a moment:
/// while it is not recorded its key stays claimed, and a claim taken over
/// after ABANDONED_AFTER would send the mail again.
async fn remember(
    sends: &dyn crate::sends::Sends,
    key: &crate::sends::SendKey,
    sent: &crate::sends::Sent,
) {
    const TRIES: u32 = 5;
    let backoff = pushmail_common::backoff::Backoff::default();
    for failures in 1..=TRIES {
        match sends.record(key, sent).await {
            Ok(()) => return,
            Err(error) if failures == TRIES => {
                tracing::error!(error = %pushmail_common::report::Report(&error), "a sent message could not be remembered; a retry after the claim lapses would send it again");
            }
            Err(_) => tokio::time::sleep(backoff.delay(failures)).await,
        }
    }
}

fn owner(tenant: &str, account: &str) -> crate::uploads::Owner {
    crate::uploads::Owner {
        tenant: tenant.to_owned(),
        account: account.to_owned(),
    }
}

impl Mailboxes {
    async fn begin_upload(&self, r: pb::BeginUploadRequest) -> Result<pb::Upload, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        // The account must exist (and be this tenant's) before it may
        // stage anything.
        self.access(tenant, account).await?;
        let upload = self
            .uploads
            .begin(
                owner(tenant, account),
                &r.file_name,
                &r.content_type,
                r.total_bytes,
            )
            .await?;
        Ok(wire::upload(&upload))
    }

    async fn upload_chunk(&self, r: pb::UploadChunkRequest) -> Result<pb::Upload, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let upload = self
            .uploads
            .chunk(&owner(tenant, account), &r.upload_id, r.offset, r.data)
            .await?;
        Ok(wire::upload(&upload))
    }

    async fn get_upload(&self, r: pb::GetUploadRequest) -> Result<pb::Upload, Refusal> {
        let (tenant, account) = identified(&r.tenant_id, &r.account_id)?;
        let upload = self
            .uploads
            .get(&owner(tenant, account), &r.upload_id)
            .await?;
        Ok(wire::upload(&upload))
    }
}

/// Bounds for reading an original: its size was already checked against
/// the service's bound when it was fetched.
fn original_limits(size: usize) -> pushmail_mime::Limits {
    pushmail_mime::Limits {
        max_message_bytes: size.max(1),
        ..pushmail_mime::Limits::default()
    }
}

/// The sent copy, in the folder with the Sent role (seen), when `wanted`;
/// `None` when not, when there is none or it could not be stored (logged).
async fn file_sent_copy(m: &mut dyn Mailbox, raw: &[u8], wanted: bool) -> Option<MessageKey> {
    if !wanted {
        return None;
    }
    let stored = async {
        let Some(sent) = m.folder_with_role(FolderRole::Sent).await? else {
            return Ok(None);
        };
        let seen = crate::domain::Flags {
            seen: true,
            ..Default::default()
        };
        m.append(&sent, raw, seen).await
    };
    match stored.await {
        Ok(key) => key,
        Err(error) => {
            tracing::warn!(error = %pushmail_common::report::Report(&error), "the sent copy could not be stored");
            None
        }
    }
}

/// The original marked answered (a reply) or forwarded; a failure is
/// logged, the message having gone.
async fn mark_original(m: &mut dyn Mailbox, key: &MessageKey, kind: Kind) {
    let update = if kind == Kind::Reply || kind == Kind::ReplyAll {
        crate::domain::FlagUpdate {
            answered: Some(true),
            ..Default::default()
        }
    } else {
        crate::domain::FlagUpdate {
            forwarded: Some(true),
            ..Default::default()
        }
    };
    if let Err(error) = m
        .set_flags(&key.folder, key.uid_validity, &[key.uid], update)
        .await
    {
        tracing::warn!(error = %pushmail_common::report::Report(&error), "the original could not be marked");
    }
}

fn kind(kind: pb::SendKind) -> Result<Kind, Refusal> {
    Ok(match kind {
        pb::SendKind::New => Kind::New,
        pb::SendKind::Reply => Kind::Reply,
        pb::SendKind::ReplyAll => Kind::ReplyAll,
        pb::SendKind::ForwardInline => Kind::ForwardInline,
        pb::SendKind::ForwardAttached => Kind::ForwardAttached,
        pb::SendKind::Unspecified => return Err(Refusal::NoKind),
    })
}

async fn move_groups(
    m: &mut dyn Mailbox,
    groups: &Groups,
    to: &FolderId,
) -> Result<Vec<pb::Moved>, Refusal> {
    let mut out = Vec::new();
    for ((folder, uid_validity), uids) in groups {
        for (uid, new) in m.move_to(folder, *uid_validity, uids, to).await? {
            let from = MessageKey {
                folder: folder.clone(),
                uid_validity: *uid_validity,
                uid,
            };
            out.push(wire::moved(&from, new.as_ref()));
        }
    }
    Ok(out)
}

/// The tonic service.
pub(crate) struct Service(pub(crate) Arc<Mailboxes>);

impl Service {
    fn authorize<T>(&self, request: &Request<T>, method: &'static str) -> Result<(), Status> {
        self.0
            .callers
            .authorize(request.metadata(), method, ALLOWED)
            .map(drop)
    }
}

#[tonic::async_trait]
impl MailboxService for Service {
    type FetchRawStream = RawStream;

    async fn list_folders(
        &self,
        request: Request<pb::ListFoldersRequest>,
    ) -> Result<Response<pb::ListFoldersResponse>, Status> {
        self.authorize(&request, "ListFolders")?;
        Ok(Response::new(
            self.0.list_folders(request.into_inner()).await?,
        ))
    }

    async fn sync(
        &self,
        request: Request<pb::SyncRequest>,
    ) -> Result<Response<pb::SyncResponse>, Status> {
        self.authorize(&request, "Sync")?;
        Ok(Response::new(self.0.sync(request.into_inner()).await?))
    }

    async fn folder_changes(
        &self,
        request: Request<pb::FolderChangesRequest>,
    ) -> Result<Response<pb::FolderChangesResponse>, Status> {
        self.authorize(&request, "FolderChanges")?;
        Ok(Response::new(
            self.0.folder_changes(request.into_inner()).await?,
        ))
    }

    async fn acknowledge(
        &self,
        request: Request<pb::AcknowledgeRequest>,
    ) -> Result<Response<pb::AcknowledgeResponse>, Status> {
        self.authorize(&request, "Acknowledge")?;
        Ok(Response::new(
            self.0.acknowledge(request.into_inner()).await?,
        ))
    }

    async fn get_attachment(
        &self,
        request: Request<pb::GetAttachmentRequest>,
    ) -> Result<Response<pb::AttachmentContent>, Status> {
        self.authorize(&request, "GetAttachment")?;
        Ok(Response::new(
            self.0.get_attachment(request.into_inner()).await?,
        ))
    }

    async fn empty_folder(
        &self,
        request: Request<pb::EmptyFolderRequest>,
    ) -> Result<Response<pb::EmptyFolderResponse>, Status> {
        self.authorize(&request, "EmptyFolder")?;
        Ok(Response::new(
            self.0.empty_folder(request.into_inner()).await?,
        ))
    }

    async fn create_folder(
        &self,
        request: Request<pb::CreateFolderRequest>,
    ) -> Result<Response<pb::FolderEdited>, Status> {
        self.authorize(&request, "CreateFolder")?;
        Ok(Response::new(
            self.0.create_folder(request.into_inner()).await?,
        ))
    }

    async fn rename_folder(
        &self,
        request: Request<pb::RenameFolderRequest>,
    ) -> Result<Response<pb::FolderEdited>, Status> {
        self.authorize(&request, "RenameFolder")?;
        Ok(Response::new(
            self.0.rename_folder(request.into_inner()).await?,
        ))
    }

    async fn delete_folder(
        &self,
        request: Request<pb::DeleteFolderRequest>,
    ) -> Result<Response<pb::FolderEdited>, Status> {
        self.authorize(&request, "DeleteFolder")?;
        Ok(Response::new(
            self.0.delete_folder(request.into_inner()).await?,
        ))
    }

    async fn estimate_sync(
        &self,
        request: Request<pb::EstimateSyncRequest>,
    ) -> Result<Response<pb::EstimateSyncResponse>, Status> {
        self.authorize(&request, "EstimateSync")?;
        Ok(Response::new(
            self.0.estimate_sync(request.into_inner()).await?,
        ))
    }

    async fn search(
        &self,
        request: Request<pb::SearchRequest>,
    ) -> Result<Response<pb::SearchResponse>, Status> {
        self.authorize(&request, "Search")?;
        Ok(Response::new(self.0.search(request.into_inner()).await?))
    }

    async fn get_bodies(
        &self,
        request: Request<pb::GetBodiesRequest>,
    ) -> Result<Response<pb::GetBodiesResponse>, Status> {
        self.authorize(&request, "GetBodies")?;
        Ok(Response::new(
            self.0.get_bodies(request.into_inner()).await?,
        ))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        self.authorize(&request, "GetMessage")?;
        Ok(Response::new(
            self.0.get_message(request.into_inner()).await?,
        ))
    }

    async fn fetch_raw(
        &self,
        request: Request<pb::FetchRawRequest>,
    ) -> Result<Response<Self::FetchRawStream>, Status> {
        self.authorize(&request, "FetchRaw")?;
        let raw = self.0.fetch_raw(request.into_inner()).await?;
        let total = raw.len() as u64;
        let chunks: Vec<Result<pb::RawChunk, Status>> = raw
            .chunks(CHUNK)
            .enumerate()
            .map(|(i, data)| {
                Ok(pb::RawChunk {
                    data: data.to_vec(),
                    total_bytes: if i == 0 { total } else { 0 },
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn set_flags(
        &self,
        request: Request<pb::SetFlagsRequest>,
    ) -> Result<Response<pb::SetFlagsResponse>, Status> {
        self.authorize(&request, "SetFlags")?;
        Ok(Response::new(self.0.set_flags(request.into_inner()).await?))
    }

    async fn r#move(
        &self,
        request: Request<pb::MoveRequest>,
    ) -> Result<Response<pb::MoveResponse>, Status> {
        self.authorize(&request, "Move")?;
        Ok(Response::new(self.0.move_to(request.into_inner()).await?))
    }

    async fn delete(
        &self,
        request: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        self.authorize(&request, "Delete")?;
        Ok(Response::new(self.0.delete(request.into_inner()).await?))
    }

    async fn send(
        &self,
        request: Request<pb::SendRequest>,
    ) -> Result<Response<pb::SendResponse>, Status> {
        self.authorize(&request, "Send")?;
        // Run to the end even if the caller goes away (a deadline, a
        // dropped connection): cut between the server's acceptance and
        // recording the answer, the claim would be left open and a retry
        // after its takeover would send the mail again.
        let mailboxes = self.0.clone();
        let request = request.into_inner();
        // Before anything is claimed: a Send refused here sent nothing.
        let permit = admit(&mailboxes.sending, mailboxes.busy_wait).await?;
        let sent = tokio::spawn(async move {
            let sent = mailboxes.send(request).await;
            drop(permit);
            sent
        })
        .await
        .map_err(|e| Status::internal(format!("the send task failed: {e}")))?;
        Ok(Response::new(sent?))
    }

    async fn begin_upload(
        &self,
        request: Request<pb::BeginUploadRequest>,
    ) -> Result<Response<pb::Upload>, Status> {
        self.authorize(&request, "BeginUpload")?;
        Ok(Response::new(
            self.0.begin_upload(request.into_inner()).await?,
        ))
    }

    async fn upload_chunk(
        &self,
        request: Request<pb::UploadChunkRequest>,
    ) -> Result<Response<pb::Upload>, Status> {
        self.authorize(&request, "UploadChunk")?;
        Ok(Response::new(
            self.0.upload_chunk(request.into_inner()).await?,
        ))
    }

    async fn get_upload(
        &self,
        request: Request<pb::GetUploadRequest>,
    ) -> Result<Response<pb::Upload>, Status> {
        self.authorize(&request, "GetUpload")?;
        Ok(Response::new(
            self.0.get_upload(request.into_inner()).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_send_over_the_bound_waits_then_is_refused_busy() {
        let sending = Arc::new(tokio::sync::Semaphore::new(1));
        let wait = std::time::Duration::from_millis(50);
        let first = admit(&sending, wait).await.unwrap();
        assert!(matches!(admit(&sending, wait).await, Err(Refusal::Busy)));
        let status: Status = Refusal::Busy.into();
        assert_eq!(status.code(), tonic::Code::Unavailable);
        // A turn freed while waiting is taken.
        let waiting = tokio::spawn({
            let sending = sending.clone();
            async move { admit(&sending, std::time::Duration::from_secs(5)).await }
        });
        drop(first);
        assert!(waiting.await.unwrap().is_ok());
    }
}
