//! The accounts context's inputs and outputs.

use chrono::{DateTime, Utc};
use fawkes_data::entity::{user, user_device};
use garde::Validate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Role;
use crate::time::to_datetime;

/// A user as they and the admins see them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub role: Role,
    pub is_active: bool,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<user::Model> for User {
    fn from(row: user::Model) -> Self {
        Self {
            id: row.id,
            role: Role::parse(&row.role).unwrap_or(Role::User),
            email: row.email,
            username: row.username,
            is_active: row.is_active,
            last_login_at: row.last_login_at.map(to_datetime),
            created_at: to_datetime(row.created_at),
            updated_at: to_datetime(row.updated_at),
        }
    }
}

/// What anyone signed in may see of a user.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicUser {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<user::Model> for PublicUser {
    fn from(row: user::Model) -> Self {
        Self {
            id: row.id,
            role: Role::parse(&row.role).unwrap_or(Role::User),
            username: row.username,
            created_at: to_datetime(row.created_at),
        }
    }
}

/// The answer to a registration, login or refresh.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuthTokens {
    pub user: User,
    /// A short-lived JWT for `Authorization: Bearer …` and the socket's `token` param.
    pub access_token: String,
    /// Opaque; single use. Exchange it at `/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: String,
    /// Seconds until `access_token` expires.
    pub expires_in: i64,
}

/// A device the user has logged in from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Device {
    /// Pass to `DELETE /devices/{id}` to sign this device out.
    pub id: Uuid,
    /// The client's own identifier, as sent at login.
    pub device_id: String,
    pub name: Option<String>,
    pub info: Option<serde_json::Value>,
    pub is_active: bool,
    pub last_seen_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

impl From<user_device::Model> for Device {
    fn from(row: user_device::Model) -> Self {
        Self {
            id: row.id,
            device_id: row.device_id,
            name: row.name,
            info: row.info,
            is_active: row.is_active,
            last_seen_at: to_datetime(row.last_seen_at),
            created_at: to_datetime(row.created_at),
        }
    }
}

// Inputs carrying passwords deliberately implement no `Debug`, so they cannot end up in a log.

// Usernames allow letters, digits, `_`, `.` and `-` only, so they are safe in URLs and mentions
// and can never be mistaken for an email address at login.

/// Sign-up.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
pub struct RegisterInput {
    #[garde(email, length(max = 254))]
    #[schema(format = Email)]
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[garde(length(chars, min = 3, max = 32), pattern(r"^[A-Za-z0-9_.-]+$"))]
    #[schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.-]+$")]
    #[schema(example = "ada")]
    pub username: String,
    #[garde(length(chars, min = 8, max = 128))]
    #[schema(min_length = 8, max_length = 128)]
    #[schema(example = "correct horse battery")]
    pub password: String,
    /// The client's identifier for this device; the session is bound to it.
    #[garde(length(min = 1, max = 128), custom(crate::validation::no_nul_if_given))]
    #[schema(min_length = 1)]
    pub device_id: Option<String>,
    #[garde(length(chars, max = 100), custom(crate::validation::no_nul_if_given))]
    #[schema(max_length = 100)]
    pub device_name: Option<String>,
}

/// Login with email or username.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
pub struct LoginInput {
    /// Email address or username.
    #[garde(length(min = 1, max = 254), custom(crate::validation::no_nul))]
    #[schema(min_length = 1)]
    #[schema(example = "ada")]
    pub login: String,
    #[garde(length(min = 1, max = 128))]
    #[schema(min_length = 1)]
    pub password: String,
    /// The client's identifier for this device; registers it or refreshes its last-seen time.
    #[garde(length(min = 1, max = 128), custom(crate::validation::no_nul_if_given))]
    #[schema(min_length = 1)]
    pub device_id: Option<String>,
    #[garde(length(chars, max = 100), custom(crate::validation::no_nul_if_given))]
    #[schema(max_length = 100)]
    pub device_name: Option<String>,
    /// Free-form details about the device (platform, app version).
    #[garde(skip)]
    pub device_info: Option<serde_json::Value>,
}

/// A refresh token to exchange.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
pub struct RefreshInput {
    #[garde(length(min = 1, max = 512))]
    #[schema(min_length = 1)]
    pub refresh_token: String,
}

/// An account created by an operator or an admin.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
pub struct CreateUser {
    #[garde(email, length(max = 254))]
    #[schema(format = Email)]
    pub email: String,
    #[garde(length(chars, min = 3, max = 32), pattern(r"^[A-Za-z0-9_.-]+$"))]
    #[schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.-]+$")]
    pub username: String,
    #[garde(length(chars, min = 8, max = 128))]
    #[schema(min_length = 8, max_length = 128)]
    pub password: String,
    /// Defaults to `user`.
    #[garde(skip)]
    pub role: Option<Role>,
}

/// A new name for the signed-in user's own account; the same rules as at sign-up.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct ChangeUsername {
    #[garde(length(chars, min = 3, max = 32), pattern(r"^[A-Za-z0-9_.-]+$"))]
    #[schema(min_length = 3, max_length = 32, pattern = r"^[A-Za-z0-9_.-]+$")]
    #[schema(example = "ada")]
    pub username: String,
}

/// A new password for the signed-in user's own account. The current one is asked for again so
/// that a session left open (or a stolen cookie) cannot lock the owner out.
#[derive(Deserialize, Validate, utoipa::ToSchema)]
pub struct ChangePassword {
    #[garde(length(min = 1, max = 128))]
    #[schema(min_length = 1)]
    pub current_password: String,
    /// The same rules as at sign-up.
    #[garde(length(chars, min = 8, max = 128))]
    #[schema(min_length = 8, max_length = 128)]
    pub new_password: String,
}

/// An admin's change to a user.
#[derive(Debug, Clone, Default, Deserialize, Validate, utoipa::ToSchema)]
pub struct UpdateUser {
    #[garde(skip)]
    pub role: Option<Role>,
    /// `false` signs the user out everywhere and refuses their logins and tokens.
    #[garde(skip)]
    pub is_active: Option<bool>,
}
