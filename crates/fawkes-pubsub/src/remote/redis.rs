//! Redis pub/sub: a dedicated subscriber connection, and a self-reconnecting connection manager
//! for publishing.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
use redis::AsyncCommands;
use tokio::sync::mpsc;

use super::{RemoteStatus, backoff};
use crate::PubSub;

pub(super) fn start(
    bus: PubSub,
    url: String,
    channel: Arc<str>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    status: Arc<RemoteStatus>,
) {
    let subscriber_status = status.clone();
    let subscriber_url = url.clone();
    let subscriber_channel = channel.clone();
    tokio::spawn(async move {
        let mut attempt = 0;
        loop {
            match subscribe(
                &bus,
                &subscriber_url,
                &subscriber_channel,
                &subscriber_status,
                &mut attempt,
            )
            .await
            {
                Ok(()) => subscriber_status.down(&"subscription ended"),
                Err(error) => subscriber_status.down(&error),
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    });
    tokio::spawn(async move {
        let mut connection = None;
        let mut attempt = 0;
        while let Some(bytes) = queue.recv().await {
            if connection.is_none() {
                match redis::Client::open(url.as_str()) {
                    Ok(client) => match redis::aio::ConnectionManager::new(client).await {
                        Ok(manager) => {
                            connection = Some(manager);
                            attempt = 0;
                        }
                        Err(error) => tracing::debug!(%error, "redis publisher cannot connect"),
                    },
                    Err(error) => tracing::error!(%error, "invalid redis URL"),
                }
            }
            let Some(manager) = connection.as_mut() else {
                status.dropped.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
                continue;
            };
            match manager.publish::<_, _, i64>(&*channel, bytes).await {
                Ok(_) => {
                    status.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    tracing::debug!(%error, "redis publish failed");
                    status.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
}

async fn subscribe(
    bus: &PubSub,
    url: &str,
    channel: &str,
    status: &RemoteStatus,
    attempt: &mut u32,
) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    status.up();
    *attempt = 0;
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        status.received.fetch_add(1, Ordering::Relaxed);
        bus.receive_remote(message.get_payload_bytes());
    }
    Ok(())
}
