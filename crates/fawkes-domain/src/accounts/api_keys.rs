//! API keys: credentials for backend services, created and revoked by admins.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use fawkes_data::entity::api_key;
use garde::Validate;
use rand::RngCore;
use sea_orm::ActiveValue::Set;
use sea_orm::QueryOrder;
use sea_orm::prelude::*;
use serde::{Deserialize, Serialize};

use super::tokens::secret_hash;
use super::{Accounts, policy};
use crate::store::insert_row;
use crate::time::{now, to_datetime};
use crate::validation::validate;
use crate::{Actor, AuthFailure, DomainError, Scope, Service};

/// How stale `last_used_at` may be.
const LAST_USED_PRECISION_MS: i64 = 60_000;

/// Every API key starts with this, so a key is told apart from an access token at a glance.
pub const API_KEY_PREFIX: &str = "fk_";

/// An API key as admins see it (never the key itself).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(row: api_key::Model) -> Self {
        Self {
            id: row.id,
            scopes: row
                .scopes
                .split_whitespace()
                .filter_map(Scope::parse)
                .collect(),
            name: row.name,
            prefix: row.key_prefix,
            created_by: row.created_by,
            created_at: to_datetime(row.created_at),
            last_used_at: row.last_used_at.map(to_datetime),
            revoked_at: row.revoked_at.map(to_datetime),
        }
    }
}

/// The answer to creating a key: the only time the key is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    pub api_key: ApiKey,
    /// Send as `Authorization: Bearer <key>`. Store it now: it cannot be shown again.
    pub key: String,
}

/// A key to create.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct NewApiKey {
    #[garde(
        length(chars, min = 1, max = 100),
        custom(crate::validation::not_blank),
        custom(crate::validation::no_nul)
    )]
    #[schema(min_length = 1, max_length = 100, pattern = r"\S")]
    #[schema(example = "payments-service")]
    pub name: String,
    #[garde(length(min = 1, max = 8))]
    #[schema(min_items = 1, max_items = 8)]
    pub scopes: Vec<Scope>,
}

impl Accounts {
    /// `create_api_key`: admins only.
    pub async fn create_api_key(
        &self,
        actor: &Actor,
        input: NewApiKey,
    ) -> Result<CreatedApiKey, DomainError> {
        validate(&input)?;
        policy::manage_users(actor)?;
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let key = format!("{API_KEY_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let mut scopes: Vec<&str> = input.scopes.iter().map(|s| s.as_str()).collect();
        scopes.sort_unstable();
        scopes.dedup();
        let row = api_key::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(input.name.trim().to_owned()),
            key_prefix: Set(key.chars().take(10).collect()),
            key_hash: Set(secret_hash(&key)),
            scopes: Set(scopes.join(" ")),
            created_by: Set(actor.user_id()),
            created_at: Set(now()),
            last_used_at: Set(None),
            revoked_at: Set(None),
        };
        let row = insert_row(self.db.as_ref(), row).await?;
        Ok(CreatedApiKey {
            api_key: ApiKey::from(row),
            key,
        })
    }

    /// Every key, newest first; admins only.
    pub async fn list_api_keys(&self, actor: &Actor) -> Result<Vec<ApiKey>, DomainError> {
        policy::manage_users(actor)?;
        let rows = api_key::Entity::find()
            .order_by_desc(api_key::Column::Id)
            .all(self.db.as_ref())
            .await?;
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// `revoke_api_key`: admins only; the key stops working at once.
    pub async fn revoke_api_key(&self, actor: &Actor, id: Uuid) -> Result<(), DomainError> {
        policy::manage_users(actor)?;
        let revoked = api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(now()))
            .filter(api_key::Column::Id.eq(id))
            .filter(api_key::Column::RevokedAt.is_null())
            .exec(self.db.as_ref())
            .await?;
        if revoked.rows_affected == 0 {
            return Err(DomainError::NotFound("api key"));
        }
        Ok(())
    }

    /// The service holding `key`, if the key exists and is not revoked.
    pub(super) async fn authenticate_api_key(&self, key: &str) -> Result<Actor, DomainError> {
        let row = api_key::Entity::find()
            .filter(api_key::Column::KeyHash.eq(secret_hash(key)))
            .filter(api_key::Column::RevokedAt.is_null())
            .one(self.db.as_ref())
            .await?
            .ok_or(AuthFailure::InvalidToken)?;
        // Recorded at most once a minute: a busy service must not turn every call into a write.
        let at = now();
        if row
            .last_used_at
            .is_none_or(|last| at - last > LAST_USED_PRECISION_MS)
        {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::LastUsedAt, Expr::value(at))
                .filter(api_key::Column::Id.eq(row.id))
                .exec(self.db.as_ref())
                .await?;
        }
        let scopes = row
            .scopes
            .split_whitespace()
            .filter_map(Scope::parse)
            .collect();
        Ok(Actor::Service(Service {
            key_id: row.id,
            scopes,
        }))
    }
}
