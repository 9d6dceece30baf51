//! Posts (system E): a title and a body by an author, a draft until published. Rows go with
//! their author.

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
                    .table("posts")
                    .col(pk_uuid("id"))
                    .col(uuid("author_id"))
                    .col(string_len("title", 200))
                    .col(text("body"))
                    // `draft` or `published`.
                    .col(string_len("status", 16))
                    // Set by the first publish and kept through unpublish and republish.
                    .col(big_integer_null("published_at"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .foreign_key(&mut references("posts", "author_id", "users"))
                    .to_owned(),
            )
            .await?;
        // Serve the feed (`WHERE status = 'published' … ORDER BY id DESC`) and an author's
        // posts (`WHERE author_id = ? … ORDER BY id DESC`).
        index(manager, "posts", &["status", "id"], false).await?;
        index(manager, "posts", &["author_id", "id"], false).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("posts").to_owned())
            .await
    }
}
