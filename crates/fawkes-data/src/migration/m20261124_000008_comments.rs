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
                    .table("comments")
                    .col(pk_uuid("id"))
                    .col(string_len("video_id", 64))
                    .col(uuid("author_id"))
                    .col(text("content"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .foreign_key(&mut references("comments", "author_id", "users"))
                    .to_owned(),
            )
            .await?;
        index(manager, "comments", &["video_id", "id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("comments").to_owned())
            .await
    }
}
