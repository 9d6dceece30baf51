use sea_orm::entity::prelude::*;

/// A credential for backend services. Only the SHA-256 of the key is stored.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to recognise it in a list.
    pub key_prefix: String,
    /// Hex SHA-256 of the key.
    pub key_hash: String,
    /// Space-separated scopes, e.g. `publish`.
    pub scopes: String,
    pub created_by: Option<Uuid>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
