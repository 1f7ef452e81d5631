//! `data.dir/console.sqlite`: the entries made through the API, one
//! table per kind, each row an entry's JSON document (secrets included:
//! the file is made readable by its owner only, like the configuration
//! file should be). Rows keep the order they were created in.

use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;
use trunkline_api::Resource;

/// The database, one connection behind a lock (changes are few and
/// small).
#[derive(Debug)]
pub(crate) struct Store {
    connection: Mutex<Connection>,
}

/// The table of `resource`.
fn table(resource: Resource) -> &'static str {
    match resource {
        Resource::Extensions => "extensions",
        Resource::Trunks => "trunks",
        Resource::Routes => "routes",
    }
}

impl Store {
    /// Opens (creating) the database at `path`.
    pub(crate) fn open(path: &Path) -> Result<Store, String> {
        let fail = |e: rusqlite::Error| format!("console database {}: {e}", path.display());
        let connection = Connection::open(path).map_err(fail)?;
        restrict(path);
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS extensions (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, document TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS trunks (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, document TEXT NOT NULL);
                 CREATE TABLE IF NOT EXISTS routes (id TEXT PRIMARY KEY, seq INTEGER NOT NULL, document TEXT NOT NULL);",
            )
            .map_err(fail)?;
        Ok(Store {
            connection: Mutex::new(connection),
        })
    }

    fn connection(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.connection
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every row of `resource`: (id, document), oldest first.
    pub(crate) fn load(&self, resource: Resource) -> Result<Vec<(String, String)>, String> {
        let connection = self.connection();
        let sql = format!("SELECT id, document FROM {} ORDER BY seq", table(resource));
        let mut statement = connection.prepare(&sql).map_err(|e| e.to_string())?;
        let rows = statement
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    /// Writes entry `id` of `resource`: in its place when it is there,
    /// last otherwise. Synced before it returns.
    pub(crate) fn put(&self, resource: Resource, id: &str, document: &str) -> Result<(), String> {
        let connection = self.connection();
        let table = table(resource);
        let seq: Option<i64> = connection
            .query_row(
                &format!("SELECT seq FROM {table} WHERE id = ?1"),
                [id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| e.to_string())?;
        let seq = match seq {
            Some(seq) => seq,
            None => connection
                .query_row(
                    &format!("SELECT COALESCE(MAX(seq), 0) + 1 FROM {table}"),
                    [],
                    |row| row.get(0),
                )
                .map_err(|e| e.to_string())?,
        };
        connection
            .execute(
                &format!("INSERT OR REPLACE INTO {table} (id, seq, document) VALUES (?1, ?2, ?3)"),
                params![id, seq, document],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Removes entry `id` of `resource`.
    pub(crate) fn delete(&self, resource: Resource, id: &str) -> Result<(), String> {
        self.connection()
            .execute(
                &format!("DELETE FROM {} WHERE id = ?1", table(resource)),
                [id],
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Owner read and write only: the documents hold passwords.
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(path = %path.display(), "console database left readable: {e}");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;

    #[test]
    fn rows_keep_their_place_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sqlite");
        let store = Store::open(&path).unwrap();
        store.put(Resource::Routes, "a", "{\"v\":1}").unwrap();
        store.put(Resource::Routes, "b", "{\"v\":2}").unwrap();
        store.put(Resource::Routes, "a", "{\"v\":3}").unwrap();
        store.put(Resource::Trunks, "t", "{}").unwrap();
        drop(store);
        let store = Store::open(&path).unwrap();
        let rows = store.load(Resource::Routes).unwrap();
        assert_eq!(
            rows,
            [
                ("a".to_owned(), "{\"v\":3}".to_owned()),
                ("b".to_owned(), "{\"v\":2}".to_owned())
            ]
        );
        store.delete(Resource::Routes, "a").unwrap();
        store.put(Resource::Routes, "a", "{\"v\":4}").unwrap();
        let ids: Vec<String> = store
            .load(Resource::Routes)
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, ["b", "a"]);
        assert_eq!(store.load(Resource::Extensions).unwrap(), []);
        let mode = std::fs::metadata(&path).unwrap().permissions();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(mode.mode() & 0o777, 0o600);
    }
}
