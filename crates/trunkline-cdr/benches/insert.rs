//! The SQLite store: storing ended calls one per transaction (each commit
//! synced to disk) against batches of 100 in one, and reading pages back
//! from 25,000 stored calls. The record is the documented example, two
//! SIP messages in its flow.
//!
//! `cargo bench -p trunkline-cdr --bench insert`

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use trunkline_cdr::{Cdr, CdrId, CdrQuery, CdrStore, PageSize, SqliteCdrStore};

fn records(count: usize, next: &mut u64) -> Vec<Cdr> {
    let sample: Cdr =
        serde_json::from_str(include_str!("../tests/data/calllog.json")).expect("the sample");
    (0..count)
        .map(|_| {
            *next += 1;
            let mut cdr = Cdr {
                id: CdrId::new(format!("bench-{next}")),
                ..sample.clone()
            };
            // A hundred parties, so one party's page is a small share.
            cdr.caller.number = format!("{}", 1000 + *next % 100);
            cdr
        })
        .collect()
}

fn insert(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteCdrStore::open(dir.path().join("cdr.db")).expect("store");
    let mut next = 0;
    let mut group = c.benchmark_group("sqlite_insert");
    for batch in [1, 100] {
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("batch_of_{batch}"), |b| {
            b.iter_batched(
                || records(batch, &mut next),
                |records| store.insert_batch(&records).expect("stored"),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn query(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteCdrStore::open(dir.path().join("cdr.db")).expect("store");
    let mut next = 0;
    for _ in 0..25 {
        store
            .insert_batch(&records(1000, &mut next))
            .expect("stored");
    }
    let mut group = c.benchmark_group("sqlite_query");
    let full = CdrQuery {
        page_size: PageSize::MAX,
        ..CdrQuery::default()
    };
    group.throughput(Throughput::Elements(10_000));
    group.bench_function("page_of_10000", |b| {
        b.iter(|| black_box(store.query(&full).expect("a page")));
    });
    let party = CdrQuery {
        party: Some("1042".into()),
        ..CdrQuery::default()
    };
    group.throughput(Throughput::Elements(100));
    group.bench_function("party_page_of_100", |b| {
        b.iter(|| black_box(store.query(&party).expect("a page")));
    });
    group.finish();
}

criterion_group!(benches, insert, query);
criterion_main!(benches);
