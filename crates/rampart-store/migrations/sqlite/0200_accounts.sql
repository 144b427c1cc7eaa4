-- Accounts (F-USERS, F-PASSWORD, F-LOCKOUT, F-REGISTER, F-TOTP). No plaintext PII or
-- credential: e-mail and display name are AES-256-GCM envelopes under the PII data
-- key (user id bound as associated data), e-mail lookups go through a keyed blind
-- index, TOTP secrets are sealed under the TOTP data key, passwords are Argon2id PHC
-- strings, and every token (recovery code, invite, setup token, pending login) is
-- stored as its SHA-256 hash. Times are Unix seconds; booleans are 0/1.
CREATE TABLE users (
    user_id             TEXT    NOT NULL PRIMARY KEY CHECK (length(user_id) = 32),
    username            TEXT    NOT NULL UNIQUE CHECK (length(username) BETWEEN 3 AND 64),
    email_sealed        BLOB,
    -- HMAC-SHA256 of the normalized address; unique (NULLs are distinct).
    email_index         BLOB    UNIQUE CHECK (length(email_index) = 32),
    display_name_sealed BLOB,
    password_hash       TEXT,
    -- JSON: array of role names, array of tenant ids, object of string attributes.
    roles               TEXT    NOT NULL,
    tenants             TEXT    NOT NULL,
    attributes          TEXT    NOT NULL,
    disabled            INTEGER NOT NULL CHECK (disabled IN (0, 1)),
    security_version    INTEGER NOT NULL,
    totp_sealed         BLOB,
    totp_enabled        INTEGER NOT NULL CHECK (totp_enabled IN (0, 1)),
    totp_last_step      INTEGER,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    CHECK ((email_sealed IS NULL) = (email_index IS NULL)),
    CHECK (totp_enabled = 0 OR totp_sealed IS NOT NULL)
) STRICT;

CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    code_hash  BLOB    NOT NULL CHECK (length(code_hash) = 32),
    created_at INTEGER NOT NULL,
    used_at    INTEGER,
    PRIMARY KEY (user_id, code_hash)
) STRICT;

CREATE TABLE invites (
    invite_id  TEXT    NOT NULL PRIMARY KEY,
    code_hash  BLOB    NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    roles      TEXT    NOT NULL,
    tenant     TEXT,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    TEXT,
    CHECK ((used_at IS NULL) = (used_by IS NULL))
) STRICT;

-- Exactly one row. `initialized_at` is set once, when the first admin is created
-- (by the setup token or `rampart admin create`); until then no other account can be
-- created. Creating the first admin updates this row conditionally, so two
-- concurrent attempts cannot both succeed.
CREATE TABLE account_bootstrap (
    id                     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    setup_token_hash       BLOB    CHECK (length(setup_token_hash) = 32),
    setup_token_expires_at INTEGER,
    initialized_at         INTEGER,
    first_admin            TEXT
) STRICT;

INSERT INTO account_bootstrap (id) VALUES (1);

-- Failed logins per subject: scope 'account' (a user id, or 'unknown:<blind index>'
-- for names matching no account) or 'ip'. Shared by replicas through the database.
CREATE TABLE login_failures (
    scope             TEXT    NOT NULL CHECK (scope IN ('account', 'ip')),
    subject           TEXT    NOT NULL,
    failures          INTEGER NOT NULL,
    window_started_at INTEGER NOT NULL,
    locked_until      INTEGER,
    PRIMARY KEY (scope, subject)
) STRICT;

CREATE INDEX login_failures_by_window ON login_failures (window_started_at);

-- Logins that passed the password and wait for the second factor (short-lived,
-- single use).
CREATE TABLE pending_logins (
    token_hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id          TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    security_version INTEGER NOT NULL,
    client_ip        TEXT    NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    failures         INTEGER NOT NULL
) STRICT;

CREATE INDEX pending_logins_by_expiry ON pending_logins (expires_at);
