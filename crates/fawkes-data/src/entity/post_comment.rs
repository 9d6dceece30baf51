use sea_orm::entity::prelude::*;

/// A comment on a post. Ids are UUIDv7, so ordering by id is ordering by creation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "post_comments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub post_id: Uuid,
    pub author_id: Uuid,
    /// The first comment of the thread this one replies to; `None` for a thread's first.
    pub parent_id: Option<Uuid>,
    #[sea_orm(column_type = "Text")]
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
