use sea_orm_migration::{prelude::*, schema::*};

use crate::{LOBBY_ROOM_ID, LOBBY_SLUG};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("rooms")
                    .col(pk_uuid("id"))
                    .col(string_len_uniq("slug", 64))
                    .col(string_len("name", 100))
                    .col(boolean("is_private"))
                    .col(uuid_null("owner_id"))
                    .col(big_integer("created_at"))
                    .col(big_integer("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_rooms_owner_id")
                            .from("rooms", "owner_id")
                            .to("users", "id")
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        // The public room every deployment has, created with the schema so it exists before
        // anyone can sign up.
        let now = chrono::Utc::now().timestamp_millis();
        let lobby = Query::insert()
            .into_table("rooms")
            .columns([
                "id",
                "slug",
                "name",
                "is_private",
                "created_at",
                "updated_at",
            ])
            .values([
                LOBBY_ROOM_ID.into(),
                LOBBY_SLUG.into(),
                "Lobby".into(),
                false.into(),
                now.into(),
                now.into(),
            ])
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(lobby).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("rooms").to_owned())
            .await
    }
}
