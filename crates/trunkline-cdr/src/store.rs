//! Where records are kept, and how they are looked up.

use crate::model::{Cdr, CdrId, Direction, Disposition};
use crate::timestamp::Timestamp;
use std::fmt;

/// The most records one page holds.
pub const MAX_PAGE_SIZE: usize = 10_000;

/// Why a store or a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A page size outside 1 to [`MAX_PAGE_SIZE`].
    #[error("a page holds 1 to {MAX_PAGE_SIZE} records, not {requested}")]
    PageSize {
        /// The size asked for.
        requested: usize,
    },
    /// A paging cursor that no store made.
    #[error("not a paging cursor: {0:?}")]
    Cursor(String),
    /// A record with this id is stored already; nothing of the batch was
    /// stored.
    #[error("a record with id {0} is stored already")]
    Duplicate(CdrId),
    /// A stored row that does not read back as a record.
    #[error("stored record {id} is unreadable: {problem}")]
    Corrupt {
        /// The row's id.
        id: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The database is of a newer schema than this build knows.
    #[error("the CDR database has schema version {found}; this build knows up to {known}")]
    Schema {
        /// The version in the database.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database failed.
    #[error("CDR store: {context}: {source}")]
    Backend {
        /// What the store was doing.
        context: &'static str,
        /// The database's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Somewhere to keep records: embedded SQLite
/// ([`SqliteCdrStore`](crate::SqliteCdrStore)) by default, PostgreSQL
/// for larger sites.
///
/// The methods block: a store does its work on the calling thread, so an
/// async caller (the call engine) runs them on a blocking thread
/// (`tokio::task::spawn_blocking`), one batch of ended calls at a time.
/// The trait is object safe, so the engine holds an
/// `Arc<dyn CdrStore>` chosen by configuration, and `Send + Sync`, so
/// threads share one store.
pub trait CdrStore: Send + Sync {
    /// Stores `records` all together or, on any error, none of them.
    fn insert_batch(&self, records: &[Cdr]) -> Result<(), Error>;

    /// Stores one record.
    fn insert(&self, record: &Cdr) -> Result<(), Error> {
        self.insert_batch(std::slice::from_ref(record))
    }

    /// The record with this id, if there is one.
    fn get(&self, id: &CdrId) -> Result<Option<Cdr>, Error>;

    /// One page of the records `query` selects, in its order.
    fn query(&self, query: &CdrQuery) -> Result<Page, Error>;
}

/// The number of records a page holds: 1 to [`MAX_PAGE_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(usize);

impl PageSize {
    /// `records` per page, or [`Error::PageSize`] outside 1 to
    /// [`MAX_PAGE_SIZE`].
    pub fn new(records: usize) -> Result<PageSize, Error> {
        if (1..=MAX_PAGE_SIZE).contains(&records) {
            Ok(PageSize(records))
        } else {
            Err(Error::PageSize { requested: records })
        }
    }

    /// The largest page, [`MAX_PAGE_SIZE`] records.
    pub const MAX: PageSize = PageSize(MAX_PAGE_SIZE);

    /// The number of records.
    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for PageSize {
    /// 100 records.
    fn default() -> PageSize {
        PageSize(100)
    }
}

/// The order of a query's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    /// Earliest start first (for exports and reports).
    #[default]
    OldestFirst,
    /// Latest start first (for a console's call list).
    NewestFirst,
}

/// Which records to read, and which page of them. Filters left `None`
/// select everything; those given must all hold.
///
/// Records are ordered by start time, then id, and paged by that key: a
/// page starts after the last record of the previous one (its
/// [`Page::next`]), so records stored meanwhile neither repeat nor shift
/// the pages, and reading far into the results costs no more than the
/// first page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CdrQuery {
    /// Calls that started at or after this.
    pub from: Option<Timestamp>,
    /// Calls that started before this.
    pub to: Option<Timestamp>,
    /// Calls with this number as the caller's or the callee's.
    pub party: Option<String>,
    /// Calls with this disposition.
    pub disposition: Option<Disposition>,
    /// Calls in this direction.
    pub direction: Option<Direction>,
    /// The records' order.
    pub order: Order,
    /// Records per page.
    pub page_size: PageSize,
    /// Where the page starts: the previous page's [`Page::next`], `None`
    /// for the first page.
    pub after: Option<Cursor>,
}

/// One page of a query's results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The records, in the query's order.
    pub records: Vec<Cdr>,
    /// Where the next page starts, `None` when this is the last.
    pub next: Option<Cursor>,
}

/// A position in a query's results: the start time and id of the last
/// record of a page.
///
/// Its text form (`1741944413589:0195…`) is what an API hands out and
/// takes back; [`parse`](str::parse) checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) start_time: Timestamp,
    pub(crate) id: CdrId,
}

impl Cursor {
    /// The position just after `record`.
    pub fn after(record: &Cdr) -> Cursor {
        Cursor {
            start_time: record.start_time,
            id: record.id.clone(),
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.start_time.unix_millis(), self.id)
    }
}

impl std::str::FromStr for Cursor {
    type Err = Error;

    fn from_str(text: &str) -> Result<Cursor, Error> {
        // The id may hold ':' itself; the time never does.
        let (millis, id) = text
            .split_once(':')
            .ok_or_else(|| Error::Cursor(text.to_owned()))?;
        let start_time = millis
            .parse()
            .ok()
            .and_then(Timestamp::from_unix_millis)
            .ok_or_else(|| Error::Cursor(text.to_owned()))?;
        Ok(Cursor {
            start_time,
            id: CdrId::new(id),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

    use super::*;

    #[test]
    fn page_size_is_bounded() {
        assert_eq!(PageSize::new(1).unwrap().get(), 1);
        assert_eq!(PageSize::new(MAX_PAGE_SIZE).unwrap(), PageSize::MAX);
        for bad in [0, MAX_PAGE_SIZE + 1, usize::MAX] {
            let err = PageSize::new(bad).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("a page holds 1 to 10000 records, not {bad}")
            );
        }
    }

    #[test]
    fn cursor_text_round_trips() {
        let cursor = Cursor {
            start_time: Timestamp::from_unix_millis(-5).unwrap(),
            id: CdrId::new("odd:id"),
        };
        let text = cursor.to_string();
        assert_eq!(text, "-5:odd:id");
        assert_eq!(text.parse::<Cursor>().unwrap(), cursor);
        for bad in ["", "123", "x:1", "999999999999999999:id"] {
            assert!(
                matches!(bad.parse::<Cursor>(), Err(Error::Cursor(_))),
                "{bad}"
            );
        }
    }
}
