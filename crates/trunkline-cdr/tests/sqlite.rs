//! The SQLite store on a real database file in a temporary directory:
//! round trip, every filter against a brute-force filter of the same
//! records, keyset paging through 25,000 records, the page limit,
//! duplicates, reopening, a newer schema, a corrupt row, and concurrent
//! writers.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use trunkline_cdr::{
    Cdr, CdrId, CdrQuery, CdrStore, Cursor, Direction, Disposition, Error, Order, PageSize,
    SqliteCdrStore, Timestamp,
};

const SAMPLE: &str = include_str!("data/calllog.json");

fn sample() -> Cdr {
    serde_json::from_str(SAMPLE).unwrap()
}

fn time(millis: i64) -> Timestamp {
    Timestamp::from_unix_millis(millis).unwrap()
}

const BASE: i64 = 1_741_000_000_000;

/// Record `n`: parties, dispositions and directions cycle with different
/// periods so the filters cut across one another; the start times repeat
/// in runs of three so that ordering and paging must fall back on the id.
fn record(n: usize) -> Cdr {
    let mut cdr = sample();
    cdr.id = CdrId::new(format!("rec-{:06}-{}", n * 7919 % 100_003, n));
    cdr.call_id = format!("call-{n}@10.0.0.1");
    cdr.caller.number = format!("10{:02}", n % 5);
    cdr.callee.number = format!("10{:02}", n % 7);
    cdr.direction = Direction::ALL[n % 3];
    cdr.disposition = Disposition::ALL[n % 4];
    cdr.start_time = time(BASE + (n as i64 / 3) * 1000);
    cdr.end_time = time(cdr.start_time.unix_millis() + 60_000);
    cdr.sip_flow.truncate(n % 3);
    cdr
}

fn store(dir: &tempfile::TempDir) -> SqliteCdrStore {
    SqliteCdrStore::open(dir.path().join("cdr.db")).unwrap()
}

fn insert_all(store: &dyn CdrStore, records: &[Cdr]) {
    for batch in records.chunks(1000) {
        store.insert_batch(batch).unwrap();
    }
}

/// Every record `query` selects, page after page, checking that each page
/// but the last is full.
fn read_all(store: &dyn CdrStore, query: &CdrQuery) -> Vec<Cdr> {
    let mut query = query.clone();
    let mut all = Vec::new();
    loop {
        let page = store.query(&query).unwrap();
        let count = page.records.len();
        all.extend(page.records);
        match page.next {
            Some(next) => {
                assert_eq!(count, query.page_size.get(), "only the last page is short");
                query.after = Some(next);
            }
            None => return all,
        }
    }
}

/// What `query` should select from `records`, in its order, worked out
/// without SQL.
fn expected(records: &[Cdr], query: &CdrQuery) -> Vec<Cdr> {
    let mut selected: Vec<Cdr> = records
        .iter()
        .filter(|r| query.from.is_none_or(|from| r.start_time >= from))
        .filter(|r| query.to.is_none_or(|to| r.start_time < to))
        .filter(|r| {
            query
                .party
                .as_ref()
                .is_none_or(|p| &r.caller.number == p || &r.callee.number == p)
        })
        .filter(|r| query.disposition.is_none_or(|d| r.disposition == d))
        .filter(|r| query.direction.is_none_or(|d| r.direction == d))
        .cloned()
        .collect();
    selected.sort_by(|a, b| (a.start_time, &a.id).cmp(&(b.start_time, &b.id)));
    if query.order == Order::NewestFirst {
        selected.reverse();
    }
    selected
}

fn ids(records: &[Cdr]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn a_full_record_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let full = sample();
    let mut sparse = record(1);
    sparse.caller.name = None;
    sparse.callee.name = None;
    sparse.destination_channel = None;
    sparse.ring_time = None;
    sparse.answer_time = None;
    sparse.hangup.sip_status = None;
    sparse.hangup.reason = None;
    sparse.recording = None;
    sparse.sip_flow.clear();
    sparse.sip_flow_omitted = 17;
    store.insert(&full).unwrap();
    store.insert(&sparse).unwrap();
    assert_eq!(store.get(&full.id).unwrap(), Some(full.clone()));
    assert_eq!(store.get(&sparse.id).unwrap(), Some(sparse.clone()));
    assert_eq!(store.get(&CdrId::new("nobody")).unwrap(), None);
    let page = store.query(&CdrQuery::default()).unwrap();
    assert_eq!(page.records, [sparse, full]);
    assert_eq!(page.next, None);
}

#[test]
fn every_filter_selects_what_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let records: Vec<Cdr> = (0..600).map(record).collect();
    insert_all(&store, &records);
    let mut queries = vec![CdrQuery::default()];
    queries.push(CdrQuery {
        from: Some(time(BASE + 50_000)),
        to: Some(time(BASE + 120_000)),
        ..CdrQuery::default()
    });
    queries.push(CdrQuery {
        from: Some(time(BASE + 150_000)),
        ..CdrQuery::default()
    });
    queries.push(CdrQuery {
        to: Some(time(BASE + 3_000)),
        ..CdrQuery::default()
    });
    // 1000 calls (n % 5 == 0) and is called (n % 7 == 0); 1005 and 1006
    // are only ever called.
    for party in ["1000", "1003", "1006", "9999"] {
        queries.push(CdrQuery {
            party: Some(party.into()),
            ..CdrQuery::default()
        });
    }
    for &disposition in Disposition::ALL {
        queries.push(CdrQuery {
            disposition: Some(disposition),
            ..CdrQuery::default()
        });
    }
    for &direction in Direction::ALL {
        queries.push(CdrQuery {
            direction: Some(direction),
            ..CdrQuery::default()
        });
    }
    queries.push(CdrQuery {
        from: Some(time(BASE + 20_000)),
        to: Some(time(BASE + 180_000)),
        party: Some("1002".into()),
        disposition: Some(Disposition::Busy),
        direction: Some(Direction::Outbound),
        ..CdrQuery::default()
    });
    for query in queries {
        let want = expected(&records, &query);
        for order in [Order::OldestFirst, Order::NewestFirst] {
            for page_size in [7, 10_000] {
                let query = CdrQuery {
                    order,
                    page_size: PageSize::new(page_size).unwrap(),
                    ..query.clone()
                };
                let want = expected(&records, &query);
                let got = read_all(&store, &query);
                assert_eq!(ids(&got), ids(&want), "{query:?}");
                assert_eq!(got, want, "{query:?}");
            }
        }
        // Each filter must select something and leave something out, or
        // it shows nothing; the unfiltered query and the unknown party are
        // the two controls.
        let control = query == CdrQuery::default() || query.party.as_deref() == Some("9999");
        if !control {
            assert!(!want.is_empty() && want.len() < records.len(), "{query:?}");
        }
    }
    assert!(
        expected(
            &records,
            &CdrQuery {
                party: Some("1006".into()),
                ..CdrQuery::default()
            }
        )
        .iter()
        .all(|r| r.caller.number != "1006"),
        "1006 is found as the callee alone"
    );
}

/// Pages of `query` from the first to the last, the cursor passed through
/// its text form as an API would; `between` runs after the first page.
fn page_through(
    store: &dyn CdrStore,
    mut query: CdrQuery,
    mut between: impl FnMut(),
) -> (Vec<usize>, Vec<CdrId>) {
    let mut sizes = Vec::new();
    let mut seen = Vec::new();
    loop {
        let page = store.query(&query).unwrap();
        sizes.push(page.records.len());
        seen.extend(page.records.into_iter().map(|r| r.id));
        if sizes.len() == 1 {
            between();
        }
        match page.next {
            Some(next) => query.after = Some(next.to_string().parse().unwrap()),
            None => return (sizes, seen),
        }
    }
}

#[test]
fn paging_through_25000_records_misses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let mut records: Vec<Cdr> = (0..25_000).map(record).collect();
    insert_all(&store, &records);
    let mut late = record(0);
    late.id = CdrId::new("late");

    let oldest_first = CdrQuery {
        page_size: PageSize::MAX,
        ..CdrQuery::default()
    };
    // A call stored after the first page, earlier than the cursor, must
    // not shift the pages: nothing repeats, nothing is skipped.
    let (sizes, seen) = page_through(&store, oldest_first.clone(), || {
        store.insert(&late).unwrap();
    });
    assert_eq!(sizes, [10_000, 10_000, 5_000]);
    let unique: HashSet<&CdrId> = seen.iter().collect();
    assert_eq!(unique.len(), 25_000, "no duplicates");
    let want = expected(&records, &oldest_first);
    assert_eq!(
        seen.iter().collect::<Vec<_>>(),
        want.iter().map(|r| &r.id).collect::<Vec<_>>()
    );

    records.push(late);
    let newest_first = CdrQuery {
        order: Order::NewestFirst,
        ..oldest_first
    };
    let (sizes, seen) = page_through(&store, newest_first.clone(), || {});
    assert_eq!(sizes, [10_000, 10_000, 5_001]);
    let want = expected(&records, &newest_first);
    assert_eq!(
        seen.iter().collect::<Vec<_>>(),
        want.iter().map(|r| &r.id).collect::<Vec<_>>()
    );
    assert_eq!(seen.last().map(CdrId::as_str), Some("late"));
}

#[test]
fn a_page_holds_at_most_10000_records() {
    let err = PageSize::new(10_001).unwrap_err();
    assert!(matches!(err, Error::PageSize { requested: 10_001 }));
    assert_eq!(
        err.to_string(),
        "a page holds 1 to 10000 records, not 10001"
    );
    assert!(matches!(
        PageSize::new(0),
        Err(Error::PageSize { requested: 0 })
    ));

    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    insert_all(&store, &(0..10_001).map(record).collect::<Vec<_>>());
    let page = store
        .query(&CdrQuery {
            page_size: PageSize::MAX,
            ..CdrQuery::default()
        })
        .unwrap();
    assert_eq!(page.records.len(), 10_000);
    let last = page.next.unwrap();
    assert_eq!(last, Cursor::after(&page.records[9_999]));
    let page = store
        .query(&CdrQuery {
            page_size: PageSize::MAX,
            after: Some(last),
            ..CdrQuery::default()
        })
        .unwrap();
    assert_eq!(page.records.len(), 1);
    assert_eq!(page.next, None);
}

#[test]
fn a_batch_with_a_duplicate_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store.insert(&record(3)).unwrap();
    let batch: Vec<Cdr> = (0..10).map(record).collect();
    let err = store.insert_batch(&batch).unwrap_err();
    assert!(
        matches!(&err, Error::Duplicate(id) if *id == record(3).id),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("a record with id {} is stored already", record(3).id)
    );
    let all = read_all(&store, &CdrQuery::default());
    assert_eq!(all, [record(3)], "the batch was rolled back");
    store.insert_batch(&[]).unwrap();
}

#[test]
fn records_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let records: Vec<Cdr> = (0..50).map(record).collect();
    {
        let store = SqliteCdrStore::open(&path).unwrap();
        insert_all(&store, &records);
    }
    let store = SqliteCdrStore::open(&path).unwrap();
    assert_eq!(
        read_all(&store, &CdrQuery::default()),
        expected(&records, &CdrQuery::default())
    );
    store.insert(&record(50)).unwrap();
    drop(store);
    let db = rusqlite::Connection::open(&path).unwrap();
    let mode: String = db
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let count: i64 = db
        .query_row("SELECT count(*) FROM cdr", [], |row| row.get(0))
        .unwrap();
    assert_eq!(count, 51);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    drop(SqliteCdrStore::open(&path).unwrap());
    let db = rusqlite::Connection::open(&path).unwrap();
    db.pragma_update(None, "user_version", 2).unwrap();
    drop(db);
    let err = SqliteCdrStore::open(&path).unwrap_err();
    assert!(matches!(err, Error::Schema { found: 2, known: 1 }), "{err}");
}

#[test]
fn a_corrupt_row_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    let store = SqliteCdrStore::open(&path).unwrap();
    store.insert_batch(&[record(1), record(2)]).unwrap();
    let db = rusqlite::Connection::open(&path).unwrap();
    db.execute(
        "UPDATE cdr SET disposition = 'MAYBE' WHERE id = ?1",
        [record(2).id.as_str()],
    )
    .unwrap();
    let err = store.get(&record(2).id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "stored record {} is unreadable: \"MAYBE\" is not a Disposition",
            record(2).id
        )
    );
    db.execute(
        "UPDATE cdr SET sip_flow = '[{' WHERE id = ?1",
        [record(1).id.as_str()],
    )
    .unwrap();
    assert!(matches!(
        store.query(&CdrQuery::default()),
        Err(Error::Corrupt { id, .. }) if id == record(1).id.as_str()
    ));
}

#[test]
fn concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdr.db");
    // Shared the way the engine holds its store.
    let shared: Arc<dyn CdrStore> = Arc::new(SqliteCdrStore::open(&path).unwrap());
    let mut threads = Vec::new();
    // Four threads share one store, writing in batches and one by one.
    for t in 0..4 {
        let store = Arc::clone(&shared);
        threads.push(thread::spawn(move || {
            let records: Vec<Cdr> = (0..500).map(|n| record(t * 1000 + n)).collect();
            for batch in records[..250].chunks(25) {
                store.insert_batch(batch).unwrap();
            }
            for one in &records[250..] {
                store.insert(one).unwrap();
            }
        }));
    }
    // Four more open stores of their own on the same file: separate
    // connections, so SQLite's locking and the busy timeout are tested.
    for t in 4..8 {
        let path = path.clone();
        threads.push(thread::spawn(move || {
            let store = SqliteCdrStore::open(&path).unwrap();
            for n in 0..250 {
                store.insert(&record(t * 1000 + n)).unwrap();
            }
        }));
    }
    // A reader pages through meanwhile without error.
    let reader = {
        let store = Arc::clone(&shared);
        thread::spawn(move || {
            for _ in 0..20 {
                read_all(
                    &*store,
                    &CdrQuery {
                        page_size: PageSize::new(500).unwrap(),
                        ..CdrQuery::default()
                    },
                );
            }
        })
    };
    for thread in threads {
        thread.join().unwrap();
    }
    reader.join().unwrap();
    let all = read_all(
        &*shared,
        &CdrQuery {
            page_size: PageSize::MAX,
            ..CdrQuery::default()
        },
    );
    let want: HashSet<CdrId> = (0..4)
        .flat_map(|t| (0..500).map(move |n| record(t * 1000 + n).id))
        .chain((4..8).flat_map(|t| (0..250).map(move |n| record(t * 1000 + n).id)))
        .collect();
    let got: HashSet<CdrId> = all.iter().map(|r| r.id.clone()).collect();
    assert_eq!(all.len(), 3_000);
    assert_eq!(got, want);
}
