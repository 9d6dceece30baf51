//! A room's newest messages as the cache holds them, with the first pages serialized from
//! them: opening a room is the hottest read, and encoding its page was about a fifth of its
//! CPU (BENCHMARKS.md).

use std::sync::Mutex;

use bytes::Bytes;
use fawkes_data::entity::message;

use crate::coherent::ReadStarted;

/// The most first pages kept per room (clients use one or two limits; any other asked for
/// replaces the oldest), so a room's entry holds at most this many copies of its rows as JSON.
const PAGES_KEPT: usize = 4;

/// A room's newest live messages, newest first: one more than the largest page, so any first
/// page can tell whether another follows. Replaced whole when the room's messages change.
#[derive(Debug)]
pub(super) struct Newest {
    rows: Vec<message::Model>,
    /// First pages as JSON, by limit. Each holds authors' names: it is good while no name has
    /// changed since it was serialized.
    pages: Mutex<Vec<FirstPage>>,
}

#[derive(Debug)]
struct FirstPage {
    limit: u64,
    names_as_of: ReadStarted,
    json: Bytes,
}

impl Newest {
    pub(super) fn new(rows: Vec<message::Model>) -> Self {
        Self {
            rows,
            pages: Mutex::default(),
        }
    }

    /// How many rows it holds (the cache's weight).
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The rows of a first page of `limit`, and the one after it if there is one.
    pub(super) fn first_rows(&self, limit: u64) -> Vec<message::Model> {
        let take = usize::try_from(limit)
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        self.rows.iter().take(take).cloned().collect()
    }

    /// The first page of `limit` as serialized while the authors' names were as they are now
    /// (`names_now`), if it was.
    pub(super) fn page_json(&self, limit: u64, names_now: ReadStarted) -> Option<Bytes> {
        let pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages
            .iter()
            .find(|page| page.limit == limit && page.names_as_of == names_now)
            .map(|page| page.json.clone())
    }

    /// Keeps the first page of `limit`, serialized with the names as of `names_as_of`.
    pub(super) fn keep_page_json(&self, limit: u64, names_as_of: ReadStarted, json: Bytes) {
        let mut pages = self.pages.lock().unwrap_or_else(|e| e.into_inner());
        pages.retain(|page| page.limit != limit);
        if pages.len() >= PAGES_KEPT {
            pages.remove(0);
        }
        pages.push(FirstPage {
            limit,
            names_as_of,
            json,
        });
    }
}
