//! The gRPC edge: authenticates, parses requests into domain types (in
//! `wire`), calls the registry, maps errors in one place (`status`).

mod admin;
mod app_passwords;
mod auth;
mod internal;
mod keys;
mod outbox;
mod relay;
mod status;

use pushmail_proto::binding::v1::admin_service_server::AdminServiceServer;
use pushmail_proto::binding::v1::binding_service_server::BindingServiceServer;
use pushmail_proto::common::v1::{PageRequest, PageResponse};
use tonic::service::Routes;

use crate::registry::{ApiError, Registry};

/// Page size when the caller names none.
const DEFAULT_PAGE: u32 = 100;
/// Largest page.
const MAX_PAGE: u32 = 1_000;

/// Both services, to serve next to health and reflection.
pub(crate) fn routes(registry: &Registry) -> Routes {
    Routes::new(AdminServiceServer::new(admin::Admin::new(registry.clone()))).add_service(
        BindingServiceServer::new(internal::Internal::new(registry.clone())),
    )
}

/// A parsed page request: how many, after which id.
struct Page<'a> {
    size: u32,
    after: Option<&'a str>,
}

fn page(request: Option<&PageRequest>) -> Result<Page<'_>, ApiError> {
    let size = request.map_or(0, |p| p.page_size);
    if size > MAX_PAGE {
        return Err(ApiError::invalid("page.page_size", "must be at most 1000"));
    }
    Ok(Page {
        size: if size == 0 { DEFAULT_PAGE } else { size },
        after: request.map(|p| p.cursor.as_str()).filter(|c| !c.is_empty()),
    })
}

/// The next cursor: the last id of a full page (a short page is the end).
fn next_page(ids: &[String], size: u32) -> Option<PageResponse> {
    let full = u32::try_from(ids.len()).is_ok_and(|n| n >= size);
    Some(PageResponse {
        next_cursor: if full {
            ids.last().cloned().unwrap_or_default()
        } else {
            String::new()
        },
    })
}

/// The cursor of a list ordered newest first by (time, id), if given.
fn time_cursor(page: &Page<'_>) -> Result<Option<crate::domain::DeliveryCursor>, ApiError> {
    page.after
        .map(|c| {
            crate::domain::DeliveryCursor::parse(c)
                .ok_or_else(|| ApiError::invalid("page.cursor", "not a cursor of this list"))
        })
        .transpose()
}

/// The next cursor of such a list: the last item's (time, id) when the
/// page is full (a short page is the end).
fn next_time_page(last: Option<(i64, &str)>, count: usize, size: u32) -> Option<PageResponse> {
    let full = u32::try_from(count).is_ok_and(|n| n >= size);
    let next_cursor = last
        .filter(|_| full)
        .map(|(at_ms, id)| {
            crate::domain::DeliveryCursor {
                at_ms,
                event_id: id.to_owned(),
            }
            .encode()
        })
        .unwrap_or_default();
    Some(PageResponse { next_cursor })
}

/// `items` (sorted by id) after the cursor, one page of them.
fn page_of<T>(
    items: Vec<T>,
    page: &Page<'_>,
    id: impl Fn(&T) -> String,
) -> (Vec<T>, Option<PageResponse>) {
    let kept: Vec<T> = items
        .into_iter()
        .filter(|item| page.after.is_none_or(|after| id(item).as_str() > after))
        .take(page.size as usize)
        .collect();
    let ids: Vec<String> = kept.iter().map(&id).collect();
    let next = next_page(&ids, page.size);
    (kept, next)
}
