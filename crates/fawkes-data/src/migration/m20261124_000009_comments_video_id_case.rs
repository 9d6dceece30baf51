//! Video ids are case-sensitive (`AbC` and `abc` are different videos), but MySQL/MariaDB compare
//! text with the database's default, case-insensitive collation. This gives `comments.video_id` a
//! binary collation there; SQLite and PostgreSQL already compare text exactly.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::MySql {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE comments MODIFY video_id VARCHAR(64) \
                 CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL",
            )
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::MySql {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("ALTER TABLE comments MODIFY video_id VARCHAR(64) NOT NULL")
            .await
            .map(|_| ())
    }
}
