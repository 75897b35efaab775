-- The data-change audit trail (design §4.6): one entry per insert, update or
-- delete on an audited datasource, written in the same transaction. Entries
-- form a SHA-256 hash chain: entry_hash = SHA-256(prev_hash, canonical
-- content), prev_hash = the entry_hash of audit_id - 1 (64 zeros for the
-- first). audit_id is assigned by the writer (last + 1) while it holds the
-- write lock, so the ids have no gaps. Values are JSON objects as text.
CREATE TABLE audit_trail (
    audit_id    BIGINT PRIMARY KEY,
    audit_time  TIMESTAMPTZ NOT NULL,
    user_name   TEXT NOT NULL,
    org_uid     TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    datasource  TEXT NOT NULL,
    operation   TEXT NOT NULL,
    row_key     TEXT NOT NULL,
    old_values  TEXT,
    new_values  TEXT,
    prev_hash   TEXT NOT NULL,
    entry_hash  TEXT NOT NULL
);
CREATE INDEX audit_trail_by_org ON audit_trail (org_uid, audit_id);

-- Answers kept for Idempotency-Key (design §1.4), per user and key. A row
-- with status NULL is a request still running.
CREATE TABLE idempotency_keys (
    user_name    TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status       BIGINT,
    body         BYTEA,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (user_name, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
