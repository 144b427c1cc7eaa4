-- The tamper-evident audit log (F-AUDIT). Rows are only ever inserted, by the audit
-- writers; the format and the checks are rampart_core::audit. Each record's hash
-- covers its content and the previous record's hash, and signed checkpoints fix the
-- hash at a seq, so `rampart audit verify` names any edited, deleted, inserted or
-- reordered row. Times are Unix microseconds; hashes and signatures lowercase hex.
--
-- Several processes append to one chain (replicas, maintenance commands). They
-- coordinate through the unique keys alone: a writer inserts its batch at the seqs
-- after the head it last saw, and if another writer got there first the insert
-- fails on the primary key, the writer re-reads the head and re-links its batch on
-- top (rampart_core::audit::writer).

CREATE TABLE audit_records (
    -- 1, 2, 3, … with no gaps: a gap is a deleted record.
    seq           BIGINT  NOT NULL PRIMARY KEY CHECK (seq > 0),
    time_us       BIGINT  NOT NULL,
    -- The process that wrote it: host name and a random id per start.
    writer        TEXT    NOT NULL,
    -- The seq of the record before this one in its writer's audit file (0: the
    -- file's first record); NULL when the writer kept no file.
    file_prev_seq BIGINT,
    -- Dotted event name, e.g. 'auth.login.failed'.
    kind          TEXT    NOT NULL,
    -- 'success', 'failure' or 'denied'.
    outcome       TEXT    NOT NULL,
    actor         TEXT,
    target        TEXT,
    client_ip     TEXT,
    request_id    TEXT,
    reason        TEXT,
    -- A JSON object of strings.
    details       TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL
);

-- `rampart audit export --since`.
CREATE INDEX audit_records_by_time ON audit_records (time_us);

-- Recovery: what a writer committed but had not yet appended to its file.
CREATE INDEX audit_records_by_file_prev ON audit_records (file_prev_seq)
    WHERE file_prev_seq IS NOT NULL;

-- Ed25519-signed statements "record seq has hash": one per seq at most.
CREATE TABLE audit_checkpoints (
    seq       BIGINT  NOT NULL PRIMARY KEY CHECK (seq > 0),
    hash      TEXT    NOT NULL,
    -- The previous checkpoint's seq (0 for the first): a removed checkpoint is
    -- named by the next one. Unique, so two writers racing to sign the next
    -- checkpoint cannot fork the chain: the second insert fails and retries.
    prev_seq  BIGINT  NOT NULL UNIQUE CHECK (prev_seq >= 0 AND prev_seq < seq),
    time_us   BIGINT  NOT NULL,
    -- The process that signed it.
    writer    TEXT    NOT NULL,
    -- Fingerprint of the signing public key.
    key_id    TEXT    NOT NULL,
    signature TEXT    NOT NULL
);
