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
                    .table("user_devices")
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(string_len("device_id", 128))
                    .col(string_len_null("name", 100))
                    .col(json_null("info"))
                    .col(big_integer("last_seen_at"))
                    .col(boolean("is_active"))
                    .col(big_integer("created_at"))
                    .foreign_key(&mut references("user_devices", "user_id", "users"))
                    .to_owned(),
            )
            .await?;
        index(manager, "user_devices", &["user_id", "device_id"], true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("user_devices").to_owned())
            .await
    }
}
