-- The tamper-evident audit log (F-AUDIT). Rows are only ever inserted, by the audit
-- writer; the format and the checks are rampart_core::audit. Each record's hash
-- covers its content and the previous record's hash, and signed checkpoints fix the
-- hash at a seq, so `rampart audit verify` names any edited, deleted, inserted or
-- reordered row. Times are Unix microseconds; hashes and signatures lowercase hex.

CREATE TABLE audit_records (
    -- 1, 2, 3, … with no gaps: a gap is a deleted record.
    seq        BIGINT  NOT NULL PRIMARY KEY CHECK (seq > 0),
    time_us    BIGINT  NOT NULL,
    -- Dotted event name, e.g. 'auth.login.failed'.
    kind       TEXT    NOT NULL,
    -- 'success', 'failure' or 'denied'.
    outcome    TEXT    NOT NULL,
    actor      TEXT,
    target     TEXT,
    client_ip  TEXT,
    request_id TEXT,
    reason     TEXT,
    -- A JSON object of strings.
    details    TEXT    NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL
);

-- `rampart audit export --since`.
CREATE INDEX audit_records_by_time ON audit_records (time_us);

-- Ed25519-signed statements "record seq has hash": one per seq at most. Kept even
-- when records go only to the file, so a cut file can be detected.
CREATE TABLE audit_checkpoints (
    seq       BIGINT  NOT NULL PRIMARY KEY CHECK (seq > 0),
    hash      TEXT    NOT NULL,
    -- The previous checkpoint's seq (0 for the first): a removed checkpoint is
    -- named by the next one.
    prev_seq  BIGINT  NOT NULL,
    time_us   BIGINT  NOT NULL,
    -- Fingerprint of the signing public key.
    key_id    TEXT    NOT NULL,
    signature TEXT    NOT NULL
);
