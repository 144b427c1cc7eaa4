//! Revocations across replicas within 1 s (F-HA): cache invalidation messages, and
//! how long the identity caches may trust what they hold.
//!
//! Every replica caches what it read from the database on the hot path — validated
//! sessions and API tokens (10 s), refresh-family states (10 s) and user snapshots
//! (5 s) — and evicts its own entries at once when *it* revokes something. Another
//! replica must see a logout, a revocation or a security change **within 1 s**. So:
//!
//! 1. After the database commit, the service that made the change evicts locally and
//!    [`Fanout::publish`]es an [`Invalidation`]. With Redis configured the transport
//!    (the binary wires `rampart_redis::Fanout`) sends it on the channel
//!    `<redis.key_prefix>:invalidate`; every process subscribes and evicts the
//!    affected entries as the message arrives ([`Fanout::receive`]).
//! 2. Messages only ever make a process **forget**; nothing is taken from them as
//!    truth (the database is the truth). Whoever can publish on the channel can cost
//!    database reads, never grant access. A message this version does not understand
//!    makes the process forget everything.
//! 3. Pub/sub is at-most-once, so the caches **fail closed** whenever delivery is not
//!    guaranteed: until the subscription is confirmed, and from the moment it is lost
//!    (closed connection, or an unanswered ping — see `rampart_redis::fanout`) until
//!    it is back, every cache entry lives at most [`SHORT_TTL_SECS`] (1 s), and on
//!    losing it every cached entry is dropped at once. The bound therefore holds with
//!    Redis down too — at the price of a database read per credential per second.
//! 4. A read that raced an invalidation cannot be cached for long: a cache takes a
//!    [`Ticket`] before it reads the database, and an entry whose ticket predates any
//!    invalidation (or change of subscription state) gets the short lifetime.
//!
//! Without Redis (one node) there is no transport: [`Fanout::local`] keeps the normal
//! lifetimes, and the ticket rule still closes the local read/revoke race.
//!
//! # Message format
//!
//! JSON, at most [`MAX_MESSAGE_BYTES`]:
//! `{"v":1,"from":"<process id>","inv":{"kind":"session","user":"usr_…","session":"ses_…"}}`.
//! Only public ids travel (`usr_`, `ses_`, `fam_`, `tok_`): never a credential or a
//! credential hash. A process ignores its own messages (`from`); the resync message
//! has an empty `from`.
//!
//! # Known limit
//!
//! If the *revoking* process cannot reach Redis while the others can, its messages
//! wait in its publish queue (retried; a resync follows if the queue overflowed) and
//! the others see the change within their normal cache lifetime (≤ 10 s), not 1 s.
//! `rampart_fanout_subscribed` and the publish warnings make that state visible.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::accounts::Accounts;
use crate::sessions::Sessions;
use crate::tokens::Tokens;
use crate::tokens::api::ApiTokens;

/// The longest a cache entry lives while delivery of invalidations is not
/// guaranteed (and for a read that raced an invalidation).
pub const SHORT_TTL_SECS: i64 = 1;

/// Longest message accepted.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// The message format version.
const VERSION: u8 = 1;

/// What changed, as told to the other processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Invalidation {
    /// A session ended or was re-issued under a new id (logout, revocation, rotation,
    /// replaced at login). `session` is the old public id.
    Session {
        /// The owner.
        user: String,
        /// The session's public id (`ses_…`).
        session: String,
    },
    /// Every session of `user` except `keep` was revoked.
    SessionsOf {
        /// The owner.
        user: String,
        /// The session kept (re-issued separately), if any.
        keep: Option<String>,
    },
    /// A refresh family was revoked (logout, reuse, security change): its access
    /// tokens stop too.
    Family {
        /// The family id (`fam_…`).
        family: String,
    },
    /// An API token was revoked.
    ApiToken {
        /// Its public id (`tok_…`).
        token: String,
    },
    /// Every API token of `user` was revoked.
    ApiTokensOf {
        /// The owner.
        user: String,
    },
    /// The user's security state changed (password, MFA, roles, tenants, attributes,
    /// disabled): its cached snapshot is stale.
    User {
        /// The user.
        user: String,
    },
    /// The JWT signing keyring changed (rotation): reload it.
    SigningKeys,
    /// Anything may have changed (messages were lost): forget everything.
    All,
}

/// Sends encoded invalidations to the other processes.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Queues `payload` for every subscriber. Must not block.
    fn send(&self, payload: Vec<u8>);
    /// Waits until everything queued was sent, at most `within`; whether it was.
    async fn flush(&self, within: Duration) -> bool;
}

/// Taken before a cache reads the database; see [`Fanout::expiry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// How invalidations are delivered to this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// No other process (no Redis): normal cache lifetimes.
    Local,
    /// Subscribed: every invalidation arrives; normal cache lifetimes.
    Subscribed,
    /// Redis is configured but the subscription is not (yet, or no longer) there:
    /// entries live at most [`SHORT_TTL_SECS`].
    Degraded,
}

/// The caches a [`Fanout`] evicts from.
#[derive(Default)]
pub struct Targets {
    /// Sessions.
    pub sessions: Weak<Sessions>,
    /// Access and refresh tokens, and the keyring behind them.
    pub tokens: Weak<Tokens>,
    /// API tokens.
    pub api_tokens: Weak<ApiTokens>,
    /// User snapshots.
    pub accounts: Weak<Accounts>,
}

/// The invalidation hub of one process. Shared by the identity services.
pub struct Fanout {
    origin: String,
    delivery: AtomicU8,
    generation: AtomicU64,
    transport: OnceLock<Arc<dyn Transport>>,
    targets: OnceLock<Targets>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    v: u8,
    from: String,
    inv: Invalidation,
}

const LOCAL: u8 = 0;
const SUBSCRIBED: u8 = 1;
const DEGRADED: u8 = 2;

impl Fanout {
    /// One node, no transport.
    pub fn local() -> Arc<Self> {
        Arc::new(Self::with(LOCAL))
    }

    /// Replicas sharing Redis: degraded (short lifetimes) until [`Self::subscribed`].
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::with(DEGRADED))
    }

    fn with(delivery: u8) -> Self {
        let origin = rampart_crypto::random::token::<12>().unwrap_or_else(|_| {
            // Without randomness this process would merely also apply its own
            // messages (an extra eviction): harmless.
            String::from("unnamed")
        });
        Self {
            origin,
            delivery: AtomicU8::new(delivery),
            generation: AtomicU64::new(0),
            transport: OnceLock::new(),
            targets: OnceLock::new(),
        }
    }

    /// Sets the transport that carries published messages (once).
    pub fn set_transport(&self, transport: Arc<dyn Transport>) {
        let _ = self.transport.set(transport);
    }

    /// Names the caches that received messages evict from (once, after the services
    /// exist).
    pub fn attach(&self, targets: Targets) {
        let _ = self.targets.set(targets);
    }

    /// How invalidations reach this process now.
    pub fn delivery(&self) -> Delivery {
        match self.delivery.load(Ordering::SeqCst) {
            LOCAL => Delivery::Local,
            SUBSCRIBED => Delivery::Subscribed,
            _ => Delivery::Degraded,
        }
    }

    /// Tells the other processes about a committed change (this process has already
    /// evicted its own entries).
    pub fn publish(&self, invalidation: Invalidation) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(transport) = self.transport.get() {
            transport.send(self.encode(invalidation));
        }
    }

    /// Waits until every published message has left this process, at most `within`
    /// (maintenance commands call it before they exit). Whether it had.
    pub async fn flush(&self, within: Duration) -> bool {
        match self.transport.get() {
            Some(transport) => transport.flush(within).await,
            None => true,
        }
    }

    /// The message that makes every subscriber forget everything (published by the
    /// transport after it had to drop messages).
    pub fn resync_payload(&self) -> Vec<u8> {
        encode(String::new(), Invalidation::All)
    }

    /// A message arrived from the channel: evicts what it names. Messages from this
    /// process are ignored; malformed or unknown ones evict everything.
    pub fn receive(&self, payload: &[u8]) {
        let invalidation = match decode(payload) {
            Some(envelope) if envelope.from == self.origin => return,
            Some(envelope) => envelope.inv,
            None => {
                tracing::warn!(
                    bytes = payload.len(),
                    "unreadable fan-out message; forgetting every cached credential"
                );
                Invalidation::All
            }
        };
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.apply(&invalidation);
    }

    /// The subscription is confirmed: normal lifetimes from now on.
    pub fn subscribed(&self) {
        // Bump first: a read that began before the subscription existed must not be
        // cached for long (it may have missed a message).
        self.generation.fetch_add(1, Ordering::SeqCst);
        let _ = self.delivery.compare_exchange(
            DEGRADED,
            SUBSCRIBED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    /// The subscription is lost: short lifetimes, and everything cached is dropped.
    pub fn lost(&self) {
        let _ = self.delivery.compare_exchange(
            SUBSCRIBED,
            DEGRADED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.apply(&Invalidation::All);
    }

    /// Taken before reading what will be cached.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::SeqCst))
    }

    /// When an entry read under `ticket` at `now_unix` expires, for a cache whose
    /// normal lifetime is `ttl_secs`: the short lifetime while degraded or if anything
    /// was invalidated since the ticket, else the normal one. Cache expiries are whole
    /// Unix seconds compared with `>`, so `now + 1` lasts at most 1 s.
    pub fn expiry(&self, ticket: Ticket, now_unix: i64, ttl_secs: i64) -> i64 {
        let degraded = self.delivery.load(Ordering::SeqCst) == DEGRADED;
        let raced = self.generation.load(Ordering::SeqCst) != ticket.0;
        let ttl = if degraded || raced {
            ttl_secs.min(SHORT_TTL_SECS)
        } else {
            ttl_secs
        };
        now_unix.saturating_add(ttl)
    }

    fn encode(&self, invalidation: Invalidation) -> Vec<u8> {
        encode(self.origin.clone(), invalidation)
    }

    fn apply(&self, invalidation: &Invalidation) {
        let Some(targets) = self.targets.get() else {
            return;
        };
        match invalidation {
            Invalidation::Session { session, .. } => {
                if let Some(sessions) = targets.sessions.upgrade() {
                    sessions.evict(session);
                }
            }
            Invalidation::SessionsOf { user, keep } => {
                if let Some(sessions) = targets.sessions.upgrade() {
                    sessions.evict_user(user, keep.as_deref());
                }
            }
            Invalidation::Family { family } => {
                if let Some(tokens) = targets.tokens.upgrade() {
                    tokens.evict_family(family);
                }
            }
            Invalidation::ApiToken { token } => {
                if let Some(api_tokens) = targets.api_tokens.upgrade() {
                    api_tokens.evict(token);
                }
            }
            Invalidation::ApiTokensOf { user } => {
                if let Some(api_tokens) = targets.api_tokens.upgrade() {
                    api_tokens.evict_user(user);
                }
            }
            Invalidation::User { user } => {
                if let Some(accounts) = targets.accounts.upgrade() {
                    accounts.evict_snapshot(user);
                }
            }
            Invalidation::SigningKeys => reload_keys(targets),
            Invalidation::All => {
                if let Some(sessions) = targets.sessions.upgrade() {
                    sessions.evict_all();
                }
                if let Some(tokens) = targets.tokens.upgrade() {
                    tokens.evict_all();
                }
                if let Some(api_tokens) = targets.api_tokens.upgrade() {
                    api_tokens.evict_all();
                }
                if let Some(accounts) = targets.accounts.upgrade() {
                    accounts.evict_all_snapshots();
                }
                reload_keys(targets);
            }
        }
    }
}

fn reload_keys(targets: &Targets) {
    let Some(tokens) = targets.tokens.upgrade() else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let signing = Arc::clone(tokens.signing());
    runtime.spawn(async move {
        if let Err(error) = signing.reload().await {
            tracing::warn!(%error, "could not reload the JWT signing keyring after a fan-out message; the periodic reload will retry");
        }
    });
}

fn encode(from: String, inv: Invalidation) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        v: VERSION,
        from,
        inv,
    })
    // Serializing these plain types cannot fail; an empty payload would be read
    // as "forget everything", the safe side.
    .unwrap_or_default()
}

fn decode(payload: &[u8]) -> Option<Envelope> {
    if payload.len() > MAX_MESSAGE_BYTES {
        return None;
    }
    serde_json::from_slice::<Envelope>(payload)
        .ok()
        .filter(|e| e.v == VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_format_is_stable_and_carries_no_credentials() {
        let fanout = Fanout::local();
        let payload = fanout.encode(Invalidation::Session {
            user: "usr_1".to_owned(),
            session: "ses_2".to_owned(),
        });
        let text = String::from_utf8(payload.clone()).unwrap();
        assert!(
            text.starts_with(r#"{"v":1,"from":""#)
                && text.ends_with(r#""inv":{"kind":"session","user":"usr_1","session":"ses_2"}}"#),
            "{text}"
        );
        assert_eq!(
            decode(&payload).unwrap().inv,
            Invalidation::Session {
                user: "usr_1".to_owned(),
                session: "ses_2".to_owned()
            }
        );
        for inv in [
            Invalidation::SessionsOf {
                user: "usr_1".to_owned(),
                keep: None,
            },
            Invalidation::Family {
                family: "fam_1".to_owned(),
            },
            Invalidation::ApiToken {
                token: "tok_1".to_owned(),
            },
            Invalidation::ApiTokensOf {
                user: "usr_1".to_owned(),
            },
            Invalidation::User {
                user: "usr_1".to_owned(),
            },
            Invalidation::SigningKeys,
            Invalidation::All,
        ] {
            assert_eq!(decode(&fanout.encode(inv.clone())).unwrap().inv, inv);
        }
    }

    #[test]
    fn unreadable_messages_are_refused() {
        for bad in [
            &b""[..],
            b"{}",
            b"not json",
            br#"{"v":2,"from":"x","inv":{"kind":"all"}}"#,
            br#"{"v":1,"from":"x","inv":{"kind":"grant","user":"root"}}"#,
            br#"{"v":1,"from":"x","inv":{"kind":"all"},"extra":1}"#,
        ] {
            assert!(decode(bad).is_none(), "{}", String::from_utf8_lossy(bad));
        }
        let huge = format!(
            r#"{{"v":1,"from":"x","inv":{{"kind":"user","user":"{}"}}}}"#,
            "u".repeat(MAX_MESSAGE_BYTES)
        );
        assert!(decode(huge.as_bytes()).is_none());
    }

    #[test]
    fn lifetimes_are_short_until_subscribed_and_after_loss() {
        let fanout = Fanout::shared();
        assert_eq!(fanout.delivery(), Delivery::Degraded);
        let ticket = fanout.ticket();
        assert_eq!(fanout.expiry(ticket, 100, 10), 101);
        fanout.subscribed();
        assert_eq!(fanout.delivery(), Delivery::Subscribed);
        // A read that began before the subscription stays short.
        assert_eq!(fanout.expiry(ticket, 100, 10), 101);
        let ticket = fanout.ticket();
        assert_eq!(fanout.expiry(ticket, 100, 10), 110);
        assert_eq!(fanout.expiry(ticket, 100, 5), 105);
        fanout.lost();
        assert_eq!(fanout.delivery(), Delivery::Degraded);
        let ticket = fanout.ticket();
        assert_eq!(fanout.expiry(ticket, 100, 10), 101);
        fanout.subscribed();
        assert_eq!(fanout.expiry(fanout.ticket(), 100, 10), 110);
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_cached_briefly() {
        for fanout in [Fanout::local(), Fanout::shared()] {
            fanout.subscribed();
            let ticket = fanout.ticket();
            fanout.receive(&encode(
                "another".to_owned(),
                Invalidation::User {
                    user: "usr_1".to_owned(),
                },
            ));
            assert_eq!(fanout.expiry(ticket, 100, 10), 101);
            let ticket = fanout.ticket();
            fanout.publish(Invalidation::SigningKeys);
            assert_eq!(fanout.expiry(ticket, 100, 10), 101);
            assert_eq!(fanout.expiry(fanout.ticket(), 100, 10), 110);
        }
        // Local stays local: subscription events do not apply.
        let local = Fanout::local();
        local.lost();
        assert_eq!(local.delivery(), Delivery::Local);
    }

    #[test]
    fn own_messages_are_ignored() {
        let fanout = Fanout::shared();
        fanout.subscribed();
        let ticket = fanout.ticket();
        fanout.receive(&fanout.encode(Invalidation::All));
        assert_eq!(fanout.expiry(ticket, 100, 10), 110);
    }

    struct Recorder(std::sync::Mutex<Vec<Vec<u8>>>);

    #[async_trait]
    impl Transport for Recorder {
        fn send(&self, payload: Vec<u8>) {
            self.0.lock().unwrap().push(payload);
        }
        async fn flush(&self, _within: Duration) -> bool {
            true
        }
    }

    #[test]
    fn published_messages_go_to_the_transport() {
        let fanout = Fanout::shared();
        let recorder = Arc::new(Recorder(std::sync::Mutex::new(Vec::new())));
        fanout.set_transport(recorder.clone());
        fanout.publish(Invalidation::Family {
            family: "fam_9".to_owned(),
        });
        let sent = recorder.0.lock().unwrap().clone();
        assert_eq!(sent.len(), 1);
        let envelope = decode(&sent[0]).unwrap();
        assert_eq!(envelope.from, fanout.origin);
        // The resync message is applied by everyone, the sender included.
        assert_eq!(decode(&fanout.resync_payload()).unwrap().from, "");
    }
}
