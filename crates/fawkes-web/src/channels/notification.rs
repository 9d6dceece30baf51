//! `notification:{user_id}`: a user's own notifications; nobody else may join.

use async_trait::async_trait;
use fawkes_channels::{Channel, ChannelContext, HandleIn, Payload, Reply};
use fawkes_domain::notifications::authorize_subscription;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{SocketIdentity, join_refusal};

pub(super) struct NotificationChannel {
    user_id: Option<Uuid>,
}

impl NotificationChannel {
    pub(super) fn new(user_id: &str) -> Self {
        Self {
            user_id: user_id.parse().ok(),
        }
    }
}

#[async_trait]
impl Channel<SocketIdentity> for NotificationChannel {
    async fn join(
        &mut self,
        _payload: Payload,
        ctx: &mut ChannelContext<SocketIdentity>,
    ) -> Result<Value, Value> {
        let Some(user_id) = self.user_id else {
            return Err(json!({ "reason": "unauthorized" }));
        };
        authorize_subscription(&ctx.assigns().actor, user_id).map_err(join_refusal)?;
        Ok(json!({}))
    }

    async fn handle_in(
        &mut self,
        _event: &str,
        _payload: Payload,
        _ctx: &mut ChannelContext<SocketIdentity>,
    ) -> HandleIn {
        HandleIn::Reply(Reply::reason("unknown_event"))
    }
}
