//! The query strings of the API's routes: each read strictly (an unknown
//! parameter is a 400) and documented in the OpenAPI document from the
//! same type.

use pushmail_proto::common::v1::PageRequest;
use serde::Deserialize;
use utoipa::IntoParams;

/// Binding's paging: 50 items unless asked.
fn page_request(page_size: Option<u32>, cursor: Option<&String>) -> Option<PageRequest> {
    Some(PageRequest {
        page_size: page_size.unwrap_or(50),
        cursor: cursor.cloned().unwrap_or_default(),
    })
}

/// Paging parameters of list routes.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Paging {
    /// Items per page (default 50).
    page_size: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl Paging {
    /// The page asked for.
    pub(super) fn page(&self) -> Option<PageRequest> {
        page_request(self.page_size, self.cursor.as_ref())
    }
}

/// Searching the accounts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct Search {
    /// Part of an address.
    pub(super) query: Option<String>,
    /// Items per page (default 50).
    page_size: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl Search {
    /// The page asked for.
    pub(super) fn page(&self) -> Option<PageRequest> {
        page_request(self.page_size, self.cursor.as_ref())
    }
}

/// The devices on one number.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct OnNumber {
    /// The number whose devices to list (E.164).
    pub(super) msisdn: String,
    /// Items per page (default 50).
    page_size: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl OnNumber {
    /// The page asked for.
    pub(super) fn page(&self) -> Option<PageRequest> {
        page_request(self.page_size, self.cursor.as_ref())
    }
}

/// Which account's traffic, over which days.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct TrafficQuery {
    /// The account id.
    pub(super) account: String,
    /// The first day, YYYY-MM-DD.
    pub(super) from: String,
    /// The last day, YYYY-MM-DD.
    pub(super) to: String,
}
