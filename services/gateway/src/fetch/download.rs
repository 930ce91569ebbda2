//! A download from one of transcode's chunk streams, with validators and
//! byte ranges: the range is passed upstream (so a resume at 29 MB of 30
//! does not move 29 MB inside the cluster), checked against the header's
//! size and ETag, and the bytes sent are counted for the tenant's traffic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use pushmail_proto::transcode::v1::{TranscodeChunk, TranscodeHeader, transcode_chunk::Item};
use pushmail_traffic::Traffic;
use tonic::Streaming;

use super::range::{self, Parsed, Wanted};
use crate::reply::ApiError;

/// Opens the upstream stream for bytes `offset`, at most `limit` (0: all).
pub(super) type Open = Box<
    dyn Fn(
            u64,
            u64,
        )
            -> Pin<Box<dyn Future<Output = Result<Streaming<TranscodeChunk>, tonic::Status>> + Send>>
        + Send
        + Sync,
>;

/// Whose traffic the bytes are.
pub(super) struct Counter {
    pub(super) traffic: Arc<Traffic>,
    pub(super) tenant: String,
    pub(super) account: String,
}

/// How the response presents the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Disposition {
    /// Shown by the device (previews, bodies).
    Inline,
    /// Saved by the device (originals), under the part's file name.
    Attachment,
}

/// Serves a download for a request with `headers`.
pub(super) async fn serve(
    open: Open,
    headers: &HeaderMap,
    disposition: Disposition,
    counter: Counter,
) -> Result<Response, ApiError> {
    let parsed = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Parsed::Ignore, range::parse);
    let if_range = headers.get(header::IF_RANGE).and_then(|v| v.to_str().ok());
    let (offset, limit) = match parsed {
        Parsed::One(spec) => spec.window(),
        // Only the header (the size, for `Content-Range: bytes */size`).
        Parsed::Invalid => (0, 1),
        Parsed::Ignore => (0, 0),
    };
    let (mut head, mut stream) = start(&open, offset, limit).await?;
    let etag = format!("\"{}\"", head.etag);
    if let Some(inm) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        && range::none_match(inm, &etag)
    {
        return Ok(not_modified(&etag));
    }
    let wanted = match parsed {
        _ if !range::if_range_matches(if_range, &etag) => Wanted::Full,
        Parsed::One(spec) => spec.resolve(head.total_bytes),
        Parsed::Invalid => Wanted::Unsatisfiable,
        Parsed::Ignore => Wanted::Full,
    };
    // The stream began at `offset` (or carries `limit` bytes); a full
    // answer after all (If-Range no longer matched) needs all of it.
    if wanted == Wanted::Full && (offset, limit) != (0, 0) {
        (head, stream) = start(&open, 0, 0).await?;
    }
    let total = head.total_bytes;
    let (status, skip, length) = match wanted {
        Wanted::Unsatisfiable => return Err(ApiError::RangeNotSatisfiable { total }),
        Wanted::Full => (StatusCode::OK, 0, total),
        Wanted::Part { start, .. } => match wanted.length() {
            // The stream began at `offset`, at or before `start`.
            Some(length) => (
                StatusCode::PARTIAL_CONTENT,
                start.saturating_sub(offset),
                length,
            ),
            None => return Err(ApiError::RangeNotSatisfiable { total }),
        },
    };
    let body = Counted {
        inner: data(stream, skip, length),
        sent: 0,
        counter: Some(counter),
    };
    let mut response = Body::from_stream(body).into_response();
    *response.status_mut() = status;
    let h = response.headers_mut();
    put(h, header::CONTENT_TYPE, &head.content_type);
    put(h, header::CONTENT_LENGTH, &length.to_string());
    put(h, header::ETAG, &etag);
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=86400"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Wanted::Part { start, end } = wanted {
        put(
            h,
            header::CONTENT_RANGE,
            &format!("bytes {start}-{end}/{total}"),
        );
    }
    if disposition == Disposition::Attachment {
        put(h, header::CONTENT_DISPOSITION, &attachment(&head.file_name));
    }
    Ok(response)
}

fn put(headers: &mut HeaderMap, name: header::HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    put(response.headers_mut(), header::ETAG, etag);
    response
}

/// The stream's header, and the stream positioned at its data.
async fn start(
    open: &Open,
    offset: u64,
    limit: u64,
) -> Result<(TranscodeHeader, Streaming<TranscodeChunk>), ApiError> {
    let mut stream = open(offset, limit)
        .await
        .map_err(|s| ApiError::from_upstream("transcode", &s))?;
    match stream.message().await {
        Ok(Some(TranscodeChunk {
            item: Some(Item::Header(head)),
        })) => Ok((head, stream)),
        Ok(_) => Err(ApiError::Upstream(
            "the transcode service sent no header".to_owned(),
        )),
        Err(status) => Err(ApiError::from_upstream("transcode", &status)),
    }
}

type Data = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The data chunks, the first `skip` bytes dropped, `length` bytes kept.
fn data(stream: Streaming<TranscodeChunk>, skip: u64, length: u64) -> Data {
    let state = (stream, skip, length);
    Box::pin(futures::stream::unfold(
        state,
        |(mut stream, mut skip, mut left)| async move {
            loop {
                if left == 0 {
                    return None;
                }
                let chunk = match stream.message().await {
                    Ok(Some(TranscodeChunk {
                        item: Some(Item::Data(bytes)),
                    })) => bytes,
                    Ok(Some(_)) => continue,
                    // Fewer bytes than the header promised: cut the connection
                    // (the device resumes) rather than end a short body cleanly.
                    Ok(None) => {
                        return Some((
                            Err(std::io::Error::other("the preview ended early")),
                            (stream, 0, 0),
                        ));
                    }
                    Err(status) => {
                        tracing::warn!(error = %status, "download cut by transcode");
                        return Some((
                            Err(std::io::Error::other(status.to_string())),
                            (stream, 0, 0),
                        ));
                    }
                };
                let mut chunk = Bytes::from(chunk);
                if skip > 0 {
                    let n = skip.min(chunk.len() as u64);
                    skip -= n;
                    chunk = chunk.slice(n as usize..);
                }
                if chunk.is_empty() {
                    continue;
                }
                let keep = left.min(chunk.len() as u64);
                left -= keep;
                chunk.truncate(keep as usize);
                return Some((Ok(chunk), (stream, skip, left)));
            }
        },
    ))
}

/// A body that records the bytes it handed out when it is done or dropped
/// (a cut connection counts what it carried).
struct Counted {
    inner: Data,
    sent: u64,
    counter: Option<Counter>,
}

impl Stream for Counted {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            self.sent += chunk.len() as u64;
        }
        polled
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        if let Some(c) = self.counter.take() {
            c.traffic.fetched(&c.tenant, &c.account, self.sent);
        }
    }
}

/// `Content-Disposition: attachment` with the name in RFC 6266/8187 form
/// (UTF-8, percent-encoded) and an ASCII fallback.
fn attachment(file_name: &str) -> String {
    if file_name.is_empty() {
        return "attachment".to_owned();
    }
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_in_the_header() {
        assert_eq!(attachment(""), "attachment");
        assert_eq!(
            attachment("q3 report.pdf"),
            "attachment; filename=\"q3 report.pdf\"; filename*=UTF-8''q3%20report.pdf"
        );
        let cjk = attachment("季度\"报告\r\n.pdf");
        assert!(cjk.starts_with("attachment; filename=\"__"), "{cjk}");
        assert!(cjk.contains("filename*=UTF-8''%E5%AD%A3"), "{cjk}");
        assert!(HeaderValue::from_str(&cjk).is_ok());
    }
}
