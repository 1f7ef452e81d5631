//! The configuration side: the console's CRUD of extensions, trunks and
//! routes, and the AMI's commands (reloads, shutdown) and dialog listing.
//! The API checks keys, scopes and the allow-list and shapes the answers;
//! what an entry holds, where it is kept and how a change is applied is
//! the [`Admin`] implementation's (the binary's, over its configuration).

use crate::Shared;
use crate::error::ApiError;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// An [`Admin`] method's pending answer (the trait stays object-safe).
pub type AdminFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// What the console's CRUD manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `/console/extensions`: phone accounts, by number.
    Extensions,
    /// `/console/sip-trunk`: carriers and other PBXs, by name.
    Trunks,
    /// `/console/routing`: where dialled numbers go, by name.
    Routes,
}

impl Resource {
    /// Every resource.
    pub const ALL: [Resource; 3] = [Resource::Extensions, Resource::Trunks, Resource::Routes];

    /// The collection's path.
    pub fn path(self) -> &'static str {
        match self {
            Resource::Extensions => "/console/extensions",
            Resource::Trunks => "/console/sip-trunk",
            Resource::Routes => "/console/routing",
        }
    }

    /// The configuration file's name for the entries (`[[extensions]]`,
    /// `[[trunks]]`, `[[routes]]`), also the key of a listing's array.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Extensions => "extensions",
            Resource::Trunks => "trunks",
            Resource::Routes => "routes",
        }
    }

    /// The field that identifies an entry (`number` or `name`).
    pub fn id_field(self) -> &'static str {
        match self {
            Resource::Extensions => "number",
            Resource::Trunks | Resource::Routes => "name",
        }
    }
}

/// What `POST /ami/v1/reload/{what}` reloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reload {
    /// `[[trunks]]`.
    Trunks,
    /// `[[routes]]` (with the `[[groups]]` they ring).
    Routes,
    /// The trunks' `inbound_acl` and `[ami] allows`.
    Acl,
}

impl Reload {
    /// Its name in the path.
    pub fn as_str(self) -> &'static str {
        match self {
            Reload::Trunks => "trunks",
            Reload::Routes => "routes",
            Reload::Acl => "acl",
        }
    }
}

/// One dialog of the transaction layer, as `GET /ami/v1/dialogs` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DialogInfo {
    /// The Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// The peer's tag.
    pub remote_tag: String,
    /// `early` or `confirmed`.
    pub state: &'static str,
    /// Our address with our tag, as written (From of our requests).
    pub local: String,
    /// The peer's address with its tag, as written.
    pub remote: String,
    /// The peer's Contact URI.
    pub remote_target: String,
    /// The route set, in the order our requests carry it.
    pub route_set: Vec<String>,
    /// The CSeq number of the last request we sent in it.
    pub local_cseq: u32,
    /// The CSeq number of the last request the peer sent, if any.
    pub remote_cseq: Option<u32>,
    /// Set up with a `sips` URI.
    pub secure: bool,
    /// The transport of the flow it was set up over (`UDP`, `TCP`, …).
    pub transport: String,
    /// The peer's address on that flow.
    pub peer: String,
}

/// The configuration a running PBX lets the API manage. Entries are JSON
/// objects with the fields of the configuration file's entries; the
/// implementation validates them (errors are [`ApiError::invalid_field`]
/// naming the field), keeps them, applies them, and never returns a
/// secret.
pub trait Admin: Send + Sync + 'static {
    /// Every entry of `resource`, in the order they apply.
    fn list(&self, resource: Resource) -> AdminFuture<'_, Vec<Value>>;
    /// One entry ([`ApiError::not_found`] if there is none).
    fn get(&self, resource: Resource, id: String) -> AdminFuture<'_, Value>;
    /// Adds an entry ([`ApiError::conflict`] if its id is taken); the
    /// entry as stored.
    fn create(&self, resource: Resource, entry: Value) -> AdminFuture<'_, Value>;
    /// Replaces entry `id`; the entry as stored.
    fn update(&self, resource: Resource, id: String, entry: Value) -> AdminFuture<'_, Value>;
    /// Removes entry `id`.
    fn delete(&self, resource: Resource, id: String) -> AdminFuture<'_, ()>;
    /// Reloads `what` from the configuration file and applies it; a
    /// summary of what changed.
    fn reload(&self, what: Reload) -> AdminFuture<'_, Value>;
    /// Begins a graceful shutdown (as SIGTERM does) and returns at once.
    fn shutdown(&self);
    /// The transaction layer's dialogs.
    fn dialogs(&self) -> Vec<DialogInfo>;
}

fn admin(shared: &Shared) -> Result<&Arc<dyn Admin>, ApiError> {
    shared
        .admin
        .as_ref()
        .ok_or_else(|| ApiError::not_found("this server has no configuration to manage"))
}

fn body(body: Result<Json<Value>, JsonRejection>) -> Result<Value, ApiError> {
    let Json(value) = body?;
    if !value.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    Ok(value)
}

/// `GET /console/{resource}`
pub(crate) async fn list(shared: Arc<Shared>, resource: Resource) -> Result<Response, ApiError> {
    let entries = admin(&shared)?.list(resource).await?;
    let mut listing = serde_json::Map::new();
    listing.insert(resource.name().into(), Value::Array(entries));
    Ok(Json(Value::Object(listing)).into_response())
}

/// `GET /console/{resource}/{id}`
pub(crate) async fn one(
    shared: Arc<Shared>,
    resource: Resource,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    Ok(Json(admin(&shared)?.get(resource, id).await?))
}

/// `POST /console/{resource}`: 201 with the entry and its `Location`.
pub(crate) async fn create(
    shared: Arc<Shared>,
    resource: Resource,
    entry: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let entry = admin(&shared)?.create(resource, body(entry)?).await?;
    let id = entry
        .get(resource.id_field())
        .and_then(Value::as_str)
        .unwrap_or_default();
    let location = format!("{}/{}", resource.path(), percent_encode(id));
    let mut response = (StatusCode::CREATED, Json(entry)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(LOCATION, value);
    }
    Ok(response)
}

/// `PUT /console/{resource}/{id}`
pub(crate) async fn update(
    shared: Arc<Shared>,
    resource: Resource,
    id: Result<Path<String>, PathRejection>,
    entry: Result<Json<Value>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Path(id) = id?;
    let entry = body(entry)?;
    Ok(Json(admin(&shared)?.update(resource, id, entry).await?))
}

/// `DELETE /console/{resource}/{id}`: 204.
pub(crate) async fn delete(
    shared: Arc<Shared>,
    resource: Resource,
    id: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    admin(&shared)?.delete(resource, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /ami/v1/reload/{what}`
pub(crate) async fn reload(shared: Arc<Shared>, what: Reload) -> Result<Json<Value>, ApiError> {
    Ok(Json(admin(&shared)?.reload(what).await?))
}

/// `POST /ami/v1/shutdown`: 202, the drain begun.
pub(crate) async fn shutdown(State(shared): State<Arc<Shared>>) -> Result<Response, ApiError> {
    admin(&shared)?.shutdown();
    let body = serde_json::json!({"status": "draining"});
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// The dialogs, as `GET /ami/v1/dialogs` answers.
#[derive(Debug, Serialize)]
pub(crate) struct Dialogs {
    dialogs: Vec<DialogInfo>,
}

/// `GET /ami/v1/dialogs`
pub(crate) async fn dialogs(State(shared): State<Arc<Shared>>) -> Result<Json<Dialogs>, ApiError> {
    let mut dialogs = admin(&shared)?.dialogs();
    dialogs.sort_by(|a, b| {
        (&a.call_id, &a.local_tag, &a.remote_tag).cmp(&(&b.call_id, &b.local_tag, &b.remote_tag))
    });
    Ok(Json(Dialogs { dialogs }))
}

/// `id` as one path segment: everything but unreserved characters
/// (RFC 3986 §2.3) percent-encoded.
fn percent_encode(id: &str) -> String {
    let mut out = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_one_path_segment() {
        assert_eq!(percent_encode("1001"), "1001");
        assert_eq!(percent_encode("uk national/2"), "uk%20national%2F2");
        assert_eq!(percent_encode("+44"), "%2B44");
    }
}
