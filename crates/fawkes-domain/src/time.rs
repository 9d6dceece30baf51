use chrono::{DateTime, Utc};

/// An instant as stored: Unix milliseconds, UTC.
pub type Timestamp = i64;

pub(crate) fn now() -> Timestamp {
    Utc::now().timestamp_millis()
}

/// The stored instant as a time for JSON (RFC 3339).
pub(crate) fn to_datetime(ms: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}
