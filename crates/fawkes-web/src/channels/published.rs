//! Published namespaces (`notification:*`, and those configured, such as `transaction:*`):
//! joined by the rule of their namespace, fed by `POST /api/v1/broadcast`.

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, Payload, Reply};
use std::sync::Arc;

use fawkes_domain::Domain;
use serde_json::{Value, json};

use super::{SocketIdentity, join_refusal};

pub(super) struct PublishedChannel {
    domain: Arc<Domain>,
}

impl PublishedChannel {
    pub(super) fn new(domain: Arc<Domain>) -> Self {
        Self { domain }
    }
}

#[async_trait]
impl Channel<SocketIdentity> for PublishedChannel {
    async fn join(
        &mut self,
        _payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> Result<Value, Value> {
        self.domain
            .publishing
            .authorize_join(&ctx.assigns().actor, ctx.topic())
            .map_err(join_refusal)?;
        Ok(json!({}))
    }

    /// Clients only listen here; services publish over REST.
    async fn handle_in(
        &mut self,
        _event: &str,
        _payload: Payload,
        _ctx: &mut ChannelContext<SocketIdentity>,
    ) -> HandleIn {
        HandleIn::Reply(Reply::reason("unknown_event"))
    }
}
