//! Deliveries an outbound sink missed, waiting for reconciliation (`fawkes-sync`).

use sea_orm_migration::{prelude::*, schema::*};

use super::{exact_text_on_mysql, index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sink_missed")
                    .col(pk_uuid("id"))
                    .col(string_len("sink", 64))
                    .col(string_len("event", 64))
                    .col(text("args"))
                    .col(integer("attempts").default(0))
                    .col(text_null("last_error"))
                    .col(big_integer("missed_at"))
                    .to_owned(),
            )
            .await?;
        // Sink names are configuration keys: compared exactly everywhere.
        exact_text_on_mysql(manager, "sink_missed", "sink", 64, true).await?;
        // A sink's backlog in order: `WHERE sink = ? ORDER BY id`.
        index(manager, "sink_missed", &["sink", "id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sink_missed").to_owned())
            .await
    }
}
