//! Notifications: a row per recipient per event (a mention, a comment on your post, a reply in
//! your thread), written by the `notify` job. `(user_id, event_key)` is unique, so a job that
//! runs twice notifies nobody twice. Rows go with their recipient or their actor.

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
                    .table("notifications")
                    .col(pk_uuid("id"))
                    .col(uuid("user_id"))
                    .col(string_len("kind", 16))
                    .col(uuid("actor_id"))
                    .col(string_len("source_kind", 16))
                    .col(uuid("source_id"))
                    .col(string_len_null("room_slug", 64))
                    .col(uuid_null("post_id"))
                    .col(string_len_null("video_id", 64))
                    .col(text("preview"))
                    .col(string_len("event_key", 128))
                    .col(big_integer_null("read_at"))
                    .col(big_integer("created_at"))
                    .foreign_key(&mut references("notifications", "user_id", "users"))
                    .foreign_key(&mut references("notifications", "actor_id", "users"))
                    .to_owned(),
            )
            .await?;
        // At most one notification per recipient per event.
        index(manager, "notifications", &["user_id", "event_key"], true).await?;
        // A user's unread ones, newest first, and their count:
        // `WHERE user_id = ? AND read_at IS NULL ORDER BY id DESC`.
        index(
            manager,
            "notifications",
            &["user_id", "read_at", "id"],
            false,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("notifications").to_owned())
            .await
    }
}
