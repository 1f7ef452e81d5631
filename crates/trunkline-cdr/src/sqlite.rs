//! The embedded store: one SQLite file in WAL mode.
//!
//! ```sql
//! CREATE TABLE cdr (
//!     id                  TEXT PRIMARY KEY,
//!     call_id             TEXT NOT NULL,
//!     caller_number       TEXT NOT NULL,
//!     caller_name         TEXT,
//!     callee_number       TEXT NOT NULL,
//!     callee_name         TEXT,
//!     source_channel      TEXT NOT NULL,
//!     destination_channel TEXT,
//!     direction           TEXT NOT NULL,    -- 'inbound' | 'outbound' | 'internal'
//!     start_time          INTEGER NOT NULL, -- Unix milliseconds, UTC
//!     ring_time           INTEGER,
//!     answer_time         INTEGER,
//!     end_time            INTEGER NOT NULL,
//!     duration            INTEGER NOT NULL, -- seconds
//!     billsec             INTEGER NOT NULL, -- seconds
//!     disposition         TEXT NOT NULL,    -- 'ANSWERED' | 'NO ANSWER' | 'BUSY' | 'FAILED'
//!     hangup_cause        TEXT NOT NULL,
//!     hangup_sip_status   INTEGER,
//!     hangup_reason       TEXT,
//!     hangup_by           TEXT NOT NULL,    -- 'caller' | 'callee' | 'pbx'
//!     recording           TEXT,
//!     sip_flow            TEXT NOT NULL,    -- JSON array, as in the record's JSON
//!     sip_flow_omitted    INTEGER NOT NULL
//! );
//! -- One index per filter, each ending in the paging key, so a filtered
//! -- page is read in order from its index without sorting.
//! CREATE INDEX cdr_start       ON cdr (start_time, id);
//! CREATE INDEX cdr_caller      ON cdr (caller_number, start_time, id);
//! CREATE INDEX cdr_callee      ON cdr (callee_number, start_time, id);
//! CREATE INDEX cdr_disposition ON cdr (disposition, start_time, id);
//! CREATE INDEX cdr_direction   ON cdr (direction, start_time, id);
//! ```
//!
//! The schema version is SQLite's `user_version` (1).

use crate::model::{Cdr, CdrId, Hangup, Party};
use crate::store::{CdrQuery, CdrStore, Cursor, Error, Order, Page};
use crate::timestamp::Timestamp;
use rusqlite::types::{FromSql, Value};
use rusqlite::{Connection, Row, TransactionBehavior, params_from_iter};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS cdr (
    id                  TEXT PRIMARY KEY,
    call_id             TEXT NOT NULL,
    caller_number       TEXT NOT NULL,
    caller_name         TEXT,
    callee_number       TEXT NOT NULL,
    callee_name         TEXT,
    source_channel      TEXT NOT NULL,
    destination_channel TEXT,
    direction           TEXT NOT NULL,
    start_time          INTEGER NOT NULL,
    ring_time           INTEGER,
    answer_time         INTEGER,
    end_time            INTEGER NOT NULL,
    duration            INTEGER NOT NULL,
    billsec             INTEGER NOT NULL,
    disposition         TEXT NOT NULL,
    hangup_cause        TEXT NOT NULL,
    hangup_sip_status   INTEGER,
    hangup_reason       TEXT,
    hangup_by           TEXT NOT NULL,
    recording           TEXT,
    sip_flow            TEXT NOT NULL,
    sip_flow_omitted    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS cdr_start       ON cdr (start_time, id);
CREATE INDEX IF NOT EXISTS cdr_caller      ON cdr (caller_number, start_time, id);
CREATE INDEX IF NOT EXISTS cdr_callee      ON cdr (callee_number, start_time, id);
CREATE INDEX IF NOT EXISTS cdr_disposition ON cdr (disposition, start_time, id);
CREATE INDEX IF NOT EXISTS cdr_direction   ON cdr (direction, start_time, id);
";

/// The columns in the order `INSERT` writes and `read_row` reads them.
const COLUMNS: &str = "id, call_id, caller_number, caller_name, callee_number, callee_name, \
    source_channel, destination_channel, direction, start_time, ring_time, answer_time, \
    end_time, duration, billsec, disposition, hangup_cause, hangup_sip_status, hangup_reason, \
    hangup_by, recording, sip_flow, sip_flow_omitted";

/// How long a write waits for another connection's (another process's)
/// write to finish before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Records in an SQLite file (SQLite built in, no server).
///
/// WAL mode lets queries run while calls are stored, and lets several
/// stores (threads, processes, an administrator's `sqlite3`) open the file
/// at once; a write waits up to 5 seconds for another's to finish. Each
/// commit is synced to disk (`synchronous = FULL`): an ended call's record
/// survives a power cut once [`insert_batch`](CdrStore::insert_batch)
/// returns, and batching spreads that sync over many records.
///
/// Writes and reads have a connection each, so a long export does not hold
/// up storing the calls that end meanwhile. Everything runs on the
/// caller's thread; see [`CdrStore`] for calling it from async code.
///
/// ```
/// # fn main() -> Result<(), trunkline_cdr::Error> {
/// use std::time::{Duration, SystemTime};
/// use trunkline_cdr::*;
///
/// # let dir = std::env::temp_dir().join(format!("trunkline-cdr-doc-{}", CdrId::generate()));
/// # std::fs::create_dir_all(&dir).expect("temp dir");
/// let store = SqliteCdrStore::open(dir.join("cdr.db"))?;
/// let start = SystemTime::now();
/// let ended: Vec<Cdr> = (0..250)
///     .map(|n| {
///         let call = CdrBuilder::new(CallStart {
///             id: CdrId::generate(),
///             call_id: format!("{n}@192.168.1.20"),
///             caller: Party::new("1001", Some("Alice")),
///             callee: Party::new(format!("20{}", n % 2), None),
///             source_channel: "extension/1001".into(),
///             direction: Direction::Internal,
///             time: start + Duration::from_secs(n),
///         });
///         let busy = Hangup { cause: HangupCause::Rejected, sip_status: Some(486), reason: None, by: Side::Callee };
///         call.end(start + Duration::from_secs(n + 5), busy)
///     })
///     .collect();
/// store.insert_batch(&ended)?; // one transaction, one sync
///
/// // Bob's (201) busy calls, newest first, 100 a page.
/// let mut query = CdrQuery {
///     party: Some("201".into()),
///     disposition: Some(Disposition::Busy),
///     order: Order::NewestFirst,
///     page_size: PageSize::new(100)?,
///     ..CdrQuery::default()
/// };
/// let mut pages = Vec::new();
/// loop {
///     let page = store.query(&query)?;
///     pages.push(page.records.len());
///     let Some(next) = page.next else { break };
///     query.after = Some(next);
/// }
/// assert_eq!(pages, [100, 25]);
/// # drop(store);
/// # std::fs::remove_dir_all(&dir).expect("temp dir");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SqliteCdrStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
}

fn backend(context: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| Error::Backend {
        context,
        source: Box::new(e),
    }
}

fn connect(path: &Path) -> Result<Connection, Error> {
    let connection = Connection::open(path).map_err(backend("open the database"))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(backend("set the busy timeout"))?;
    Ok(connection)
}

fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    // A panic while the lock was held cannot leave a transaction open (it
    // rolls back on drop), so the connection is still good.
    connection.lock().unwrap_or_else(|p| p.into_inner())
}

impl SqliteCdrStore {
    /// Opens the database at `path`, creating the file and the table if
    /// needed, in WAL mode.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteCdrStore, Error> {
        let path = path.as_ref();
        let mut writer = connect(path)?;
        let mode: String = writer
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(backend("switch to WAL mode"))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Backend {
                context: "switch to WAL mode",
                source: format!("SQLite kept journal mode {mode:?}").into(),
            });
        }
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(backend("set synchronous"))?;
        migrate(&mut writer)?;
        let reader = connect(path)?;
        // The reader only reads; SQLite holds it to that.
        reader
            .pragma_update(None, "query_only", true)
            .map_err(backend("make the reader read-only"))?;
        Ok(SqliteCdrStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
        })
    }
}

/// Creates the schema in a new database, and refuses one made by a newer
/// build. Immediate, so stores opening a new file at once create it once.
fn migrate(connection: &mut Connection) -> Result<(), Error> {
    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(backend("begin the schema transaction"))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(backend("read the schema version"))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA)
                .map_err(backend("create the schema"))?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(backend("write the schema version"))?;
        }
        SCHEMA_VERSION => {}
        found => {
            return Err(Error::Schema {
                found,
                known: SCHEMA_VERSION,
            });
        }
    }
    tx.commit().map_err(backend("commit the schema"))
}

impl CdrStore for SqliteCdrStore {
    fn insert_batch(&self, records: &[Cdr]) -> Result<(), Error> {
        if records.is_empty() {
            return Ok(());
        }
        let mut connection = lock(&self.writer);
        // Immediate: take the write lock up front, waiting for it under the
        // busy timeout, rather than fail midway when another writer has it.
        let tx = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(backend("begin a transaction"))?;
        {
            let mut insert = tx
                .prepare_cached(&format!(
                    "INSERT INTO cdr ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
                     ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
                ))
                .map_err(backend("prepare the insert"))?;
            for record in records {
                insert
                    .execute(params_from_iter(row_values(record)?))
                    .map_err(|e| match e.sqlite_error() {
                        Some(f)
                            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                        {
                            Error::Duplicate(record.id.clone())
                        }
                        _ => backend("insert a record")(e),
                    })?;
            }
        }
        tx.commit().map_err(backend("commit the records"))
    }

    fn get(&self, id: &CdrId) -> Result<Option<Cdr>, Error> {
        let connection = lock(&self.reader);
        let mut select = connection
            .prepare_cached(&format!("SELECT {COLUMNS} FROM cdr WHERE id = ?1"))
            .map_err(backend("prepare the lookup"))?;
        let mut rows = select
            .query([id.as_str()])
            .map_err(backend("look a record up"))?;
        rows.next()
            .map_err(backend("look a record up"))?
            .map(read_row)
            .transpose()
    }

    fn query(&self, query: &CdrQuery) -> Result<Page, Error> {
        let (sql, args) = select_page(query);
        let connection = lock(&self.reader);
        let mut select = connection
            .prepare_cached(&sql)
            .map_err(backend("prepare the query"))?;
        let mut rows = select
            .query(params_from_iter(args))
            .map_err(backend("run the query"))?;
        let size = query.page_size.get();
        let mut records = Vec::with_capacity(size.min(1000));
        let mut more = false;
        while let Some(row) = rows.next().map_err(backend("read the results"))? {
            if records.len() == size {
                more = true;
                break;
            }
            records.push(read_row(row)?);
        }
        let next = if more {
            records.last().map(Cursor::after)
        } else {
            None
        };
        Ok(Page { records, next })
    }
}

/// The SQL and arguments of one page of `query`: one row more than the
/// page holds, to learn whether another page follows without asking again.
fn select_page(query: &CdrQuery) -> (String, Vec<Value>) {
    // Every condition but the party's, which is an OR over two columns.
    let mut conditions = Vec::new();
    let mut args = Vec::new();
    if let Some(from) = query.from {
        conditions.push("start_time >= ?");
        args.push(Value::Integer(from.unix_millis()));
    }
    if let Some(to) = query.to {
        conditions.push("start_time < ?");
        args.push(Value::Integer(to.unix_millis()));
    }
    if let Some(disposition) = query.disposition {
        conditions.push("disposition = ?");
        args.push(Value::Text(disposition.as_str().to_owned()));
    }
    if let Some(direction) = query.direction {
        conditions.push("direction = ?");
        args.push(Value::Text(direction.as_str().to_owned()));
    }
    let (after, order) = match query.order {
        Order::OldestFirst => ("(start_time, id) > (?, ?)", "start_time ASC, id ASC"),
        Order::NewestFirst => ("(start_time, id) < (?, ?)", "start_time DESC, id DESC"),
    };
    if let Some(cursor) = &query.after {
        conditions.push(after);
        args.push(Value::Integer(cursor.start_time.unix_millis()));
        args.push(Value::Text(cursor.id.as_str().to_owned()));
    }
    // The page size is at most 10,000, so the +1 neither overflows nor
    // leaves i64.
    let limit = Value::Integer(query.page_size.get() as i64 + 1);
    let Some(party) = &query.party else {
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        args.push(limit);
        return (
            format!("SELECT {COLUMNS} FROM cdr{filter} ORDER BY {order} LIMIT ?"),
            args,
        );
    };
    // `caller_number = ? OR callee_number = ?` would read every call of
    // the party and sort them all before taking a page. Instead each side
    // reads its first page from its own index, in order, and only those
    // (twice a page at most) are merged and sorted: the cost of a page
    // does not grow with the party's history.
    let rest: String = conditions.iter().map(|c| format!(" AND {c}")).collect();
    let side = |column: &str| {
        format!(
            "SELECT r FROM (SELECT rowid AS r FROM cdr WHERE {column} = ?{rest} \
             ORDER BY {order} LIMIT ?)"
        )
    };
    let mut all_args = Vec::with_capacity(2 * args.len() + 5);
    for _ in 0..2 {
        all_args.push(Value::Text(party.clone()));
        all_args.extend(args.iter().cloned());
        all_args.push(limit.clone());
    }
    all_args.push(limit);
    (
        format!(
            "SELECT {COLUMNS} FROM cdr WHERE rowid IN ({} UNION ALL {}) \
             ORDER BY {order} LIMIT ?",
            side("caller_number"),
            side("callee_number"),
        ),
        all_args,
    )
}

fn optional_time(time: Option<Timestamp>) -> Value {
    time.map_or(Value::Null, |t| Value::Integer(t.unix_millis()))
}

fn optional_text(text: &Option<String>) -> Value {
    text.clone().map_or(Value::Null, Value::Text)
}

fn integer(value: u64, id: &CdrId) -> Result<Value, Error> {
    i64::try_from(value)
        .map(Value::Integer)
        .map_err(|_| Error::Backend {
            context: "insert a record",
            source: format!("record {id}: {value} does not fit an SQLite integer").into(),
        })
}

/// A record as the values of [`COLUMNS`].
fn row_values(cdr: &Cdr) -> Result<[Value; 23], Error> {
    let sip_flow = serde_json::to_string(&cdr.sip_flow).map_err(|e| Error::Backend {
        context: "write the SIP flow as JSON",
        source: Box::new(e),
    })?;
    Ok([
        Value::Text(cdr.id.as_str().to_owned()),
        Value::Text(cdr.call_id.clone()),
        Value::Text(cdr.caller.number.clone()),
        optional_text(&cdr.caller.name),
        Value::Text(cdr.callee.number.clone()),
        optional_text(&cdr.callee.name),
        Value::Text(cdr.source_channel.clone()),
        optional_text(&cdr.destination_channel),
        Value::Text(cdr.direction.as_str().to_owned()),
        Value::Integer(cdr.start_time.unix_millis()),
        optional_time(cdr.ring_time),
        optional_time(cdr.answer_time),
        Value::Integer(cdr.end_time.unix_millis()),
        integer(cdr.duration, &cdr.id)?,
        integer(cdr.billsec, &cdr.id)?,
        Value::Text(cdr.disposition.as_str().to_owned()),
        Value::Text(cdr.hangup.cause.as_str().to_owned()),
        cdr.hangup
            .sip_status
            .map_or(Value::Null, |s| Value::Integer(s.into())),
        optional_text(&cdr.hangup.reason),
        Value::Text(cdr.hangup.by.as_str().to_owned()),
        optional_text(&cdr.recording),
        Value::Text(sip_flow),
        integer(cdr.sip_flow_omitted, &cdr.id)?,
    ])
}

/// Column `index` of `row`, as `T`; a value no record could hold (edited
/// by hand, say) is [`Error::Corrupt`] naming the row.
fn column<T: FromSql>(row: &Row<'_>, index: usize, id: &str) -> Result<T, Error> {
    row.get(index).map_err(|e| Error::Corrupt {
        id: id.to_owned(),
        problem: format!("column {index}: {e}"),
    })
}

/// Reads a row of [`COLUMNS`] back into a record.
fn read_row(row: &Row<'_>) -> Result<Cdr, Error> {
    let id: String = row.get(0).map_err(backend("read a record"))?;
    let corrupt = |problem: String| Error::Corrupt {
        id: id.clone(),
        problem,
    };
    let time = |millis: i64| {
        Timestamp::from_unix_millis(millis)
            .ok_or_else(|| corrupt(format!("{millis} ms is outside years 0000 to 9999")))
    };
    let name = |index: usize| -> Result<String, Error> { column(row, index, &id) };
    let count = |index: usize| -> Result<u64, Error> {
        let n: i64 = column(row, index, &id)?;
        u64::try_from(n).map_err(|_| corrupt(format!("column {index} is negative: {n}")))
    };
    let optional_time = |index: usize| -> Result<Option<Timestamp>, Error> {
        column::<Option<i64>>(row, index, &id)?
            .map(time)
            .transpose()
    };
    Ok(Cdr {
        call_id: column(row, 1, &id)?,
        caller: Party {
            number: column(row, 2, &id)?,
            name: column(row, 3, &id)?,
        },
        callee: Party {
            number: column(row, 4, &id)?,
            name: column(row, 5, &id)?,
        },
        source_channel: column(row, 6, &id)?,
        destination_channel: column(row, 7, &id)?,
        direction: name(8)?.parse().map_err(|e| corrupt(format!("{e}")))?,
        start_time: time(column(row, 9, &id)?)?,
        ring_time: optional_time(10)?,
        answer_time: optional_time(11)?,
        end_time: time(column(row, 12, &id)?)?,
        duration: count(13)?,
        billsec: count(14)?,
        disposition: name(15)?.parse().map_err(|e| corrupt(format!("{e}")))?,
        hangup: Hangup {
            cause: name(16)?.parse().map_err(|e| corrupt(format!("{e}")))?,
            sip_status: column(row, 17, &id)?,
            reason: column(row, 18, &id)?,
            by: name(19)?.parse().map_err(|e| corrupt(format!("{e}")))?,
        },
        recording: column(row, 20, &id)?,
        sip_flow: serde_json::from_str(&column::<String>(row, 21, &id)?)
            .map_err(|e| corrupt(format!("SIP flow: {e}")))?,
        sip_flow_omitted: count(22)?,
        id: CdrId::new(id),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;
    use crate::model::{Direction, Disposition};
    use crate::store::PageSize;

    /// Every filter, alone and with the cursor, in both orders, is read
    /// through an index in the page's order: no full scan, no sort.
    #[test]
    fn every_query_uses_an_index_in_order() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch(SCHEMA).unwrap();
        let cursor = Cursor {
            start_time: Timestamp::from_unix_millis(0).unwrap(),
            id: CdrId::new("x"),
        };
        let t = Timestamp::from_unix_millis(0);
        let filters = [
            CdrQuery::default(),
            CdrQuery {
                from: t,
                to: t,
                ..CdrQuery::default()
            },
            CdrQuery {
                party: Some("1001".into()),
                ..CdrQuery::default()
            },
            CdrQuery {
                disposition: Some(Disposition::Busy),
                ..CdrQuery::default()
            },
            CdrQuery {
                direction: Some(Direction::Inbound),
                from: t,
                ..CdrQuery::default()
            },
        ];
        for filter in filters {
            for order in [Order::OldestFirst, Order::NewestFirst] {
                for after in [None, Some(cursor.clone())] {
                    let query = CdrQuery {
                        order,
                        after,
                        page_size: PageSize::MAX,
                        ..filter.clone()
                    };
                    let (sql, args) = select_page(&query);
                    let mut explain = connection
                        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                        .unwrap();
                    let plan: Vec<String> = explain
                        .query_map(params_from_iter(args), |row| row.get(3))
                        .unwrap()
                        .collect::<Result<_, _>>()
                        .unwrap();
                    for step in &plan {
                        assert!(
                            step.contains("USING INDEX") || !step.contains("SCAN cdr"),
                            "a full scan: {sql}: {plan:?}"
                        );
                    }
                    let sorts = plan.iter().filter(|s| s.contains("TEMP B-TREE")).count();
                    // The party's two pages are merged and sorted; no other
                    // query sorts.
                    let merged = usize::from(query.party.is_some());
                    assert_eq!(sorts, merged, "{sql}: {plan:?}");
                }
            }
        }
    }
}
