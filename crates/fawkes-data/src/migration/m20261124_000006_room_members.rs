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
                    .table("room_members")
                    .col(uuid("room_id"))
                    .col(uuid("user_id"))
                    .col(big_integer("joined_at"))
                    .primary_key(Index::create().col("room_id").col("user_id"))
                    .foreign_key(&mut references("room_members", "room_id", "rooms"))
                    .foreign_key(&mut references("room_members", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        index(manager, "room_members", &["user_id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("room_members").to_owned())
            .await
    }
}
