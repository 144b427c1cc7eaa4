-- The secret vault (F-VAULT). Values are AES-256-GCM envelopes sealed under a vault
-- data key with the name bound as associated data; no plaintext is ever stored.
CREATE TABLE vault_secrets (
    name       TEXT    NOT NULL PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 64),
    -- The sealing key (also inside the envelope); finds secrets under a retired key.
    key_id     TEXT    NOT NULL REFERENCES data_keys (key_id),
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX vault_secrets_by_key ON vault_secrets (key_id);
