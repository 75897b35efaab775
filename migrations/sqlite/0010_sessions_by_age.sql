-- Housekeeping (issue 10) deletes sessions that ended more than max_lifetime ago;
-- every such session was created more than max_lifetime ago, so this index bounds the scan.
CREATE INDEX sessions_by_age ON sessions (created_at);
