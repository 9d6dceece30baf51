//! The devices a user has logged in from.

use fawkes_data::entity::{session, user_device};
use sea_orm::prelude::*;
use sea_orm::{ActiveValue::Set, QueryOrder, QuerySelect};

use super::{Accounts, Device, policy};
use crate::store::update_row;
use crate::{Actor, DomainError};

impl Accounts {
    /// The actor's own devices, most recently seen first.
    pub async fn list_devices(&self, actor: &Actor) -> Result<Vec<Device>, DomainError> {
        let identity = policy::signed_in(actor)?;
        let rows = user_device::Entity::find()
            .filter(user_device::Column::UserId.eq(identity.user_id))
            .order_by_desc(user_device::Column::LastSeenAt)
            .all(self.db.as_ref())
            .await?;
        Ok(rows.into_iter().map(Device::from).collect())
    }

    /// `revoke_device`: signs a device out. Its sessions end, its refresh tokens stop working
    /// and its sockets are disconnected; logging in from it again registers it anew.
    pub async fn revoke_device(
        &self,
        actor: &Actor,
        device_id: Uuid,
    ) -> Result<Device, DomainError> {
        policy::signed_in(actor)?;
        let db = self.db.as_ref();
        let device = user_device::Entity::find_by_id(device_id)
            .one(db)
            .await?
            .ok_or(DomainError::NotFound("device"))?;
        policy::manage_device(actor, &device)?;
        let deactivated = user_device::ActiveModel {
            id: Set(device.id),
            is_active: Set(false),
            ..Default::default()
        };
        let updated = update_row(db, deactivated).await?;
        let open: Vec<Uuid> = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::DeviceId.eq(device.id))
            .filter(session::Column::RevokedAt.is_null())
            .into_tuple()
            .all(db)
            .await?;
        self.revoke_sessions(open, "device_revoked").await?;
        Ok(Device::from(updated))
    }
}
