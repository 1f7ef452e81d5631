//! The configuration the API manages while the PBX runs: the console's
//! CRUD of extensions, trunks and routes, kept in `data.dir/console.sqlite`
//! and applied at once, and the AMI's reloads of the configuration file,
//! shutdown and dialog listing (trunkline-api's [`Admin`]).
//!
//! The entries in force are the file's (`"source":"config"`, read-only
//! here) followed by those made through the API (`"source":"api"`, in the
//! order they were made); an id in both is the file's, the API's entry
//! kept aside until the file lets go of it. Every change is checked as a
//! whole configuration would be (`Config::check`), written to the database,
//! then applied: the registrar's accounts, the engine's trunks (and their
//! registrations), the static routes. Calls in progress keep what they
//! started with.

mod store;

use crate::calls::{self, CallEngine, Routes};
use crate::config::{self, Config, ConfigError};
use crate::pbx::LiveUsers;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
pub(crate) use store::Store;
use tokio::sync::{Mutex, Notify};
use trunkline_api::{Admin, AdminFuture, AmiAllowList, ApiError, DialogInfo, Reload, Resource};
use trunkline_engine::{RegistrationChanges, Trunk, TrunkRegistrations};
use trunkline_transaction::{DialogState, Endpoint};

/// The entries made through the API, each kind in the order made.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Entries {
    extensions: Vec<config::Extension>,
    trunks: Vec<config::Trunk>,
    routes: Vec<config::Route>,
}

/// What the three kinds of entry have in common.
trait Entry: Serialize + DeserializeOwned + Clone + PartialEq + Send + Sync + 'static {
    const RESOURCE: Resource;
    /// Its number or name.
    fn id(&self) -> &str;
    fn section(config: &Config) -> &Vec<Self>;
    fn section_mut(config: &mut Config) -> &mut Vec<Self>;
    fn made(api: &Entries) -> &Vec<Self>;
    fn made_mut(api: &mut Entries) -> &mut Vec<Self>;
    /// A replacement that gives no secret keeps `stored`'s.
    fn keep_secret(&mut self, _stored: &Self) {}
    /// What the API asks beyond the file's rules.
    fn check_made(&self) -> Result<(), ApiError> {
        Ok(())
    }
    /// Its secrets, replaced by whether they are set.
    fn hide_secrets(&self, _shown: &mut Map<String, Value>) {}
}

/// An entry kind's lists, in the file and among the API's: `$field` of
/// both.
macro_rules! sections {
    ($field:ident) => {
        fn section(config: &Config) -> &Vec<Self> {
            &config.$field
        }
        fn section_mut(config: &mut Config) -> &mut Vec<Self> {
            &mut config.$field
        }
        fn made(api: &Entries) -> &Vec<Self> {
            &api.$field
        }
        fn made_mut(api: &mut Entries) -> &mut Vec<Self> {
            &mut api.$field
        }
    };
}

impl Entry for config::Extension {
    const RESOURCE: Resource = Resource::Extensions;
    fn id(&self) -> &str {
        &self.number
    }
    sections!(extensions);
    fn keep_secret(&mut self, stored: &Self) {
        if self.password.is_none() && self.ha1.is_none() {
            self.password.clone_from(&stored.password);
            self.ha1.clone_from(&stored.ha1);
        }
    }
    fn check_made(&self) -> Result<(), ApiError> {
        // The file's random password printed at start suits a demo, not
        // an account made by a program.
        match (&self.password, &self.ha1) {
            (None, None) => Err(ApiError::invalid_field(
                "password: an extension needs a password or an ha1",
            )),
            _ => Ok(()),
        }
    }
    fn hide_secrets(&self, shown: &mut Map<String, Value>) {
        shown.remove("password");
        shown.remove("ha1");
        shown.insert("password_set".into(), self.password.is_some().into());
        shown.insert("ha1_set".into(), self.ha1.is_some().into());
    }
}

impl Entry for config::Trunk {
    const RESOURCE: Resource = Resource::Trunks;
    fn id(&self) -> &str {
        &self.name
    }
    sections!(trunks);
    fn keep_secret(&mut self, stored: &Self) {
        if self.password.is_none() && self.username.is_some() {
            self.password.clone_from(&stored.password);
        }
    }
    fn hide_secrets(&self, shown: &mut Map<String, Value>) {
        shown.remove("password");
        shown.insert("password_set".into(), self.password.is_some().into());
    }
}

impl Entry for config::Route {
    const RESOURCE: Resource = Resource::Routes;
    fn id(&self) -> &str {
        &self.name
    }
    sections!(routes);
}

/// The entry as the API shows it: its fields, `source`, secrets hidden.
fn shown<E: Entry>(entry: &E, source: &str) -> Value {
    let mut shown = match serde_json::to_value(entry) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    entry.hide_secrets(&mut shown);
    shown.insert("source".into(), source.into());
    Value::Object(shown)
}

/// An entry from a request's JSON: the fields the API shows but does not
/// take (`source`, `…_set`) ignored, the id taken from the path when the
/// body leaves it out. A fault names its field.
fn parse<E: Entry>(mut value: Value, id: Option<&str>) -> Result<E, ApiError> {
    if let Some(map) = value.as_object_mut() {
        for shown_only in ["source", "password_set", "ha1_set"] {
            map.remove(shown_only);
        }
        if let Some(id) = id {
            map.entry(E::RESOURCE.id_field())
                .or_insert_with(|| Value::String(id.to_owned()));
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().to_string();
        if path == "." {
            ApiError::invalid_field(message)
        } else {
            ApiError::invalid_field(format!("{path}: {message}"))
        }
    })
}

/// The entries in force: the file's, then the API's whose id the file
/// does not use.
pub(crate) fn merge(base: &Config, api: &Entries) -> Config {
    fn add<E: Entry>(merged: &mut Config, api: &Entries) {
        for entry in E::made(api) {
            if !E::section(merged).iter().any(|e| e.id() == entry.id()) {
                E::section_mut(merged).push(entry.clone());
            }
        }
    }
    let mut merged = base.clone();
    add::<config::Extension>(&mut merged, api);
    add::<config::Trunk>(&mut merged, api);
    add::<config::Route>(&mut merged, api);
    merged
}

/// The API's entries the file's of the same id hide, as `kind "id"`.
pub(crate) fn shadowed(base: &Config, api: &Entries) -> Vec<String> {
    fn of<E: Entry>(base: &Config, api: &Entries, out: &mut Vec<String>) {
        for entry in E::made(api) {
            if E::section(base).iter().any(|e| e.id() == entry.id()) {
                out.push(format!("{} {:?}", E::RESOURCE.name(), entry.id()));
            }
        }
    }
    let mut out = Vec::new();
    of::<config::Extension>(base, api, &mut out);
    of::<config::Trunk>(base, api, &mut out);
    of::<config::Route>(base, api, &mut out);
    out
}

/// `error` with an API entry's key written by its id
/// (`routes["out"].to.trunk`) rather than its place in the merged list.
fn relabel(error: &ConfigError, merged: &Config, base: &Config) -> String {
    let ids = |section: &str| -> Vec<&str> {
        match section {
            "extensions" => merged.extensions.iter().map(|e| e.id()).collect(),
            "trunks" => merged.trunks.iter().map(|e| e.id()).collect(),
            _ => merged.routes.iter().map(|e| e.id()).collect(),
        }
    };
    for (section, from_file) in [
        ("extensions", base.extensions.len()),
        ("trunks", base.trunks.len()),
        ("routes", base.routes.len()),
    ] {
        let Some(rest) = error.key.strip_prefix(section) else {
            continue;
        };
        let Some((index, tail)) = rest.strip_prefix('[').and_then(|r| r.split_once(']')) else {
            continue;
        };
        if let Ok(i) = index.parse::<usize>()
            && i >= from_file
            && let Some(id) = ids(section).get(i)
        {
            return format!("{section}[{id:?}]{tail}: {}", error.message);
        }
    }
    error.to_string()
}

/// Checks `api` over `base`; the configuration in force if it passes.
/// The faults of entry `changed` (of kind `E`) are `invalid_field`,
/// naming the field; others (something else pointing at what changed)
/// are `conflict`.
fn checked<E: Entry>(
    base: &Config,
    api: &Entries,
    changed: Option<&str>,
) -> Result<Config, ApiError> {
    let merged = merge(base, api);
    let errors = merged.check();
    if errors.is_empty() {
        return Ok(merged);
    }
    let index = changed.and_then(|id| E::section(&merged).iter().position(|e| e.id() == id));
    if let Some(index) = index {
        let prefix = format!("{}[{index}]", E::RESOURCE.name());
        let fields: Vec<String> = errors
            .iter()
            .filter_map(|e| {
                let field = e.key.strip_prefix(&prefix)?;
                Some(format!("{}: {}", field.trim_start_matches('.'), e.message))
            })
            .collect();
        if !fields.is_empty() {
            return Err(ApiError::invalid_field(fields.join("; ")));
        }
    }
    let faults: Vec<String> = errors.iter().map(|e| relabel(e, &merged, base)).collect();
    Err(ApiError::conflict(format!(
        "the change would leave the configuration with faults: {}",
        faults.join("; ")
    )))
}

/// What a configuration in force turns into: accounts, trunks by name and
/// in order.
struct Live {
    users: trunkline_registrar::StaticUsers,
    trunks: HashMap<String, Arc<Trunk>>,
    ordered: Vec<Arc<Trunk>>,
}

fn build(merged: &Config, generated: &mut HashMap<String, String>) -> Result<Live, String> {
    let trunks = calls::trunks(merged)?;
    Ok(Live {
        users: crate::pbx::users(merged, generated),
        ordered: calls::in_order(merged, &trunks),
        trunks,
    })
}

/// The entries made through the API that `store` holds, each checked
/// with those before it over `base`: one that does not fit (the file
/// changed while the PBX was down) is left out and logged, not deleted.
pub(crate) fn load(store: &Store, base: &Config) -> Result<Entries, String> {
    fn kind<E: Entry>(store: &Store, base: &Config, api: &mut Entries) -> Result<(), String> {
        let what = E::RESOURCE.name();
        for (id, document) in store.load(E::RESOURCE)? {
            let entry: E = match serde_json::from_str(&document) {
                Ok(entry) => entry,
                Err(e) => {
                    tracing::warn!(
                        "console: {what} {id:?} left out: its stored entry does not read: {e}"
                    );
                    continue;
                }
            };
            let mut candidate = api.clone();
            E::made_mut(&mut candidate).push(entry);
            if E::section(base).iter().any(|e| e.id() == id) {
                tracing::warn!(
                    "console: {what} {id:?} is also in the configuration file, whose entry is in force"
                );
                *api = candidate;
                continue;
            }
            let merged = merge(base, &candidate);
            let errors = merged.check();
            if errors.is_empty() {
                *api = candidate;
            } else {
                let faults: Vec<String> =
                    errors.iter().map(|e| relabel(e, &merged, base)).collect();
                tracing::warn!("console: {what} {id:?} left out: {}", faults.join("; "));
            }
        }
        Ok(())
    }
    let mut api = Entries::default();
    kind::<config::Extension>(store, base, &mut api)?;
    kind::<config::Trunk>(store, base, &mut api)?;
    kind::<config::Route>(store, base, &mut api)?;
    Ok(api)
}

/// What changes hold.
struct Current {
    /// The configuration file as last read.
    base: Config,
    api: Entries,
    /// Passwords made at start for the file's extensions without one.
    generated: HashMap<String, String>,
    registrations: Option<TrunkRegistrations>,
}

/// The PBX's configuration as the API manages it.
pub(crate) struct Console {
    /// The file given with `--config`, read again by reloads.
    file: Option<PathBuf>,
    store: Store,
    /// Changes one at a time.
    current: Mutex<Current>,
    users: LiveUsers,
    registrar: Arc<crate::pbx::Registrar>,
    routes: Routes,
    engine: CallEngine,
    endpoint: Endpoint,
    allows: OnceLock<AmiAllowList>,
    shutdown: Notify,
}

/// The parts a console drives.
pub(crate) struct Parts {
    pub(crate) file: Option<PathBuf>,
    pub(crate) store: Store,
    pub(crate) base: Config,
    pub(crate) api: Entries,
    pub(crate) generated: HashMap<String, String>,
    pub(crate) users: LiveUsers,
    pub(crate) registrar: Arc<crate::pbx::Registrar>,
    pub(crate) routes: Routes,
    pub(crate) engine: CallEngine,
    pub(crate) endpoint: Endpoint,
}

fn internal(what: &str) -> impl FnOnce(String) -> ApiError + '_ {
    move |e| {
        tracing::error!("console: {what}: {e}");
        ApiError::internal(format!("{what} failed; see the log"))
    }
}

impl Console {
    pub(crate) fn new(parts: Parts) -> Console {
        Console {
            file: parts.file,
            store: parts.store,
            current: Mutex::new(Current {
                base: parts.base,
                api: parts.api,
                generated: parts.generated,
                registrations: None,
            }),
            users: parts.users,
            registrar: parts.registrar,
            routes: parts.routes,
            engine: parts.engine,
            endpoint: parts.endpoint,
            allows: OnceLock::new(),
            shutdown: Notify::new(),
        }
    }

    /// The API's allow-list, which `reload/acl` replaces.
    pub(crate) fn set_allow_list(&self, allows: AmiAllowList) {
        let _ = self.allows.set(allows);
    }

    /// Starts the trunks' registrations.
    pub(crate) async fn register_trunks(&self) {
        self.current.lock().await.registrations = Some(self.engine.register_trunks());
    }

    /// Unregisters from the trunks.
    pub(crate) async fn unregister_trunks(&self) {
        let registrations = self.current.lock().await.registrations.take();
        if let Some(registrations) = registrations {
            registrations.stop().await;
        }
    }

    /// Until `POST /ami/v1/shutdown` asks for a shutdown.
    pub(crate) async fn shutdown_asked(&self) {
        self.shutdown.notified().await;
    }

    /// Puts `merged` in force.
    async fn apply(
        &self,
        current: &mut Current,
        merged: &Config,
        live: Live,
    ) -> RegistrationChanges {
        self.users.set(live.users);
        self.engine.set_trunks(live.ordered.clone());
        self.routes.set(merged, &live.trunks);
        match current.registrations.as_mut() {
            Some(registrations) => registrations.update(&live.ordered).await,
            None => RegistrationChanges::default(),
        }
    }

    async fn list<E: Entry>(&self) -> Vec<Value> {
        let current = self.current.lock().await;
        let base = E::section(&current.base);
        let made = E::made(&current.api)
            .iter()
            .filter(|entry| !base.iter().any(|b| b.id() == entry.id()))
            .map(|entry| shown(entry, "api"));
        base.iter()
            .map(|entry| shown(entry, "config"))
            .chain(made)
            .collect()
    }

    async fn get<E: Entry>(&self, id: &str) -> Result<Value, ApiError> {
        let current = self.current.lock().await;
        if let Some(entry) = E::section(&current.base).iter().find(|e| e.id() == id) {
            return Ok(shown(entry, "config"));
        }
        E::made(&current.api)
            .iter()
            .find(|e| e.id() == id)
            .map(|entry| shown(entry, "api"))
            .ok_or_else(|| not_found::<E>(id))
    }

    /// Checks `api`, stores `entry` (or deletes `id` when `None`), and
    /// applies the result.
    async fn change<E: Entry>(
        &self,
        current: &mut Current,
        api: Entries,
        id: &str,
        entry: Option<&E>,
    ) -> Result<(), ApiError> {
        let merged = checked::<E>(&current.base, &api, entry.map(|_| id))?;
        let live = build(&merged, &mut current.generated).map_err(ApiError::invalid_field)?;
        let stored = match entry {
            Some(entry) => serde_json::to_string(entry)
                .map_err(|e| e.to_string())
                .and_then(|document| {
                    tokio::task::block_in_place(|| self.store.put(E::RESOURCE, id, &document))
                }),
            None => tokio::task::block_in_place(|| self.store.delete(E::RESOURCE, id)),
        };
        stored.map_err(internal("writing the console database"))?;
        current.api = api;
        let changes = self.apply(current, &merged, live).await;
        tracing::info!(kind = E::RESOURCE.name(), id, ?changes, "console: applied");
        Ok(())
    }

    async fn create<E: Entry>(&self, body: Value) -> Result<Value, ApiError> {
        let entry: E = parse(body, None)?;
        entry.check_made()?;
        let id = entry.id().to_owned();
        let mut current = self.current.lock().await;
        let taken = E::section(&current.base).iter().any(|e| e.id() == id)
            || E::made(&current.api).iter().any(|e| e.id() == id);
        if taken {
            return Err(ApiError::conflict(format!(
                "{} {id:?} exists",
                E::RESOURCE.name()
            )));
        }
        let mut api = current.api.clone();
        E::made_mut(&mut api).push(entry.clone());
        self.change(&mut current, api, &id, Some(&entry)).await?;
        Ok(shown(&entry, "api"))
    }

    async fn update<E: Entry>(&self, id: &str, body: Value) -> Result<Value, ApiError> {
        let mut entry: E = parse(body, Some(id))?;
        if entry.id() != id {
            let field = E::RESOURCE.id_field();
            return Err(ApiError::invalid_field(format!(
                "{field}: {:?} is not {id:?}: an entry keeps its {field} (delete it and create another)",
                entry.id()
            )));
        }
        let mut current = self.current.lock().await;
        read_only::<E>(&current.base, id)?;
        let index = E::made(&current.api)
            .iter()
            .position(|e| e.id() == id)
            .ok_or_else(|| not_found::<E>(id))?;
        entry.keep_secret(&E::made(&current.api)[index]);
        entry.check_made()?;
        let mut api = current.api.clone();
        E::made_mut(&mut api)[index] = entry.clone();
        self.change(&mut current, api, id, Some(&entry)).await?;
        Ok(shown(&entry, "api"))
    }

    async fn delete<E: Entry>(&self, id: &str) -> Result<(), ApiError> {
        let mut current = self.current.lock().await;
        read_only::<E>(&current.base, id)?;
        let index = E::made(&current.api)
            .iter()
            .position(|e| e.id() == id)
            .ok_or_else(|| not_found::<E>(id))?;
        let mut api = current.api.clone();
        E::made_mut(&mut api).remove(index);
        self.change::<E>(&mut current, api, id, None).await?;
        if E::RESOURCE == Resource::Extensions {
            // The account is gone: so are its phones' registrations.
            let now = std::time::SystemTime::now();
            let forgotten = self.registrar.forget_user(id, now).await;
            tracing::info!(
                extension = id,
                bindings = forgotten.len(),
                "console: unregistered"
            );
        }
        Ok(())
    }

    async fn reload(&self, what: Reload) -> Result<Value, ApiError> {
        let Some(file) = &self.file else {
            return Err(ApiError::no_config_file(
                "the PBX runs on its built-in configuration: there is no file to read again (start it with --config FILE)",
            ));
        };
        let shown_file = file.display().to_string();
        let text = tokio::fs::read_to_string(file)
            .await
            .map_err(|e| ApiError::invalid_config(format!("{shown_file}: cannot read: {e}")))?;
        let fresh = Config::parse(&text).map_err(|errors| {
            let faults: Vec<String> = errors.iter().map(ToString::to_string).collect();
            ApiError::invalid_config(format!("{shown_file}: {}", faults.join("; ")))
        })?;
        let mut current = self.current.lock().await;
        let mut base = current.base.clone();
        match what {
            Reload::Trunks => base.trunks = fresh.trunks,
            Reload::Routes => {
                base.routes = fresh.routes;
                base.groups = fresh.groups;
            }
            Reload::Acl => {
                for trunk in &mut base.trunks {
                    if let Some(new) = fresh.trunks.iter().find(|t| t.name == trunk.name) {
                        trunk.inbound_acl.clone_from(&new.inbound_acl);
                    }
                }
                base.ami = fresh.ami;
            }
        }
        let merged = merge(&base, &current.api);
        let errors = merged.check();
        if !errors.is_empty() {
            let faults: Vec<String> = errors.iter().map(|e| relabel(e, &merged, &base)).collect();
            return Err(ApiError::invalid_config(format!(
                "{shown_file} with the console's entries: {}",
                faults.join("; ")
            )));
        }
        let live = build(&merged, &mut current.generated).map_err(ApiError::invalid_config)?;
        let before = merge(&current.base, &current.api);
        let mut summary = match what {
            Reload::Trunks => diff(&before.trunks, &merged.trunks, |a, b| a == b),
            Reload::Routes => diff(&before.routes, &merged.routes, |a, b| a == b),
            Reload::Acl => diff(&before.trunks, &merged.trunks, |a, b| {
                a.inbound_acl == b.inbound_acl
            }),
        };
        summary.insert("reloaded".into(), what.as_str().into());
        summary.insert("shadowed".into(), json!(shadowed(&base, &current.api)));
        current.base = base;
        let changes = self.apply(&mut current, &merged, live).await;
        summary.insert(
            "registrations".into(),
            json!({"started": changes.started, "restarted": changes.restarted, "stopped": changes.stopped}),
        );
        if what == Reload::Acl {
            let allows: Vec<ipnet::IpNet> = merged.ami.allows.iter().map(|net| net.0).collect();
            if let Some(list) = self.allows.get() {
                list.set(allows.clone());
            }
            let allows: Vec<String> = allows.iter().map(ToString::to_string).collect();
            summary.insert("ami_allows".into(), json!(allows));
        }
        let logged = Value::Object(summary.clone());
        tracing::info!(reloaded = what.as_str(), summary = %logged, "configuration reloaded");
        Ok(Value::Object(summary))
    }
}

/// The ids `after` adds to `before`, changes (`same` says they differ)
/// and removes.
fn diff<E: Entry>(before: &[E], after: &[E], same: impl Fn(&E, &E) -> bool) -> Map<String, Value> {
    let mut added = Vec::new();
    let mut changed = Vec::new();
    for entry in after {
        match before.iter().find(|b| b.id() == entry.id()) {
            None => added.push(entry.id()),
            Some(old) if !same(old, entry) => changed.push(entry.id()),
            Some(_) => {}
        }
    }
    let removed: Vec<&str> = before
        .iter()
        .filter(|b| !after.iter().any(|a| a.id() == b.id()))
        .map(|b| b.id())
        .collect();
    let mut summary = Map::new();
    summary.insert("added".into(), json!(added));
    summary.insert("changed".into(), json!(changed));
    summary.insert("removed".into(), json!(removed));
    summary
}

fn not_found<E: Entry>(id: &str) -> ApiError {
    ApiError::not_found(format!("no {} entry {id:?}", E::RESOURCE.name()))
}

/// 409 `read_only` when `id` is the file's.
fn read_only<E: Entry>(base: &Config, id: &str) -> Result<(), ApiError> {
    if E::section(base).iter().any(|e| e.id() == id) {
        let what = E::RESOURCE.name();
        let reload = match E::RESOURCE {
            Resource::Extensions => "restart the PBX".to_owned(),
            Resource::Trunks => "POST /ami/v1/reload/trunks".to_owned(),
            Resource::Routes => "POST /ami/v1/reload/routes".to_owned(),
        };
        return Err(ApiError::read_only(format!(
            "{what} {id:?} comes from the configuration file: edit it there and {reload}"
        )));
    }
    Ok(())
}

/// Calls `$method::<E>(args)` for the entry type of `$resource`.
macro_rules! by_kind {
    ($resource:expr, $self:ident . $method:ident ( $($arg:expr),* )) => {
        match $resource {
            Resource::Extensions => $self.$method::<config::Extension>($($arg),*).await,
            Resource::Trunks => $self.$method::<config::Trunk>($($arg),*).await,
            Resource::Routes => $self.$method::<config::Route>($($arg),*).await,
        }
    };
}

impl Admin for Console {
    fn list(&self, resource: Resource) -> AdminFuture<'_, Vec<Value>> {
        Box::pin(async move { Ok(by_kind!(resource, self.list())) })
    }

    fn get(&self, resource: Resource, id: String) -> AdminFuture<'_, Value> {
        Box::pin(async move { by_kind!(resource, self.get(&id)) })
    }

    fn create(&self, resource: Resource, entry: Value) -> AdminFuture<'_, Value> {
        Box::pin(async move { by_kind!(resource, self.create(entry)) })
    }

    fn update(&self, resource: Resource, id: String, entry: Value) -> AdminFuture<'_, Value> {
        Box::pin(async move { by_kind!(resource, self.update(&id, entry)) })
    }

    fn delete(&self, resource: Resource, id: String) -> AdminFuture<'_, ()> {
        Box::pin(async move { by_kind!(resource, self.delete(&id)) })
    }

    fn reload(&self, what: Reload) -> AdminFuture<'_, Value> {
        Box::pin(Console::reload(self, what))
    }

    fn shutdown(&self) {
        tracing::info!("shutdown asked through the AMI");
        self.shutdown.notify_one();
    }

    fn dialogs(&self) -> Vec<DialogInfo> {
        self.endpoint
            .dialogs()
            .iter()
            .map(|dialog| {
                let id = dialog.id();
                DialogInfo {
                    call_id: id.call_id.to_string(),
                    local_tag: id.local_tag.to_string(),
                    remote_tag: id.remote_tag.to_string(),
                    state: match dialog.state() {
                        DialogState::Early => "early",
                        DialogState::Confirmed => "confirmed",
                    },
                    local: dialog.local().to_owned(),
                    remote: dialog.remote().to_owned(),
                    remote_target: dialog.remote_target().to_owned(),
                    route_set: dialog.route_set().iter().map(ToString::to_string).collect(),
                    local_cseq: dialog.local_seq(),
                    remote_cseq: dialog.remote_seq(),
                    secure: dialog.is_secure(),
                    transport: dialog.flow().transport.to_string(),
                    peer: dialog.flow().addr.to_string(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
