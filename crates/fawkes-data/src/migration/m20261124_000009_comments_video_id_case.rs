//! Video ids are case-sensitive (`AbC` and `abc` are different videos), but MySQL/MariaDB compare
//! text case-insensitively by default.

use sea_orm_migration::prelude::*;

use super::exact_text_on_mysql;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        exact_text_on_mysql(manager, "comments", "video_id", 64, true).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        exact_text_on_mysql(manager, "comments", "video_id", 64, false).await
    }
}
