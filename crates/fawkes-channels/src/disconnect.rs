//! Disconnect by socket id: a `disconnect` broadcast on any of a connection's id topics closes
//! it with 1001, so the client reconnects and authenticates again.

use std::sync::{Arc, Weak};

use fawkes_pubsub::{Broadcast, Sink};

use crate::endpoint::{ConnectionHandle, Endpoint, Inbox};

/// The connection's attachments to its id topics.
pub(crate) struct Watch {
    attachments: Vec<(String, u64)>,
}

pub(crate) fn watch(
    endpoint: &Endpoint,
    socket_ids: Vec<String>,
    handle: &Arc<ConnectionHandle>,
) -> Watch {
    let attachments = socket_ids
        .into_iter()
        .map(|topic| {
            let sink = Arc::new(DisconnectSink {
                connection: Arc::downgrade(handle),
            });
            let id = endpoint.bus().attach(&topic, sink);
            (topic, id)
        })
        .collect();
    Watch { attachments }
}

impl Watch {
    pub fn detach(self, endpoint: &Endpoint) {
        for (topic, id) in self.attachments {
            endpoint.bus().detach(&topic, id);
        }
    }
}

struct DisconnectSink {
    connection: Weak<ConnectionHandle>,
}

impl Sink for DisconnectSink {
    fn deliver(&self, message: &Arc<Broadcast>) {
        if &*message.event == "disconnect"
            && let Some(connection) = self.connection.upgrade()
        {
            connection.notify(Inbox::Close(1001, "disconnected"));
        }
    }
}
