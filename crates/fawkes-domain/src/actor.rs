use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user's role. Roles are checked by the policies, never by the web layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Affiliate,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Affiliate => "affiliate",
        }
    }

    /// Parses a stored or typed role name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "admin" => Some(Role::Admin),
            "user" => Some(Role::User),
            "affiliate" => Some(Role::Affiliate),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signed-in user, as established from a valid access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: Uuid,
    /// The role as stored now, not as it was when the token was issued.
    pub role: Role,
    /// The login session (refresh-token family) the token belongs to.
    pub session_id: Uuid,
    /// The `user_devices` row of that session, if the login named a device.
    pub device_id: Option<Uuid>,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Publish events to topics through `POST /api/v1/broadcast`.
    Publish,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Publish => "publish",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "publish" => Some(Scope::Publish),
            _ => None,
        }
    }
}

/// A backend service, authenticated by an API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub key_id: Uuid,
    pub scopes: Vec<Scope>,
}

/// Who is performing an action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// Nobody signed in: may register and log in, nothing else.
    Anonymous,
    /// A signed-in user.
    User(Identity),
    /// The operator at the command line (`fawkes user create`); may do what an admin may.
    System,
    /// A backend service with an API key: may do what its scopes say, nothing else.
    Service(Service),
}

impl Actor {
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Actor::User(identity) => Some(identity),
            _ => None,
        }
    }

    pub fn user_id(&self) -> Option<Uuid> {
        self.identity().map(|i| i.user_id)
    }

    pub fn is_admin(&self) -> bool {
        match self {
            Actor::System => true,
            Actor::User(identity) => identity.role == Role::Admin,
            Actor::Anonymous | Actor::Service(_) => false,
        }
    }

    /// True for admins and for services holding `scope`.
    pub fn may(&self, scope: Scope) -> bool {
        match self {
            Actor::Service(service) => service.scopes.contains(&scope),
            other => other.is_admin(),
        }
    }

    /// True when the actor is the user `user_id`.
    pub fn is(&self, user_id: Uuid) -> bool {
        self.user_id() == Some(user_id)
    }
}
