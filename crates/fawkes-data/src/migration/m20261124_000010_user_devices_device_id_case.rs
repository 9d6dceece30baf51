//! Device ids come from clients and are compared exactly ("Phone" and "phone" are two devices),
//! but MySQL/MariaDB compare text case-insensitively by default. Binary collation there; SQLite
//! and PostgreSQL already compare exactly.

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
                "ALTER TABLE user_devices MODIFY device_id VARCHAR(128) \
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
            .execute_unprepared("ALTER TABLE user_devices MODIFY device_id VARCHAR(128) NOT NULL")
            .await
            .map(|_| ())
    }
}
