//! How far each user has read in each room, for unread counts. Rows go with their room or user.

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
                    .table("room_reads")
                    .col(uuid("room_id"))
                    .col(uuid("user_id"))
                    .col(uuid_null("last_read_id"))
                    .col(big_integer("updated_at"))
                    .primary_key(Index::create().col("room_id").col("user_id"))
                    .foreign_key(&mut references("room_reads", "room_id", "rooms"))
                    .foreign_key(&mut references("room_reads", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        // Serves "this user's reads": `WHERE user_id = ? AND room_id IN (…)`.
        index(manager, "room_reads", &["user_id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("room_reads").to_owned())
            .await
    }
}
