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
                    .table("sessions")
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(uuid_null("device_id"))
                    .col(big_integer("created_at"))
                    .col(big_integer("last_used_at"))
                    .col(big_integer("expires_at"))
                    .col(big_integer_null("revoked_at"))
                    .col(string_len_null("revoked_reason", 32))
                    .foreign_key(&mut references("sessions", "user_id", "users"))
                    .foreign_key(&mut references("sessions", "device_id", "user_devices"))
                    .to_owned(),
            )
            .await?;
        index(manager, "sessions", &["user_id"], false).await?;
        index(manager, "sessions", &["device_id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sessions").to_owned())
            .await
    }
}
