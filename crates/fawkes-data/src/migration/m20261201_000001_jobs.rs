//! The durable job queue (`fawkes-jobs`): one row per job, claimed by workers on any node.

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

use super::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("jobs")
                    .col(pk_uuid("id"))
                    .col(string_len("queue", 64))
                    .col(string_len("kind", 128))
                    .col(text("args"))
                    .col(string_len("state", 16))
                    .col(integer("priority"))
                    .col(integer("attempt"))
                    .col(integer("max_attempts"))
                    .col(big_integer("run_at"))
                    .col(string_len_null("locked_by", 200))
                    .col(big_integer_null("locked_until"))
                    .col(text_null("last_error"))
                    .col(string_len_null("unique_key", 255))
                    .col(big_integer_null("unique_until"))
                    .col(big_integer("inserted_at"))
                    .col(big_integer_null("completed_at"))
                    .to_owned(),
            )
            .await?;
        // Names and keys compare exactly on every backend: MySQL's default collation ignores case.
        if manager.get_database_backend() == DbBackend::MySql {
            for (column, length, null) in [
                ("queue", 64, "NOT NULL"),
                ("kind", 128, "NOT NULL"),
                ("state", 16, "NOT NULL"),
                ("unique_key", 255, "NULL"),
            ] {
                manager
                    .get_connection()
                    .execute_unprepared(&format!(
                        "ALTER TABLE jobs MODIFY {column} VARCHAR({length}) \
                         CHARACTER SET utf8mb4 COLLATE utf8mb4_bin {null}"
                    ))
                    .await?;
            }
        }
        // The claim: `WHERE state = 'available' AND queue = ? AND run_at <= ? ORDER BY priority, run_at`.
        index(
            manager,
            "jobs",
            &["state", "queue", "priority", "run_at"],
            false,
        )
        .await?;
        // The rescue of expired leases: `WHERE state = 'running' AND locked_until < ?`.
        index(manager, "jobs", &["state", "locked_until"], false).await?;
        // One job per key while its window lasts (NULLs never collide).
        index(manager, "jobs", &["unique_key"], true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("jobs").to_owned())
            .await
    }
}
