use std::collections::HashMap;

use fawkes_data::entity::user;
use sea_orm::prelude::*;
use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Who wrote a message or comment, as shown next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Author {
    pub id: Uuid,
    pub username: String,
}

/// The authors of a batch of rows, in one query.
pub(crate) async fn load_authors(
    db: &DatabaseConnection,
    ids: impl IntoIterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Author>, DomainError> {
    let mut ids: Vec<Uuid> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            (
                row.id,
                Author {
                    id: row.id,
                    username: row.username,
                },
            )
        })
        .collect())
}

/// The author of one row; a deleted account shows as `[deleted]`.
pub(crate) fn author_of(authors: &HashMap<Uuid, Author>, id: Uuid) -> Author {
    authors.get(&id).cloned().unwrap_or_else(|| Author {
        id,
        username: "[deleted]".to_owned(),
    })
}
