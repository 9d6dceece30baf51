//! Small helpers over the database shared by every context.

use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, IntoActiveModel, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

/// Starts a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails outright
/// when another writer got in between, instead of waiting its turn.
pub(crate) async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..TransactionOptions::default()
    })
    .await
}

/// Inserts one row in a transaction of its own and returns it as stored.
///
/// Never `row.insert(db)` on the pool: on SQLite an autocommit `INSERT … RETURNING` hands back
/// its row before the step where the commit happens, and a commit that then fails (a full disk)
/// goes unreported, so the caller would answer success for a write that was lost. A failed
/// `COMMIT` is reported (tests/faults.rs).
pub(crate) async fn insert_row<A>(
    db: &DatabaseConnection,
    row: A,
) -> Result<<A::Entity as EntityTrait>::Model, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let txn = begin_write(db).await?;
    let stored = row.insert(&txn).await?;
    txn.commit().await?;
    Ok(stored)
}

/// Updates one row in a transaction of its own and returns it as stored; see [`insert_row`]
/// for why not `row.update(db)` on the pool.
pub(crate) async fn update_row<A>(
    db: &DatabaseConnection,
    row: A,
) -> Result<<A::Entity as EntityTrait>::Model, DbErr>
where
    A: ActiveModelTrait + ActiveModelBehavior + Send,
    <A::Entity as EntityTrait>::Model: IntoActiveModel<A>,
{
    let txn = begin_write(db).await?;
    let stored = row.update(&txn).await?;
    txn.commit().await?;
    Ok(stored)
}
