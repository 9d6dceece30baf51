use chrono::{DateTime, Utc};
use fawkes_data::entity::{post, post_comment};
use garde::Validate;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Author;
use crate::time::to_datetime;
use crate::validation::not_blank;

/// Where a post stands: only its author and admins see a draft.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostStatus {
    Draft,
    Published,
}

impl PostStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PostStatus::Draft => "draft",
            PostStatus::Published => "published",
        }
    }

    /// The stored value; anything unknown reads as a draft, the status that shows least.
    pub(crate) fn parse(stored: &str) -> Self {
        match stored {
            "published" => PostStatus::Published,
            _ => PostStatus::Draft,
        }
    }
}

/// A post.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Post {
    pub id: Uuid,
    pub author: Author,
    pub title: String,
    pub body: String,
    pub status: PostStatus,
    /// When it was first published; kept through unpublish and republish. `null` until then.
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Post {
    pub(super) fn new(row: post::Model, author: Author) -> Self {
        Self {
            id: row.id,
            author,
            title: row.title,
            body: row.body,
            status: PostStatus::parse(&row.status),
            published_at: row.published_at.map(to_datetime),
            created_at: to_datetime(row.created_at),
            updated_at: to_datetime(row.updated_at),
        }
    }
}

/// A comment on a post.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PostComment {
    pub id: Uuid,
    pub post_id: Uuid,
    /// The first comment of the thread this one replies to; `null` for a thread's first.
    pub parent_id: Option<Uuid>,
    pub author: Author,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PostComment {
    pub(super) fn new(row: post_comment::Model, author: Author) -> Self {
        Self {
            id: row.id,
            post_id: row.post_id,
            parent_id: row.parent_id,
            author,
            body: row.body,
            created_at: to_datetime(row.created_at),
            updated_at: to_datetime(row.updated_at),
        }
    }
}

/// A new post; it starts as a draft.
#[derive(Debug, Clone, Default, Deserialize, Validate, utoipa::ToSchema)]
pub struct NewPost {
    /// 1 to 200 characters, not only white space.
    #[garde(
        length(chars, min = 1, max = 200),
        custom(not_blank),
        custom(crate::validation::no_nul)
    )]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    #[schema(example = "Hello, posts")]
    pub title: String,
    /// At most 20000 characters; may be empty while a draft.
    #[garde(length(chars, max = 20000), custom(crate::validation::no_nul))]
    #[schema(max_length = 20000)]
    #[serde(default)]
    #[schema(example = "The first post.")]
    pub body: String,
}

/// Changes to a post; fields left out stay as they are.
#[derive(Debug, Clone, Default, Deserialize, Validate, utoipa::ToSchema)]
pub struct PostChanges {
    /// 1 to 200 characters, not only white space.
    #[garde(
        length(chars, min = 1, max = 200),
        custom(not_blank_if_given),
        custom(crate::validation::no_nul_if_given)
    )]
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    pub title: Option<String>,
    /// At most 20000 characters; a published post's body cannot become empty.
    #[garde(length(chars, max = 20000), custom(crate::validation::no_nul_if_given))]
    #[schema(max_length = 20000)]
    pub body: Option<String>,
}

/// A comment to add to a published post.
#[derive(Debug, Clone, Deserialize, Validate, utoipa::ToSchema)]
pub struct NewPostComment {
    /// 1 to 4000 characters, not only white space.
    #[garde(
        length(chars, min = 1, max = 4000),
        custom(not_blank),
        custom(crate::validation::no_nul)
    )]
    #[schema(min_length = 1, max_length = 4000, pattern = r"\S")]
    #[schema(example = "Nice post!")]
    pub body: String,
    /// A comment of the same post to reply to; a reply to a reply joins the same thread.
    #[garde(skip)]
    #[serde(default)]
    pub parent_id: Option<Uuid>,
}

/// Which posts to list.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostFilter {
    /// Only this author's posts.
    pub author_id: Option<Uuid>,
    /// Only drafts (the caller's own; every draft for admins) or only published posts.
    pub status: Option<PostStatus>,
}

fn not_blank_if_given(value: &Option<String>, context: &()) -> garde::Result {
    match value {
        Some(text) => not_blank(text, context),
        None => Ok(()),
    }
}
