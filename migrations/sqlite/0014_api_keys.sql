-- API keys and secrets at rest (issue 14, design §4.7).

-- Machine credentials: a key stands in for a user's password at sign-in.
-- Only HMAC-SHA-256(secret key, secret) is kept, as hex, looked up by its
-- unique index. roles is a JSON array, a subset of the user's roles.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    name         TEXT NOT NULL DEFAULT '',
    digest       TEXT NOT NULL UNIQUE,
    roles        TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_by_user ON api_keys (user_id);

-- The key a session was opened with, if any; its roles narrow the session's.
ALTER TABLE sessions ADD COLUMN api_key_id BIGINT REFERENCES api_keys (id);
CREATE INDEX sessions_by_api_key ON sessions (api_key_id);

-- Sessions are now stored by the digests of their id and CSRF token. Rows
-- from before hold them in plain text and cannot be digested here (the
-- digest is keyed by the secret key), so they are dropped: everyone signs in
-- again once after the upgrade.
DELETE FROM sessions;
