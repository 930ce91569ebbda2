//! Folders a phone makes, renames and deletes (`CREATE`, `RENAME`,
//! `DELETE`): names encoded in modified UTF-7 and joined with the
//! server's own hierarchy delimiter, which `LIST "" ""` tells.

use async_imap::imap_proto::{MailboxDatum, Response};

use crate::backend::BackendError;
use crate::domain::FolderId;

use super::conn::{Conn, quoted};
use super::utf7;

/// The server's hierarchy delimiter; `None` when its folders are flat.
async fn delimiter(conn: &mut Conn) -> Result<Option<String>, BackendError> {
    let mut found = None;
    conn.exchange("LIST", r#"LIST "" """#, |response| {
        if let Response::MailboxData(MailboxDatum::List(list)) = response {
            found = list.delimiter.as_deref().map(str::to_owned);
        }
    })
    .await?;
    Ok(found)
}

/// The raw name of `name` under `parent`.
async fn raw_name(
    conn: &mut Conn,
    parent: Option<&FolderId>,
    name: &str,
) -> Result<String, BackendError> {
    let delimiter = delimiter(conn).await?;
    if let Some(delimiter) = &delimiter
        && name.contains(delimiter.as_str())
    {
        return Err(BackendError::BadName(
            "must not contain the server's folder separator",
        ));
    }
    let encoded = utf7::encode(name);
    match (parent, delimiter) {
        (None, _) => Ok(encoded),
        (Some(parent), Some(delimiter)) => Ok(format!("{}{delimiter}{encoded}", parent.raw())),
        (Some(_), None) => Err(BackendError::BadName(
            "this server keeps no folders inside folders",
        )),
    }
}

/// `SUBSCRIBE` or `UNSUBSCRIBE` `raw`: clients must subscribe what they
/// make, or some servers' other clients never show it; a server refusing
/// that has still made (or deleted) the folder.
async fn subscription(conn: &mut Conn, verb: &'static str, raw: &str) {
    if let Err(error) = conn.run(verb, &format!("{verb} {}", quoted(raw))).await {
        tracing::debug!(%error, verb, "subscription refused");
    }
}

pub(crate) async fn create(
    conn: &mut Conn,
    parent: Option<&FolderId>,
    name: &str,
) -> Result<FolderId, BackendError> {
    let raw = raw_name(conn, parent, name).await?;
    conn.run("CREATE", &format!("CREATE {}", quoted(&raw)))
        .await?;
    subscription(conn, "SUBSCRIBE", &raw).await;
    Ok(FolderId::new(raw))
}

pub(crate) async fn rename(
    conn: &mut Conn,
    folder: &FolderId,
    parent: Option<&FolderId>,
    name: &str,
) -> Result<FolderId, BackendError> {
    let raw = raw_name(conn, parent, name).await?;
    conn.run(
        "RENAME",
        &format!("RENAME {} {}", quoted(folder.raw()), quoted(&raw)),
    )
    .await?;
    subscription(conn, "UNSUBSCRIBE", folder.raw()).await;
    subscription(conn, "SUBSCRIBE", &raw).await;
    Ok(FolderId::new(raw))
}

pub(crate) async fn delete(conn: &mut Conn, folder: &FolderId) -> Result<(), BackendError> {
    conn.run("DELETE", &format!("DELETE {}", quoted(folder.raw())))
        .await?;
    subscription(conn, "UNSUBSCRIBE", folder.raw()).await;
    Ok(())
}
