//! The outbox's SQLite table: deliveries waiting, and dead letters.

use crate::Error;
use crate::payload::{Body, DeliveryId, Payload};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

/// `id` orders a hook's deliveries; AUTOINCREMENT never reuses one, so a
/// delivery enqueued after the newest was deleted still sorts last.
const SCHEMA: &str = "
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    hook TEXT NOT NULL,
    delivery_id TEXT NOT NULL UNIQUE,
    -- 'json', or 'cdr' (multipart with the recording at media_path)
    kind TEXT NOT NULL,
    body BLOB NOT NULL,
    media_path TEXT,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX deliveries_by_hook ON deliveries (hook, dead, id);
";

/// How long a write waits for another connection's to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// One delivery waiting to be sent.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) row: i64,
    pub(crate) delivery: DeliveryId,
    pub(crate) payload: Payload,
    pub(crate) created_ms: i64,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_ms: i64,
}

/// Rows by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) pending: u64,
    pub(crate) dead: u64,
}

/// The table on one connection.
#[derive(Debug)]
pub(crate) struct Store {
    connection: Connection,
}

impl Store {
    /// Opens (or creates) the outbox at `path` in WAL mode, each commit
    /// synced to disk: a delivery survives a crash or a power cut once
    /// enqueued.
    pub(crate) fn open(path: &Path) -> Result<Store, Error> {
        let mut connection =
            Connection::open(path).map_err(Error::database("open the database"))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(Error::database("set the busy timeout"))?;
        let mode: String = connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(Error::database("switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Database {
                context: "switch to WAL mode",
                source: format!("SQLite kept journal mode {mode:?}").into(),
            });
        }
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(Error::database("set synchronous"))?;
        migrate(&mut connection)?;
        Ok(Store { connection })
    }

    /// Rows waiting and dead.
    pub(crate) fn counts(&self) -> Result<Counts, Error> {
        self.connection
            .query_row(
                "SELECT COALESCE(SUM(dead = 0), 0), COALESCE(SUM(dead = 1), 0) FROM deliveries",
                [],
                |row| {
                    Ok(Counts {
                        pending: count(row.get(0)?),
                        dead: count(row.get(1)?),
                    })
                },
            )
            .map_err(Error::database("count the deliveries"))
    }

    /// Waiting deliveries by hook, for the hooks named in the file.
    pub(crate) fn pending_by_hook(&self) -> Result<Vec<(String, u64)>, Error> {
        let mut statement = self
            .connection
            .prepare("SELECT hook, COUNT(*) FROM deliveries WHERE dead = 0 GROUP BY hook")
            .map_err(Error::database("count the deliveries by hook"))?;
        statement
            .query_map([], |row| Ok((row.get(0)?, count(row.get(1)?))))
            .and_then(Iterator::collect)
            .map_err(Error::database("count the deliveries by hook"))
    }

    /// Stores a delivery, due at once.
    pub(crate) fn insert(
        &self,
        hook: &str,
        delivery: &DeliveryId,
        payload: &Payload,
        now_ms: i64,
    ) -> Result<(), Error> {
        let (kind, body, media_path) = match &payload.0 {
            Body::Json(json) => ("json", json, None),
            Body::CdrPush { calllog, recording } => ("cdr", calllog, recording.as_deref()),
        };
        let media_path = media_path.map(|p| p.to_string_lossy().into_owned());
        self.connection
            .execute(
                "INSERT INTO deliveries (hook, delivery_id, kind, body, media_path, created_ms, next_attempt_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![hook, delivery.as_str(), kind, body, media_path, now_ms],
            )
            .map_err(Error::database("store a delivery"))?;
        Ok(())
    }

    /// The oldest waiting delivery of `hook`: the one to send next.
    pub(crate) fn head(&self, hook: &str) -> Result<Option<Pending>, Error> {
        self.connection
            .query_row(
                "SELECT id, delivery_id, kind, body, media_path, created_ms, attempts, next_attempt_ms
                 FROM deliveries WHERE hook = ?1 AND dead = 0 ORDER BY id LIMIT 1",
                [hook],
                |row| {
                    let kind: String = row.get(2)?;
                    let body: Vec<u8> = row.get(3)?;
                    let payload = match kind.as_str() {
                        "cdr" => Body::CdrPush {
                            calllog: body,
                            recording: row.get::<_, Option<String>>(4)?.map(PathBuf::from),
                        },
                        _ => Body::Json(body),
                    };
                    Ok(Pending {
                        row: row.get(0)?,
                        delivery: DeliveryId::stored(row.get(1)?),
                        payload: Payload(payload),
                        created_ms: row.get(5)?,
                        attempts: row.get(6)?,
                        next_attempt_ms: row.get(7)?,
                    })
                },
            )
            .optional()
            .map_err(Error::database("read the next delivery"))
    }

    /// Forgets a delivered row.
    pub(crate) fn delete(&self, row: i64) -> Result<(), Error> {
        self.connection
            .execute("DELETE FROM deliveries WHERE id = ?1", [row])
            .map_err(Error::database("delete a delivered row"))?;
        Ok(())
    }

    /// Notes a failed attempt and when to try again.
    pub(crate) fn reschedule(
        &self,
        row: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
    ) -> Result<(), Error> {
        self.connection
            .execute(
                "UPDATE deliveries SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
                params![row, attempts, next_attempt_ms, error],
            )
            .map_err(Error::database("reschedule a delivery"))?;
        Ok(())
    }

    /// Moves a row to the dead letters: kept, never sent again.
    pub(crate) fn bury(&self, row: i64, attempts: u32, error: &str) -> Result<(), Error> {
        self.connection
            .execute(
                "UPDATE deliveries SET dead = 1, attempts = ?2, last_error = ?3 WHERE id = ?1",
                params![row, attempts, error],
            )
            .map_err(Error::database("dead-letter a delivery"))?;
        Ok(())
    }
}

/// A row count as SQLite returns it (an `i64`, never negative).
fn count(rows: i64) -> u64 {
    u64::try_from(rows).unwrap_or(0)
}

/// Creates the table in a new file, and refuses one made by a newer build.
fn migrate(connection: &mut Connection) -> Result<(), Error> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(Error::database("begin the schema transaction"))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(Error::database("read the schema version"))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA)
                .map_err(Error::database("create the schema"))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(Error::database("write the schema version"))?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(Error::Schema {
                found,
                known: SCHEMA_VERSION,
            });
        }
    }
    tx.commit().map_err(Error::database("commit the schema"))
}
