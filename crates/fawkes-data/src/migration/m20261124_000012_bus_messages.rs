//! Messages too large for PostgreSQL's NOTIFY travel between nodes through this table (created
//! on every backend so the schema is one, used only with the PostgreSQL bus).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("bus_messages")
                    .col(string_len("id", 40).primary_key())
                    .col(text("body"))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("bus_messages").to_owned())
            .await
    }
}
