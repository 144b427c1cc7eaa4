//! Email magic links (F-MAGIC): what is stored about a link, and the storage trait.
//!
//! A link is a single-use login credential sent by mail. Only hashes are stored: the
//! SHA-256 of the code in the link, and the SHA-256 of the random *binding* value
//! kept in a cookie of the browser that asked for the link, so the link works only in
//! that browser. The service that issues and consumes links is
//! `rampart_identity::magic::MagicLinks`; `rampart-store` implements
//! [`MagicLinkStore`] in the `0400_magic.sql` migrations.

use async_trait::async_trait;
use time::OffsetDateTime;

use super::UserId;
use crate::store::StoreError;

/// Length of the stored hashes (SHA-256).
pub const MAGIC_HASH_LEN: usize = 32;

/// A link to store, as issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMagicLink {
    /// SHA-256 of the code in the link. The primary key.
    pub token_hash: [u8; MAGIC_HASH_LEN],
    /// The user the link signs in.
    pub user_id: UserId,
    /// SHA-256 of the requesting browser's binding cookie value.
    pub binding_hash: [u8; MAGIC_HASH_LEN],
    /// When it was issued.
    pub created_at: OffsetDateTime,
    /// When it stops working.
    pub expires_at: OffsetDateTime,
}

/// A presented link, to consume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicLinkAttempt {
    /// SHA-256 of the presented code.
    pub token_hash: [u8; MAGIC_HASH_LEN],
    /// SHA-256 of the presenting browser's binding cookie value.
    pub binding_hash: [u8; MAGIC_HASH_LEN],
    /// Now; a link whose `expires_at` is not after this is refused.
    pub at: OffsetDateTime,
}

/// The result of [`MagicLinkStore::consume_magic_link`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Consumption {
    /// The link existed, was unused, unexpired and bound to this browser; it is now
    /// marked used and signs in this user.
    Consumed(UserId),
    /// Anything else: unknown, used, expired or bound to another browser. The reasons
    /// are deliberately not told apart, so neither is the response.
    Refused,
}

/// Where magic links are kept.
#[async_trait]
pub trait MagicLinkStore: Send + Sync {
    /// Stores a new link.
    async fn insert_magic_link(&self, link: &NewMagicLink) -> Result<(), StoreError>;

    /// Marks the link used if — in one conditional statement — it exists, is bound to
    /// `attempt.binding_hash`, is unused and has not expired. Two concurrent
    /// consumptions of the same link cannot both see [`Consumption::Consumed`].
    /// A wrong binding leaves the link usable by the right browser.
    async fn consume_magic_link(
        &self,
        attempt: &MagicLinkAttempt,
    ) -> Result<Consumption, StoreError>;

    /// How many unused links for `user` were issued at or after `since` (to bound how
    /// much mail one address can be sent).
    async fn count_recent_magic_links(
        &self,
        user: &UserId,
        since: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Marks every other unused link of `user` used (after a successful sign-in, the
    /// older links in the mailbox stop working). Returns how many were marked.
    async fn retire_magic_links(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Deletes links that expired before `before`. Returns how many were deleted.
    async fn purge_magic_links(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}
