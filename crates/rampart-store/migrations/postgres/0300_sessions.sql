-- Sessions and tokens (F-SESSION, F-JWT, F-REFRESH, F-APITOKEN). No credential is
-- stored: session ids, refresh tokens and API tokens are kept as their SHA-256, next
-- to a random public id that listings, revocation and audit use instead. Times are
-- Unix seconds. Rows are deleted when revoked or expired (the audit log keeps the
-- history); user deletion goes through the session revoker, hence no foreign key to
-- the accounts tables.

CREATE TABLE sessions (
    public_id        TEXT    NOT NULL PRIMARY KEY,
    id_hash          BYTEA    NOT NULL UNIQUE CHECK (length(id_hash) = 32),
    user_id          TEXT    NOT NULL,
    created_at       BIGINT NOT NULL,
    last_seen_at     BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    mfa              BIGINT NOT NULL CHECK (mfa IN (0, 1)),
    security_version BIGINT NOT NULL,
    user_agent       TEXT,
    client_ip        TEXT,
    CHECK (expires_at > created_at)
);

CREATE INDEX sessions_by_user ON sessions (user_id, created_at);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One family per login through the token endpoint; every refresh token descends from
-- it. Revoking the family (logout, reuse, security change) ends all of them.
CREATE TABLE refresh_families (
    family_id        TEXT    NOT NULL PRIMARY KEY,
    user_id          TEXT    NOT NULL,
    created_at       BIGINT NOT NULL,
    mfa              BIGINT NOT NULL CHECK (mfa IN (0, 1)),
    security_version BIGINT NOT NULL,
    revoked_at       BIGINT
);

CREATE INDEX refresh_families_by_user ON refresh_families (user_id);

-- A spent token keeps its sealed successor (AES-256-GCM under the Session data key)
-- only for jwt.refresh_reuse_leeway, so that concurrent requests presenting it get
-- the same successor; the spend is one conditional UPDATE (spent_at IS NULL).
CREATE TABLE refresh_tokens (
    token_hash       BYTEA    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id        TEXT    NOT NULL REFERENCES refresh_families (family_id) ON DELETE CASCADE,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    spent_at         BIGINT,
    successor_sealed BYTEA,
    CHECK (expires_at > created_at)
);

CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE api_tokens (
    token_id     TEXT    NOT NULL PRIMARY KEY,
    token_hash   BYTEA    NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    user_id      TEXT    NOT NULL,
    name         TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    -- JSON array of permission names.
    scopes       TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    CHECK (expires_at > created_at)
);

CREATE INDEX api_tokens_by_user ON api_tokens (user_id, created_at);

-- The EdDSA keyring: exactly one active key (retired_at IS NULL); retired keys keep
-- verifying until valid_until. Private keys are PKCS#8 sealed under the JwtSigning
-- data key with the kid bound as associated data.
CREATE TABLE jwt_signing_keys (
    kid            TEXT    NOT NULL PRIMARY KEY,
    public_key     BYTEA    NOT NULL CHECK (length(public_key) = 32),
    sealed_private BYTEA    NOT NULL,
    created_at     BIGINT NOT NULL,
    retired_at     BIGINT,
    valid_until    BIGINT,
    CHECK ((retired_at IS NULL) = (valid_until IS NULL))
);

-- At most one active key, enforced by the database.
CREATE UNIQUE INDEX jwt_signing_keys_one_active ON jwt_signing_keys ((retired_at IS NULL))
    WHERE retired_at IS NULL;
