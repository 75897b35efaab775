-- tessera's own tables (PostgreSQL). Append-only: never edit once applied; add a
-- new file instead. Times are microseconds since the Unix epoch (BIGINT).

-- An org comes into being the first time a user names it.
CREATE TABLE orgs (
    uid        TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Service accounts. password_hash is an argon2id PHC string, never a password.
CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    org_uid       TEXT NOT NULL REFERENCES orgs (uid),
    display_name  TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

-- Roles granted to users; the roles themselves live in the config file.
CREATE TABLE user_roles (
    user_id BIGINT NOT NULL REFERENCES users (id),
    role    TEXT NOT NULL,
    PRIMARY KEY (user_id, role)
);

-- Sign-in sessions. A session is live while ended_at is NULL and it is
-- neither idle past idle_timeout nor older than max_lifetime.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    ended_at     BIGINT,
    end_reason   TEXT
);
CREATE INDEX sessions_by_user ON sessions (user_id);

-- The JWT key ring: the newest key signs, older ones still verify.
CREATE TABLE signing_keys (
    kid         TEXT PRIMARY KEY,
    algorithm   TEXT NOT NULL,
    private_der BYTEA NOT NULL,
    public_raw  BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Security events: sign-ins, sign-outs, revocations, password and role changes.
CREATE TABLE audit (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    event     TEXT NOT NULL,
    user_name TEXT,
    client    TEXT,
    detail    TEXT NOT NULL DEFAULT ''
);

-- Failed sign-in counters per user name ('user:NAME') and per client
-- address ('ip:ADDR'), updated atomically (design §4.2).
CREATE TABLE sign_in_failures (
    key          TEXT PRIMARY KEY,
    failures     BIGINT NOT NULL,
    last_at      BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);
