use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::DomainError;

const DEFAULT_LIMIT: u64 = 50;
pub(crate) const MAX_LIMIT: u64 = 100;

/// An opaque position in a list: the id of the last item of the previous page. Lists are
/// ordered by UUIDv7 id, so rows inserted meanwhile never shift the pages that follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub Uuid);

impl Cursor {
    pub fn encode(self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    pub fn decode(text: &str) -> Result<Self, DomainError> {
        URL_SAFE_NO_PAD
            .decode(text)
            .ok()
            .and_then(|bytes| Uuid::from_slice(&bytes).ok())
            .map(Cursor)
            .ok_or_else(|| DomainError::invalid("cursor", "not a cursor returned by this API"))
    }
}

/// Which page of a list to read.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageRequest {
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Items per page, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u64>,
}

impl PageRequest {
    /// The decoded cursor and the page size, checked.
    pub(crate) fn parse(&self) -> Result<(Option<Cursor>, u64), DomainError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(DomainError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let cursor = self.cursor.as_deref().map(Cursor::decode).transpose()?;
        Ok((cursor, limit))
    }
}

/// Orders `query` newest first (UUIDv7 ids) from after `cursor`, fetching one row more than
/// `limit` so [`Page::from_rows`] can tell whether another page follows.
pub(crate) fn newest_first<E: EntityTrait>(
    query: Select<E>,
    id: E::Column,
    (cursor, limit): (Option<Cursor>, u64),
) -> Select<E> {
    let query = query.order_by_desc(id).limit(limit + 1);
    match cursor {
        Some(cursor) => query.filter(id.lt(cursor.0)),
        None => query,
    }
}

/// Like [`newest_first`], oldest first.
pub(crate) fn oldest_first<E: EntityTrait>(
    query: Select<E>,
    id: E::Column,
    (cursor, limit): (Option<Cursor>, u64),
) -> Select<E> {
    let query = query.order_by_asc(id).limit(limit + 1);
    match cursor {
        Some(cursor) => query.filter(id.gt(cursor.0)),
        None => query,
    }
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says whether more follow.
    pub(crate) fn from_rows<R>(
        mut rows: Vec<R>,
        limit: u64,
        id_of: impl Fn(&R) -> Uuid,
        view: impl FnMut(R) -> T,
    ) -> Self {
        let more = rows.len() as u64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|row| Cursor(id_of(row)).encode())
        } else {
            None
        };
        Page {
            items: rows.into_iter().map(view).collect(),
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor(Uuid::now_v7());
        assert_eq!(Cursor::decode(&cursor.encode()).ok(), Some(cursor));
        assert!(Cursor::decode("not-a-cursor!").is_err());
        assert!(Cursor::decode("AAAA").is_err());
    }

    #[test]
    fn limits_outside_the_range_are_refused() {
        let request = |limit| PageRequest {
            cursor: None,
            limit: Some(limit),
        };
        assert!(request(0).parse().is_err());
        assert!(request(101).parse().is_err());
        assert_eq!(request(100).parse().ok().map(|(_, l)| l), Some(100));
    }
}
