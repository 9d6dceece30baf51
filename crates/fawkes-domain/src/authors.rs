//! Who wrote what: the usernames shown next to messages, comments, posts and notifications,
//! read through a coherent cache, since every list asks for them again.

use std::collections::HashMap;
use std::sync::Arc;

use fawkes_data::entity::user;
use fawkes_pubsub::PubSub;
use sea_orm::QuerySelect;
use sea_orm::prelude::*;
use serde::{Deserialize, Serialize};

use crate::DomainError;
use crate::coherent::{CacheSettings, CacheStats, CoherentCache, ReadStarted};

/// Who wrote a message or comment, as shown next to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Author {
    pub id: Uuid,
    pub username: String,
}

/// The authors of rows, by user id. Cheap to clone; every context shares one.
#[derive(Clone, Debug)]
pub(crate) struct Authors {
    db: Arc<DatabaseConnection>,
    cache: CoherentCache<Uuid, Author>,
}

impl Authors {
    pub fn new(db: Arc<DatabaseConnection>, bus: PubSub, settings: CacheSettings) -> Self {
        let cache = CoherentCache::new(
            bus,
            "fawkes:cache:authors",
            settings,
            Arc::new(CacheStats::default()),
        );
        Self { db, cache }
    }

    pub fn stats(&self) -> &Arc<CacheStats> {
        self.cache.stats()
    }

    /// The authors of a batch of rows: the cached ones, and the rest in one query.
    pub async fn load(
        &self,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<HashMap<Uuid, Author>, DomainError> {
        let mut ids: Vec<Uuid> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut authors = HashMap::with_capacity(ids.len());
        ids.retain(|id| match self.cache.get(id) {
            Some(author) => {
                authors.insert(*id, author);
                false
            }
            None => true,
        });
        if ids.is_empty() {
            return Ok(authors);
        }
        let started = self.cache.read_started();
        let rows: Vec<(Uuid, String)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Username)
            .filter(user::Column::Id.is_in(ids))
            .into_tuple()
            .all(self.db.as_ref())
            .await?;
        for (id, username) in rows {
            let author = Author { id, username };
            self.cache.keep(started, id, author.clone());
            authors.insert(id, author);
        }
        Ok(authors)
    }

    /// Where the names stand: equal markers mean no name changed in between.
    pub(crate) fn names_now(&self) -> ReadStarted {
        self.cache.read_started()
    }

    /// Says everywhere that `user_id`'s name changed; call after the change is written.
    pub fn renamed(&self, user_id: Uuid) {
        self.cache.invalidate(&[user_id]);
    }
}

/// The author of one row; a deleted account shows as `[deleted]`.
pub(crate) fn author_of(authors: &HashMap<Uuid, Author>, id: Uuid) -> Author {
    authors.get(&id).cloned().unwrap_or_else(|| Author {
        id,
        username: "[deleted]".to_owned(),
    })
}
