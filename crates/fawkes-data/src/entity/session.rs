use sea_orm::entity::prelude::*;

/// A login: one refresh-token rotation family, optionally bound to a device. Its id is the
/// `sid` claim of every access token issued under it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    /// `user_devices.id`, when the login named a device.
    pub device_id: Option<Uuid>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Why it was revoked: `logout`, `reuse`, `device_revoked`, `deactivated`,
    /// `password_changed`.
    pub revoked_reason: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
