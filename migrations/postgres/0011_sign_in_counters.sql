-- Sign-in under attack (design §4.2, issue 11). Append-only: never edit once
-- applied. Numbered after its issue so that parallel branches do not collide.

-- Counters now exist per (user name, address) ('ua:ADDR|NAME') as well as per
-- user name ('user:NAME') and per address ('ip:ADDR', IPv6 per /64).
-- `pending` counts attempts whose password is being checked right now (last
-- reserved at `pending_at`); they hold the budget without being failures, so
-- correct sign-ins that arrive together wait instead of being refused.
-- `threshold` is the limit the key is held to, written at each reservation.
ALTER TABLE sign_in_failures ADD COLUMN pending BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sign_in_failures ADD COLUMN pending_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sign_in_failures ADD COLUMN threshold BIGINT NOT NULL DEFAULT 0;

-- Refused sign-ins are counted, not written one row each: repeats of one
-- refusal (its bucket: minute, event and key) add to `repeats` of one row.
-- Other events have no bucket (NULL never conflicts) and repeats = 1.
ALTER TABLE audit ADD COLUMN repeats BIGINT NOT NULL DEFAULT 1;
ALTER TABLE audit ADD COLUMN bucket TEXT;
CREATE UNIQUE INDEX audit_by_bucket ON audit (bucket);
