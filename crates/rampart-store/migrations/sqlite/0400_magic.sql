-- Email magic links (F-MAGIC). A link is a single-use login credential, so only
-- hashes are kept: the SHA-256 of the code in the mail and the SHA-256 of the binding
-- cookie of the browser that asked for it. Consumption is one conditional UPDATE
-- (unused, unexpired, same binding), so two concurrent uses cannot both succeed.
CREATE TABLE magic_links (
    token_hash   BLOB    NOT NULL PRIMARY KEY CHECK (length(token_hash) = 32),
    user_id      TEXT    NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
    binding_hash BLOB    NOT NULL CHECK (length(binding_hash) = 32),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    CHECK (expires_at > created_at)
) STRICT;

-- Per-user counting (mail rate bound) and retiring the other links after a sign-in.
CREATE INDEX magic_links_by_user ON magic_links (user_id, created_at);
-- The purge of expired links.
CREATE INDEX magic_links_by_expiry ON magic_links (expires_at);
