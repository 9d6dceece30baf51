//! The missed deliveries (`sink_missed`): recorded when a sink could not take them, sent again
//! by reconciliation in order.

use fawkes_data::entity::sink_missed;
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::DeliveryArgs;

/// Records `args` as missed by its sink. Recording the same delivery twice (a job that ran
/// twice) keeps one row.
pub(crate) async fn record<C: ConnectionTrait>(
    conn: &C,
    args: &DeliveryArgs,
    error: &str,
) -> Result<(), sea_orm::DbErr> {
    let row = sink_missed::ActiveModel {
        id: Set(args.delivery_id),
        sink: Set(args.sink.clone()),
        event: Set(args.event.clone()),
        args: Set(serde_json::to_string(args).unwrap_or_default()),
        attempts: Set(0),
        last_error: Set(Some(error.to_owned())),
        missed_at: Set(chrono::Utc::now().timestamp_millis()),
    };
    // MySQL has no DO NOTHING; `id = id` is its no-op.
    sink_missed::Entity::insert(row)
        .on_conflict(
            OnConflict::column(sink_missed::Column::Id)
                .do_nothing_on([sink_missed::Column::Id])
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Whether `sink` has missed deliveries waiting.
pub(crate) async fn any<C: ConnectionTrait>(conn: &C, sink: &str) -> Result<bool, sea_orm::DbErr> {
    let first: Option<Uuid> = sink_missed::Entity::find()
        .select_only()
        .column(sink_missed::Column::Id)
        .filter(sink_missed::Column::Sink.eq(sink))
        .limit(1)
        .into_tuple()
        .one(conn)
        .await?;
    Ok(first.is_some())
}

/// The oldest `limit` missed deliveries of `sink`, in event order.
pub(crate) async fn oldest<C: ConnectionTrait>(
    conn: &C,
    sink: &str,
    limit: u64,
) -> Result<Vec<sink_missed::Model>, sea_orm::DbErr> {
    sink_missed::Entity::find()
        .filter(sink_missed::Column::Sink.eq(sink))
        .order_by_asc(sink_missed::Column::Id)
        .limit(limit)
        .all(conn)
        .await
}

/// The sinks that have missed deliveries.
pub(crate) async fn sinks_with_backlog<C: ConnectionTrait>(
    conn: &C,
) -> Result<Vec<String>, sea_orm::DbErr> {
    sink_missed::Entity::find()
        .select_only()
        .column(sink_missed::Column::Sink)
        .distinct()
        .into_tuple()
        .all(conn)
        .await
}

pub(crate) async fn delivered<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
) -> Result<(), sea_orm::DbErr> {
    sink_missed::Entity::delete_by_id(id).exec(conn).await?;
    Ok(())
}

pub(crate) async fn failed_again<C: ConnectionTrait>(
    conn: &C,
    id: Uuid,
    error: &str,
) -> Result<(), sea_orm::DbErr> {
    sink_missed::Entity::update_many()
        .col_expr(
            sink_missed::Column::Attempts,
            Expr::col(sink_missed::Column::Attempts).add(1),
        )
        .col_expr(sink_missed::Column::LastError, Expr::value(error))
        .filter(sink_missed::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// How many deliveries each sink has missed (for operators and tests).
pub async fn missed_counts<C: ConnectionTrait>(
    conn: &C,
) -> Result<std::collections::BTreeMap<String, u64>, sea_orm::DbErr> {
    let rows: Vec<(String, i64)> = sink_missed::Entity::find()
        .select_only()
        .column(sink_missed::Column::Sink)
        .column_as(Expr::col(sink_missed::Column::Id).count(), "n")
        .group_by(sink_missed::Column::Sink)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(sink, n)| (sink, u64::try_from(n).unwrap_or(0)))
        .collect())
}
