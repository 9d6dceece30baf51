//! Comments on posts, with one level of replies: `parent_id` names the thread's first comment.
//! Rows go with their post, their author, and (replies) their thread.

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
                    .table("post_comments")
                    .col(pk_uuid("id"))
                    .col(uuid("post_id"))
                    .col(uuid("author_id"))
                    .col(uuid_null("parent_id"))
                    .col(text("body"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .foreign_key(&mut references("post_comments", "post_id", "posts"))
                    .foreign_key(&mut references("post_comments", "author_id", "users"))
                    .foreign_key(&mut references(
                        "post_comments",
                        "parent_id",
                        "post_comments",
                    ))
                    .to_owned(),
            )
            .await?;
        // Serves a post's comments, oldest first: `WHERE post_id = ? AND id > ? ORDER BY id`.
        index(manager, "post_comments", &["post_id", "id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("post_comments").to_owned())
            .await
    }
}
