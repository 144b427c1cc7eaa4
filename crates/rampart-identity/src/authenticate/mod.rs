//! Request credentials → [`Principal`] (F-BEARER, F-SESSION, F-JWT, F-APITOKEN).
//!
//! One [`Authenticator`] is shared by the API extractor, the gateway's
//! `authenticate()` phase and forward-auth. Credentials come only from:
//!
//! 1. `Authorization: Bearer rmp_…` — a static API token;
//! 2. `Authorization: Bearer <jwt>` — a Rampart access token;
//! 3. the session cookie (`session.cookie_name`);
//! 4. nothing, and `dev.simulate_user` set in dev mode — a
//!    [`AuthMethod::Simulated`] principal for that user.
//!
//! A credential in the query string (`?access_token=`, `?token=`, `?api_key=` … or
//! any parameter whose value is an API token) is refused with
//! [`AuthError::QueryCredentials`] before anything else: URLs end up in logs, browser
//! history and `Referer` headers. Only `auth.danger_accept_query_tokens` (dev only)
//! lets `?access_token=` through, as a bearer token.
//!
//! The principal is built from the accounts service's cached [`UserSnapshot`]: a
//! disabled user is refused, and a session or access token issued before the user's
//! last security change (its recorded security version is older) is refused. API
//! tokens are not tied to the security version (see
//! [`rampart_core::identity::session`]): they stop while the user is disabled and are
//! revoked when the account is disabled or deleted.
//!
//! Nothing here logs a credential; refusal reasons are fixed strings.

pub(crate) mod cache;

use std::sync::Arc;

use async_trait::async_trait;
use http::header::{AUTHORIZATION, COOKIE};
use http::request::Parts;
use rampart_core::ErrorKind;
use rampart_core::identity::{AuthMethod, Principal, UserDirectory, UserId, UserSnapshot};
use rampart_core::store::StoreError;
use rampart_crypto::token::{API_TOKEN_PREFIX, ApiToken, SessionId};

use crate::sessions::{SessionError, SessionState, Sessions};
use crate::tokens::api::{ApiTokenError, ApiTokens};
use crate::tokens::{TokenError, Tokens};

/// Query parameters that carry credentials in other systems; refused here
/// (compared case-insensitively, after percent-decoding).
pub const QUERY_CREDENTIAL_NAMES: &[&str] = &[
    "access_token",
    "accesstoken",
    "token",
    "id_token",
    "refresh_token",
    "api_key",
    "apikey",
    "api-key",
    "key",
    "jwt",
    "bearer",
    "auth",
    "auth_token",
    "authorization",
    "session",
    "session_id",
    "sessionid",
    "password",
];

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A credential was sent in the query string.
    #[error("credentials in the query string are refused; send them in the Authorization header")]
    QueryCredentials,
    /// A credential was presented and refused (invalid, expired, revoked, the user
    /// disabled or changed since). `reason` is for logs, never for the client.
    #[error("the {} credential was refused: {reason}", method.as_str())]
    Refused {
        /// Which kind of credential.
        method: AuthMethod,
        /// Why (a fixed string).
        reason: &'static str,
    },
    /// More than one `Authorization` header, or a scheme other than `Bearer`.
    #[error("the Authorization header is malformed")]
    MalformedAuthorization,
    /// A dependency failed; the request is denied.
    #[error("authentication could not be completed: {0}")]
    Unavailable(String),
    /// Storage failed; the request is denied.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// Who is at fault.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::QueryCredentials | Self::MalformedAuthorization => ErrorKind::Client,
            Self::Refused { .. } => ErrorKind::Unauthenticated,
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::Store(e) => e.kind(),
        }
    }
}

impl From<SessionError> for AuthError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Store(e) => Self::Store(e),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<ApiTokenError> for AuthError {
    fn from(e: ApiTokenError) -> Self {
        match e {
            ApiTokenError::Store(e) => Self::Store(e),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Finds a user id by username (for `dev.simulate_user`). Implemented over the
/// accounts service.
#[async_trait]
pub trait UsernameLookup: Send + Sync {
    /// The id of the user named `username`, or `None`.
    async fn user_id_by_username(&self, username: &str) -> Result<Option<UserId>, StoreError>;
}

/// The result of authentication.
#[derive(Debug, Clone)]
pub struct Authentication {
    /// Who is calling.
    pub principal: Principal,
    /// For a cookie session: the session id, to check the CSRF token against.
    pub session: Option<SessionId>,
}

/// Turns request credentials into a [`Principal`].
pub struct Authenticator {
    sessions: Arc<Sessions>,
    tokens: Arc<Tokens>,
    api_tokens: Arc<ApiTokens>,
    directory: Arc<dyn UserDirectory>,
    accept_query_tokens: bool,
    simulated: Option<(String, Arc<dyn UsernameLookup>)>,
}

impl Authenticator {
    /// An authenticator over the credential services and the user directory.
    /// `accept_query_tokens` is `auth.danger_accept_query_tokens` (dev only).
    pub fn new(
        sessions: Arc<Sessions>,
        tokens: Arc<Tokens>,
        api_tokens: Arc<ApiTokens>,
        directory: Arc<dyn UserDirectory>,
        accept_query_tokens: bool,
    ) -> Self {
        Self {
            sessions,
            tokens,
            api_tokens,
            directory,
            accept_query_tokens,
            simulated: None,
        }
    }

    /// Authenticates requests without credentials as `username` (`dev.simulate_user`).
    /// The caller must only do this in dev mode.
    pub fn with_simulated_user(
        mut self,
        username: String,
        lookup: Arc<dyn UsernameLookup>,
    ) -> Self {
        self.simulated = Some((username, lookup));
        self
    }

    /// The session service.
    pub fn sessions(&self) -> &Arc<Sessions> {
        &self.sessions
    }

    /// The token service.
    pub fn tokens(&self) -> &Arc<Tokens> {
        &self.tokens
    }

    /// The API token service.
    pub fn api_tokens(&self) -> &Arc<ApiTokens> {
        &self.api_tokens
    }

    /// The user directory.
    pub fn directory(&self) -> &Arc<dyn UserDirectory> {
        &self.directory
    }

    /// Starts the background purge of expired sessions and refresh tokens, every
    /// `every`. The task holds a weak reference and ends with the authenticator.
    pub fn spawn_housekeeping(
        self: &Arc<Self>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(auth) = weak.upgrade() else { return };
                if let Err(error) = auth.sessions.purge().await {
                    tracing::warn!(%error, "could not purge expired sessions");
                }
                if let Err(error) = auth.tokens.purge().await {
                    tracing::warn!(%error, "could not purge expired refresh tokens");
                }
            }
        })
    }

    /// Who is calling: `None` when no credential was presented at all.
    pub async fn authenticate(&self, parts: &Parts) -> Result<Option<Principal>, AuthError> {
        Ok(self.authenticate_request(parts).await?.map(|a| a.principal))
    }

    /// Like [`Self::authenticate`], also returning the session id of a cookie session
    /// (for the CSRF check).
    pub async fn authenticate_request(
        &self,
        parts: &Parts,
    ) -> Result<Option<Authentication>, AuthError> {
        let query_token = self.query_credential(parts)?;
        let mut authorization = parts.headers.get_all(AUTHORIZATION).iter();
        let bearer = match (authorization.next(), authorization.next()) {
            (None, _) => query_token,
            (Some(value), None) => Some(bearer_token(value.as_bytes())?),
            (Some(_), Some(_)) => return Err(AuthError::MalformedAuthorization),
        };
        if let Some(token) = bearer {
            let principal = if token.starts_with(API_TOKEN_PREFIX) {
                self.api_token(&token).await?
            } else {
                self.access_token(&token).await?
            };
            return Ok(Some(Authentication {
                principal,
                session: None,
            }));
        }
        let cookies = || parts.headers.get_all(COOKIE).iter().map(|v| v.as_bytes());
        if let Some(id) = self.sessions.cookie().read(cookies()) {
            let principal = self.session(&id).await?;
            return Ok(Some(Authentication {
                principal,
                session: Some(id),
            }));
        }
        if self.sessions.cookie().present(cookies()) {
            return Err(refused(AuthMethod::Session, "malformed session cookie"));
        }
        match &self.simulated {
            Some((username, lookup)) => Ok(Some(Authentication {
                principal: self.simulated(username, lookup.as_ref()).await?,
                session: None,
            })),
            None => Ok(None),
        }
    }

    async fn session(&self, id: &SessionId) -> Result<Principal, AuthError> {
        let record = match self.sessions.validate(id).await? {
            SessionState::Active(record) => record,
            SessionState::Unknown => return Err(refused(AuthMethod::Session, "unknown session")),
            SessionState::IdleTimeout => return Err(refused(AuthMethod::Session, "idle timeout")),
            SessionState::Expired => return Err(refused(AuthMethod::Session, "session expired")),
        };
        let snapshot = self
            .user(
                &record.user_id,
                AuthMethod::Session,
                Some(record.security_version),
            )
            .await?;
        Ok(principal(
            snapshot,
            AuthMethod::Session,
            record.mfa,
            None,
            record.public_id,
        ))
    }

    async fn access_token(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = match self.tokens.verify_access(token).await {
            Ok(claims) => claims,
            Err(TokenError::Store(e)) => return Err(AuthError::Store(e)),
            Err(e) if e.kind() == ErrorKind::Unauthenticated => {
                return Err(refused(AuthMethod::AccessToken, "invalid access token"));
            }
            Err(e) => return Err(AuthError::Unavailable(e.to_string())),
        };
        let user = UserId::parse(&claims.sub)
            .map_err(|_| refused(AuthMethod::AccessToken, "malformed subject"))?;
        let snapshot = self
            .user(&user, AuthMethod::AccessToken, Some(claims.sv))
            .await?;
        Ok(principal(
            snapshot,
            AuthMethod::AccessToken,
            claims.mfa,
            None,
            claims.sid,
        ))
    }

    async fn api_token(&self, text: &str) -> Result<Principal, AuthError> {
        let token = ApiToken::parse(text)
            .map_err(|_| refused(AuthMethod::ApiToken, "malformed API token"))?;
        let record = self
            .api_tokens
            .authenticate(&token)
            .await?
            .ok_or_else(|| refused(AuthMethod::ApiToken, "unknown or expired API token"))?;
        let snapshot = self
            .user(&record.user_id, AuthMethod::ApiToken, None)
            .await?;
        Ok(principal(
            snapshot,
            AuthMethod::ApiToken,
            false,
            Some(record.scopes),
            record.id,
        ))
    }

    async fn simulated(
        &self,
        username: &str,
        lookup: &dyn UsernameLookup,
    ) -> Result<Principal, AuthError> {
        let user = lookup
            .user_id_by_username(username)
            .await?
            .ok_or_else(|| refused(AuthMethod::Simulated, "dev.simulate_user names no user"))?;
        let snapshot = self.user(&user, AuthMethod::Simulated, None).await?;
        // "Every request is authenticated as this user, admin pages included": the
        // simulated principal counts as having passed MFA.
        Ok(principal(
            snapshot,
            AuthMethod::Simulated,
            true,
            None,
            "simulated".to_owned(),
        ))
    }

    /// The user's snapshot, refusing unknown and disabled users and credentials that
    /// predate the user's last security change.
    async fn user(
        &self,
        user: &UserId,
        method: AuthMethod,
        issued_at_version: Option<i64>,
    ) -> Result<UserSnapshot, AuthError> {
        let snapshot = self
            .directory
            .snapshot(user)
            .await?
            .ok_or_else(|| refused(method, "unknown user"))?;
        if snapshot.disabled {
            return Err(refused(method, "user disabled"));
        }
        if issued_at_version.is_some_and(|v| v < snapshot.security_version) {
            return Err(refused(method, "credential predates a security change"));
        }
        Ok(snapshot)
    }

    /// Refuses credentials in the query string; returns the `access_token` parameter
    /// when `auth.danger_accept_query_tokens` lets it through.
    fn query_credential(&self, parts: &Parts) -> Result<Option<String>, AuthError> {
        let Some(query) = parts.uri.query() else {
            return Ok(None);
        };
        let mut accepted = None;
        for pair in query.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode(name).to_ascii_lowercase();
            let value = percent_decode(value);
            if self.accept_query_tokens && name == "access_token" && !value.is_empty() {
                accepted = Some(value);
                continue;
            }
            if QUERY_CREDENTIAL_NAMES.contains(&name.as_str())
                || ApiToken::parse(value.trim()).is_ok()
            {
                return Err(AuthError::QueryCredentials);
            }
        }
        Ok(accepted)
    }
}

fn principal(
    snapshot: UserSnapshot,
    method: AuthMethod,
    mfa: bool,
    scopes: Option<Vec<String>>,
    credential_id: String,
) -> Principal {
    Principal {
        user_id: snapshot.id,
        username: snapshot.username,
        roles: snapshot.roles,
        tenants: snapshot.tenants,
        attributes: snapshot.attributes,
        method,
        mfa,
        scopes,
        credential_id: Some(credential_id),
    }
}

fn refused(method: AuthMethod, reason: &'static str) -> AuthError {
    AuthError::Refused { method, reason }
}

/// The token of `Bearer <token>` (scheme case-insensitive, RFC 7235 §2.1).
fn bearer_token(value: &[u8]) -> Result<String, AuthError> {
    let text = std::str::from_utf8(value).map_err(|_| AuthError::MalformedAuthorization)?;
    let (scheme, token) = text
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedAuthorization)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() || token.contains(' ') {
        return Err(AuthError::MalformedAuthorization);
    }
    Ok(token.to_owned())
}

/// Percent-decodes a query component (`+` is a space). Invalid escapes stay as they
/// are; invalid UTF-8 is replaced, which can only make a name match less.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_token(b"Bearer abc").unwrap(), "abc");
        assert_eq!(bearer_token(b"bearer  abc ").unwrap(), "abc");
        for bad in [
            &b"Basic abc"[..],
            b"Bearer",
            b"Bearer ",
            b"Bearer a b",
            b"abc",
        ] {
            assert!(bearer_token(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("access%5Ftoken"), "access_token");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%41"), "A");
    }

    proptest::proptest! {
        #[test]
        fn percent_decoding_never_panics(text in "\\PC{0,64}") {
            let _ = percent_decode(&text);
        }

        #[test]
        fn bearer_parsing_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = bearer_token(&bytes);
        }
    }
}
