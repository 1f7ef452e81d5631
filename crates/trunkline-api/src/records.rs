//! `/console/call-records`: searching the call detail records, one
//! record, and its SIP ladder.

use crate::Shared;
use crate::error::ApiError;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use trunkline_cdr::{
    Cdr, CdrId, CdrQuery, CdrStore, Cursor, Direction, Disposition, Order, PageSize, SipFlowEntry,
    Timestamp,
};

/// A search as the query string or the JSON body gives it. Unknown fields
/// are refused, so a misspelt filter is not silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Search {
    from: Option<Loose>,
    to: Option<Loose>,
    party: Option<String>,
    disposition: Option<String>,
    direction: Option<String>,
    page_size: Option<Loose>,
    after: Option<String>,
    order: Option<String>,
}

/// A value a query string gives as text and a JSON body as a number or
/// text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Loose {
    Number(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for Loose {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Loose, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Loose;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number or a string")
            }

            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Loose, E> {
                Ok(Loose::Number(v))
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Loose, E> {
                i64::try_from(v)
                    .map(Loose::Number)
                    .map_err(|_| E::custom("number out of range"))
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Loose, E> {
                Ok(Loose::Text(v.to_owned()))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl Loose {
    fn number(&self) -> Option<i64> {
        match self {
            Loose::Number(n) => Some(*n),
            Loose::Text(t) => t.trim().parse().ok(),
        }
    }
}

/// RFC 3339, or whole Unix seconds.
fn time(field: &str, value: &Loose) -> Result<Timestamp, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "{field}: expected an RFC 3339 time or Unix seconds, got {}",
            match value {
                Loose::Number(n) => n.to_string(),
                Loose::Text(t) => format!("{t:?}"),
            }
        ))
    };
    if let Some(seconds) = value.number() {
        return seconds
            .checked_mul(1000)
            .and_then(Timestamp::from_unix_millis)
            .ok_or_else(bad);
    }
    match value {
        Loose::Text(text) => text.trim().parse().map_err(|_| bad()),
        Loose::Number(_) => Err(bad()),
    }
}

impl Search {
    /// The store's query, or what is wrong with the search.
    pub(crate) fn query(self) -> Result<CdrQuery, ApiError> {
        let mut query = CdrQuery {
            from: self.from.as_ref().map(|v| time("from", v)).transpose()?,
            to: self.to.as_ref().map(|v| time("to", v)).transpose()?,
            ..CdrQuery::default()
        };
        query.party = self.party.filter(|p| !p.is_empty());
        if let Some(text) = self.disposition {
            let disposition: Disposition = text.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "disposition: expected ANSWERED, NO ANSWER, BUSY or FAILED, got {text:?}"
                ))
            })?;
            query.disposition = Some(disposition);
        }
        if let Some(text) = self.direction {
            let direction: Direction = text.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "direction: expected inbound, outbound or internal, got {text:?}"
                ))
            })?;
            query.direction = Some(direction);
        }
        if let Some(size) = &self.page_size {
            let size = size
                .number()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| ApiError::bad_request("page_size: expected 1 to 10000"))?;
            query.page_size = PageSize::new(size)
                .map_err(|e| ApiError::bad_request(format!("page_size: {e}")))?;
        }
        query.order = match self.order.as_deref() {
            None | Some("oldest") => Order::OldestFirst,
            Some("newest") => Order::NewestFirst,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "order: expected oldest or newest, got {other:?}"
                )));
            }
        };
        if let Some(after) = self.after.filter(|a| !a.is_empty()) {
            let cursor: Cursor = after
                .parse()
                .map_err(|_| ApiError::bad_request(format!("after: not a cursor: {after:?}")))?;
            query.after = Some(cursor);
        }
        Ok(query)
    }
}

/// A page of records.
#[derive(Debug, Serialize)]
pub(crate) struct RecordPage {
    records: Vec<Cdr>,
    /// The `after` of the next page; `null` on the last.
    next: Option<String>,
}

/// Runs `work` on the store off the async threads.
async fn with_store<T: Send + 'static>(
    shared: &Shared,
    work: impl FnOnce(&dyn CdrStore) -> Result<T, trunkline_cdr::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let store = shared.cdr.clone();
    let done = tokio::task::spawn_blocking(move || work(store.as_ref())).await;
    match done {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(trunkline_cdr::Error::Cursor(text))) => Err(ApiError::bad_request(format!(
            "after: not a cursor: {text:?}"
        ))),
        Ok(Err(trunkline_cdr::Error::PageSize { requested })) => Err(ApiError::bad_request(
            format!("page_size: a page holds 1 to 10000 records, not {requested}"),
        )),
        Ok(Err(e)) => {
            tracing::error!("call records: {e}");
            Err(ApiError::internal("the call record store failed"))
        }
        Err(e) => {
            tracing::error!("call records: the store's task failed: {e}");
            Err(ApiError::internal("the call record store failed"))
        }
    }
}

async fn search(shared: &Shared, search: Search) -> Result<Json<RecordPage>, ApiError> {
    let query = search.query()?;
    let page = with_store(shared, move |store| store.query(&query)).await?;
    Ok(Json(RecordPage {
        records: page.records,
        next: page.next.map(|c| c.to_string()),
    }))
}

/// `GET /console/call-records?…`
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    params: Result<Query<Search>, QueryRejection>,
) -> Result<Json<RecordPage>, ApiError> {
    let Query(params) = params?;
    search(&shared, params).await
}

/// `POST /console/call-records` with the search as a JSON object; an
/// empty body is an empty search.
pub(crate) async fn find(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RecordPage>, ApiError> {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(e.body_text()),
        _ => ApiError::bad_request(e.body_text()),
    })?;
    let params = if body.iter().all(u8::is_ascii_whitespace) {
        Search::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("the body is not a search: {e}")))?
    };
    search(&shared, params).await
}

/// The record with `id`, or 404.
pub(crate) async fn record(shared: &Shared, id: String) -> Result<Cdr, ApiError> {
    let key = CdrId::new(id.clone());
    with_store(shared, move |store| store.get(&key))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no call record {id:?}")))
}

/// `GET /console/call-records/{id}`
pub(crate) async fn one(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Cdr>, ApiError> {
    let Path(id) = id?;
    Ok(Json(record(&shared, id).await?))
}

/// A record's SIP ladder.
#[derive(Debug, Serialize)]
pub(crate) struct SipFlow {
    id: CdrId,
    call_id: String,
    /// Every SIP message of the call in order (the first
    /// [`trunkline_cdr::SIP_FLOW_LIMIT`]).
    sip_flow: Vec<SipFlowEntry>,
    /// How many were left out past the limit.
    sip_flow_omitted: u64,
}

/// `GET /console/call-records/{id}/sip-flow`
pub(crate) async fn sip_flow(
    State(shared): State<Arc<Shared>>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SipFlow>, ApiError> {
    let Path(id) = id?;
    let cdr = record(&shared, id).await?;
    Ok(Json(SipFlow {
        id: cdr.id,
        call_id: cdr.call_id,
        sip_flow: cdr.sip_flow,
        sip_flow_omitted: cdr.sip_flow_omitted,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parsed(query: &str) -> Result<CdrQuery, ApiError> {
        let Query(search) = Query::<Search>::try_from_uri(
            &format!("http://h/console/call-records?{query}")
                .parse()
                .unwrap(),
        )
        .map_err(ApiError::from)?;
        search.query()
    }

    #[test]
    fn query_strings_become_store_queries() {
        let q = parsed(
            "from=2025-03-14T00:00:00Z&to=1741996800&party=1001&disposition=NO+ANSWER\
             &direction=internal&page_size=50&order=newest",
        )
        .unwrap();
        assert_eq!(q.from.unwrap().to_string(), "2025-03-14T00:00:00.000Z");
        assert_eq!(q.to.unwrap().to_string(), "2025-03-15T00:00:00.000Z");
        assert_eq!(q.party.as_deref(), Some("1001"));
        assert_eq!(q.disposition, Some(Disposition::NoAnswer));
        assert_eq!(q.direction, Some(Direction::Internal));
        assert_eq!(q.page_size.get(), 50);
        assert_eq!(q.order, Order::NewestFirst);
        assert_eq!(parsed("").unwrap(), CdrQuery::default());
    }

    #[test]
    fn bad_parameters_are_400_naming_the_field() {
        for (query, field) in [
            ("from=yesterday", "from:"),
            ("to=99999999999999999", "to:"),
            ("disposition=answered", "disposition:"),
            ("direction=up", "direction:"),
            ("page_size=0", "page_size:"),
            ("page_size=10001", "page_size:"),
            ("page_size=ten", "page_size:"),
            ("after=nonsense", "after:"),
            ("order=random", "order:"),
            ("frm=1", "frm"),
        ] {
            let e = parsed(query).unwrap_err();
            assert_eq!(e.code(), "bad_request", "{query}");
            assert!(e.message().contains(field), "{query}: {}", e.message());
        }
    }

    #[test]
    fn json_bodies_take_numbers_or_text() {
        let search: Search = serde_json::from_str(
            r#"{"from": 1741910400, "to": "2025-03-15T00:00:00+01:00", "page_size": 2}"#,
        )
        .unwrap();
        let q = search.query().unwrap();
        assert_eq!(q.from.unwrap().to_string(), "2025-03-14T00:00:00.000Z");
        assert_eq!(q.to.unwrap().to_string(), "2025-03-14T23:00:00.000Z");
        assert_eq!(q.page_size.get(), 2);
        assert!(serde_json::from_str::<Search>(r#"{"from": 1.5}"#).is_err());
    }
}
