-- The instance and its key hierarchy (F-MASTERKEY, F-INIT).
-- Times are Unix seconds; labels are the stable strings of rampart_core::keys.

-- Exactly one row, written once at initialization. The CHECK on id makes a second
-- instance impossible, so concurrent initializers cannot create two key sets.
CREATE TABLE instance (
    id             BIGINT NOT NULL PRIMARY KEY CHECK (id = 1),
    initialized_at BIGINT NOT NULL,
    -- 'operator' or 'development': production refuses data sealed with the public
    -- development key.
    sealed_with    TEXT   NOT NULL CHECK (sealed_with IN ('operator', 'development')),
    -- kdf::key_check_value of the master key (16 bytes); reveals nothing about it.
    key_check      BYTEA  NOT NULL CHECK (length(key_check) = 16),
    -- Last master-key rotation, if any.
    rewrapped_at   BIGINT
);

-- Data keys, only ever stored wrapped under the per-purpose KEK.
CREATE TABLE data_keys (
    key_id     TEXT   NOT NULL PRIMARY KEY,
    purpose    TEXT   NOT NULL,
    wrapped    BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

-- At most one active key per purpose.
CREATE UNIQUE INDEX data_keys_one_active_per_purpose
    ON data_keys (purpose) WHERE retired_at IS NULL;
