//! The one migration set, run on SQLite, PostgreSQL and MySQL alike.
//!
//! MySQL commits each DDL statement on its own, so each table is its own migration: a failure
//! never leaves one half-built.

use sea_orm_migration::prelude::*;

mod m20261124_000001_users;
mod m20261124_000002_user_devices;
mod m20261124_000003_sessions;
mod m20261124_000004_refresh_tokens;
mod m20261124_000005_rooms;
mod m20261124_000006_room_members;
mod m20261124_000007_messages;
mod m20261124_000008_comments;
mod m20261124_000009_comments_video_id_case;
mod m20261124_000010_user_devices_device_id_case;
mod m20261124_000011_api_keys;
mod m20261124_000012_bus_messages;
mod m20261124_000013_room_reads;
mod m20261124_000014_posts;
mod m20261124_000015_post_comments;
mod m20261201_000001_jobs;
mod m20261201_000002_notifications;
mod m20261202_000001_sink_missed;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_users::Migration),
            Box::new(m20261124_000002_user_devices::Migration),
            Box::new(m20261124_000003_sessions::Migration),
            Box::new(m20261124_000004_refresh_tokens::Migration),
            Box::new(m20261124_000005_rooms::Migration),
            Box::new(m20261124_000006_room_members::Migration),
            Box::new(m20261124_000007_messages::Migration),
            Box::new(m20261124_000008_comments::Migration),
            Box::new(m20261124_000009_comments_video_id_case::Migration),
            Box::new(m20261124_000010_user_devices_device_id_case::Migration),
            Box::new(m20261124_000011_api_keys::Migration),
            Box::new(m20261124_000012_bus_messages::Migration),
            Box::new(m20261124_000013_room_reads::Migration),
            Box::new(m20261124_000014_posts::Migration),
            Box::new(m20261124_000015_post_comments::Migration),
            Box::new(m20261201_000001_jobs::Migration),
            Box::new(m20261201_000002_notifications::Migration),
            Box::new(m20261202_000001_sink_missed::Migration),
        ]
    }
}

/// A foreign key from `table.column` to `target.id`.
fn references(
    table: &'static str,
    column: &'static str,
    target: &'static str,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(format!("fk_{table}_{column}"))
        .from(table, column)
        .to(target, "id")
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

/// Creates an index named after its table and columns.
async fn index(
    manager: &SchemaManager<'_>,
    table: &'static str,
    columns: &[&'static str],
    unique: bool,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index
        .name(format!("idx_{table}_{}", columns.join("_")))
        .table(table);
    for column in columns {
        index.col(*column);
    }
    if unique {
        index.unique();
    }
    manager.create_index(index.to_owned()).await
}

/// Makes `table.column` (a `VARCHAR(length)`) compare exactly on MySQL/MariaDB, whose default
/// collation ignores case; SQLite and PostgreSQL already compare exactly. `down` undoes it.
async fn exact_text_on_mysql(
    manager: &SchemaManager<'_>,
    table: &str,
    column: &str,
    length: u32,
    exact: bool,
) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};
    if manager.get_database_backend() != DbBackend::MySql {
        return Ok(());
    }
    let collation = if exact {
        " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    } else {
        ""
    };
    let statement =
        format!("ALTER TABLE {table} MODIFY {column} VARCHAR({length}){collation} NOT NULL");
    manager
        .get_connection()
        .execute_unprepared(&statement)
        .await
        .map(|_| ())
}
