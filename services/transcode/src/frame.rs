//! The frames between the service and a converter worker, one each way
//! per job: `u32` header length, the header as JSON (small: names, sizes,
//! limits), `u64` body length, the body as raw bytes (a message, a part, a
//! preview: no encoding cost for the bulk). Both lengths are checked
//! against bounds before anything is allocated, so a worker that went
//! wrong (or a hostile file that took it over) can make the service read
//! at most one bounded frame, and a bogus frame is an error, not a panic.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// Largest header: the metadata of a part (its inline images' map) or a job.
pub(crate) const MAX_HEADER: u32 = 1 << 20;

/// Largest body either side sends or accepts: above any message, part or
/// preview the configuration allows (checked there).
pub(crate) const MAX_BODY: u64 = 256 << 20;

/// A frame that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The pipe failed or ended early (the other side died).
    #[error("the worker pipe failed: {0}")]
    Io(#[from] io::Error),
    /// A length over its bound.
    #[error("a frame's {part} of {len} bytes is over the {max}-byte bound")]
    TooLarge {
        part: &'static str,
        len: u64,
        max: u64,
    },
    /// A header that is not what was expected.
    #[error("a frame's header is unreadable: {0}")]
    Header(#[from] serde_json::Error),
}

fn check(part: &'static str, len: u64, max: u64) -> Result<usize, FrameError> {
    if len > max {
        return Err(FrameError::TooLarge { part, len, max });
    }
    usize::try_from(len).map_err(|_| FrameError::TooLarge { part, len, max })
}

fn header_bytes(header: &impl Serialize) -> Result<Vec<u8>, FrameError> {
    let json = serde_json::to_vec(header)?;
    check("header", json.len() as u64, u64::from(MAX_HEADER))?;
    Ok(json)
}

/// Reads exactly `len` bytes, growing the buffer as they arrive rather
/// than trusting `len` up front (a short stream allocates only what came).
fn read_exactly(reader: &mut impl Read, len: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(len.min(1 << 20));
    reader.take(len as u64).read_to_end(&mut out)?;
    if out.len() < len {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(out)
}

/// Writes one frame (the worker's side).
pub(crate) fn write<H: Serialize>(
    writer: &mut impl Write,
    header: &H,
    body: &[u8],
) -> Result<(), FrameError> {
    let json = header_bytes(header)?;
    check("body", body.len() as u64, MAX_BODY)?;
    writer.write_all(&(json.len() as u32).to_be_bytes())?;
    writer.write_all(&json)?;
    writer.write_all(&(body.len() as u64).to_be_bytes())?;
    writer.write_all(body)?;
    writer.flush()?;
    Ok(())
}

/// Reads one frame (the worker's side).
pub(crate) fn read<H: DeserializeOwned>(
    reader: &mut impl Read,
) -> Result<(H, Vec<u8>), FrameError> {
    let mut len = [0u8; 4];
    reader.read_exact(&mut len)?;
    let header_len = check(
        "header",
        u64::from(u32::from_be_bytes(len)),
        u64::from(MAX_HEADER),
    )?;
    let header = serde_json::from_slice(&read_exactly(reader, header_len)?)?;
    let mut len = [0u8; 8];
    reader.read_exact(&mut len)?;
    let body_len = check("body", u64::from_be_bytes(len), MAX_BODY)?;
    Ok((header, read_exactly(reader, body_len)?))
}

/// Writes one frame (the service's side).
pub(crate) async fn write_async<H: Serialize>(
    writer: &mut (impl AsyncWrite + Unpin),
    header: &H,
    body: &[u8],
) -> Result<(), FrameError> {
    let json = header_bytes(header)?;
    check("body", body.len() as u64, MAX_BODY)?;
    writer.write_u32(json.len() as u32).await?;
    writer.write_all(&json).await?;
    writer.write_u64(body.len() as u64).await?;
    writer.write_all(body).await?;
    writer.flush().await?;
    Ok(())
}

/// Reads one frame whose body is at most `max_body` (the service's side).
pub(crate) async fn read_async<H: DeserializeOwned>(
    reader: &mut (impl AsyncRead + Unpin),
    max_body: u64,
) -> Result<(H, Vec<u8>), FrameError> {
    let header_len = check(
        "header",
        u64::from(reader.read_u32().await?),
        u64::from(MAX_HEADER),
    )?;
    let mut json = Vec::with_capacity(header_len.min(1 << 16));
    (&mut *reader)
        .take(header_len as u64)
        .read_to_end(&mut json)
        .await?;
    if json.len() < header_len {
        return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    let header = serde_json::from_slice(&json)?;
    let body_len = check("body", reader.read_u64().await?, max_body.min(MAX_BODY))?;
    let mut body = Vec::with_capacity(body_len.min(1 << 20));
    (&mut *reader)
        .take(body_len as u64)
        .read_to_end(&mut body)
        .await?;
    if body.len() < body_len {
        return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into()));
    }
    Ok((header, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Header {
        name: String,
    }

    #[tokio::test]
    async fn a_frame_round_trips_both_ways() {
        let header = Header {
            name: "季度".into(),
        };
        let mut wire = Vec::new();
        write(&mut wire, &header, b"body").unwrap();
        let (back, body): (Header, _) = read_async(&mut wire.as_slice(), 100).await.unwrap();
        assert_eq!((back, body.as_slice()), (header, &b"body"[..]));
        let mut wire = Vec::new();
        write_async(&mut wire, &Header { name: "x".into() }, &[7; 3])
            .await
            .unwrap();
        let (back, body): (Header, _) = read(&mut wire.as_slice()).unwrap();
        assert_eq!((back.name.as_str(), body), ("x", vec![7; 3]));
    }

    #[tokio::test]
    async fn bogus_frames_are_errors() {
        // A header length past the bound: refused before any allocation.
        let huge = [0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            read::<Header>(&mut huge.as_slice()),
            Err(FrameError::TooLarge { part: "header", .. })
        ));
        // A short stream.
        let short = [0, 0, 0, 10, b'{'];
        assert!(matches!(
            read_async::<Header>(&mut short.as_slice(), 10).await,
            Err(FrameError::Io(_))
        ));
        // Not the header expected.
        let mut wire = Vec::new();
        write(&mut wire, &42u32, b"").unwrap();
        assert!(matches!(
            read_async::<Header>(&mut wire.as_slice(), 10).await,
            Err(FrameError::Header(_))
        ));
        // A body over the caller's bound.
        let mut wire = Vec::new();
        write(&mut wire, &Header { name: "x".into() }, &[0; 11]).unwrap();
        assert!(matches!(
            read_async::<Header>(&mut wire.as_slice(), 10).await,
            Err(FrameError::TooLarge { part: "body", .. })
        ));
        assert!(read::<Header>(&mut &b""[..]).is_err());
    }
}
