use sea_orm_migration::{prelude::*, schema::*};

use super::{index, references};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("messages")
                    .col(pk_uuid("id"))
                    .col(uuid("room_id"))
                    .col(uuid("author_id"))
                    .col(text("body"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("edited_at"))
                    .col(big_integer_null("deleted_at"))
                    .foreign_key(&mut references("messages", "room_id", "rooms"))
                    .foreign_key(&mut references("messages", "author_id", "users"))
                    .to_owned(),
            )
            .await?;
        // Serves the room history: `WHERE room_id = ? AND id < ? ORDER BY id DESC`.
        index(manager, "messages", &["room_id", "id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("messages").to_owned())
            .await
    }
}
