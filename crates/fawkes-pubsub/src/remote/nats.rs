//! NATS core subjects. The client reconnects and resubscribes by itself; its events keep the
//! status current.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::StreamExt;
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
    tokio::spawn(async move {
        let events = status.clone();
        let options = async_nats::ConnectOptions::new()
            .retry_on_initial_connect()
            .max_reconnects(None)
            .event_callback(move |event| {
                let events = events.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => events.up(),
                        async_nats::Event::Disconnected => events.down(&"disconnected"),
                        _ => {}
                    }
                }
            });
        let mut attempt = 0;
        let client = loop {
            match options.clone().connect(url.as_str()).await {
                Ok(client) => break client,
                Err(error) => {
                    status.down(&error);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        };
        let mut subscription = loop {
            match client.subscribe(channel.to_string()).await {
                Ok(subscription) => break subscription,
                Err(error) => {
                    status.down(&error);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                }
            }
        };
        let receiver_status = status.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                receiver_status.received.fetch_add(1, Ordering::Relaxed);
                bus.receive_remote(&message.payload);
            }
        });
        while let Some(bytes) = queue.recv().await {
            match client.publish(channel.to_string(), bytes.into()).await {
                Ok(()) => status.sent.fetch_add(1, Ordering::Relaxed),
                Err(_) => status.dropped.fetch_add(1, Ordering::Relaxed),
            };
        }
    });
}
