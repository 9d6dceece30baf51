//! PostgreSQL LISTEN/NOTIFY on the app's database. NOTIFY carries at most 8000 bytes, so a
//! larger message is stored in `bus_messages` and only its id is notified.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;

use super::{RemoteStatus, backoff};
use crate::PubSub;

/// Below NOTIFY's 8000-byte limit, with room for the quoting.
const NOTIFY_LIMIT: usize = 7_500;
/// Marks a notification that carries a `bus_messages` id instead of the message.
const STORED: &str = "stored:";
/// How long stored messages are kept for slow listeners.
const KEEP_STORED_MS: i64 = 60_000;

pub(super) fn start(
    bus: PubSub,
    pool: PgPool,
    channel: Arc<str>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    status: Arc<RemoteStatus>,
) {
    let listener_pool = pool.clone();
    let listener_status = status.clone();
    let listener_channel = channel.clone();
    tokio::spawn(async move {
        let mut attempt = 0;
        loop {
            match listen(
                &bus,
                &listener_pool,
                &listener_channel,
                &listener_status,
                &mut attempt,
            )
            .await
            {
                Ok(()) => listener_status.down(&"listener ended"),
                Err(error) => listener_status.down(&error),
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    });
    tokio::spawn(async move {
        while let Some(bytes) = queue.recv().await {
            match notify(&pool, &channel, bytes).await {
                Ok(()) => status.sent.fetch_add(1, Ordering::Relaxed),
                Err(error) => {
                    tracing::debug!(%error, "NOTIFY failed");
                    status.dropped.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    });
}

async fn notify(pool: &PgPool, channel: &str, bytes: Vec<u8>) -> sqlx::Result<()> {
    let text = String::from_utf8(bytes).unwrap_or_default();
    let payload = if text.len() <= NOTIFY_LIMIT {
        text
    } else {
        let now = now_ms();
        let id = format!("{now:x}-{:016x}", rand::random::<u64>());
        sqlx::query("INSERT INTO bus_messages (id, body, created_at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(&text)
            .bind(now)
            .execute(pool)
            .await?;
        sqlx::query("DELETE FROM bus_messages WHERE created_at < $1")
            .bind(now - KEEP_STORED_MS)
            .execute(pool)
            .await?;
        format!("{STORED}{id}")
    };
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload)
        .execute(pool)
        .await?;
    Ok(())
}

async fn listen(
    bus: &PubSub,
    pool: &PgPool,
    channel: &str,
    status: &RemoteStatus,
    attempt: &mut u32,
) -> sqlx::Result<()> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    status.up();
    *attempt = 0;
    // `try_recv` answers None when the connection drops, instead of reconnecting silently and
    // losing what was notified meanwhile without anyone knowing.
    while let Some(notification) = listener.try_recv().await? {
        status.received.fetch_add(1, Ordering::Relaxed);
        let payload = notification.payload();
        match payload.strip_prefix(STORED) {
            Some(id) => {
                let body: Option<(String,)> =
                    sqlx::query_as("SELECT body FROM bus_messages WHERE id = $1")
                        .bind(id)
                        .fetch_optional(pool)
                        .await?;
                match body {
                    Some((body,)) => bus.receive_remote(body.as_bytes()),
                    None => tracing::warn!(id, "a stored bus message expired before it was read"),
                }
            }
            None => bus.receive_remote(payload.as_bytes()),
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}
