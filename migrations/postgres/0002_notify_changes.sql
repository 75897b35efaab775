-- Tell every tessera instance at once when something the gate remembers
-- changes (design §4.3): an ended session, a changed user (disabled,
-- password), a granted or removed role, a new signing key. Triggers catch the
-- change whoever makes it: a server, the CLI, or an operator's own SQL.
CREATE FUNCTION tessera_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'sessions' THEN
        PERFORM pg_notify('tessera_changes', 'session:' || NEW.id);
    ELSIF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('tessera_changes', 'user:' || NEW.id);
    ELSIF TG_TABLE_NAME = 'user_roles' AND TG_OP = 'DELETE' THEN
        PERFORM pg_notify('tessera_changes', 'user:' || OLD.user_id);
    ELSIF TG_TABLE_NAME = 'user_roles' THEN
        PERFORM pg_notify('tessera_changes', 'user:' || NEW.user_id);
    ELSIF TG_TABLE_NAME = 'signing_keys' THEN
        PERFORM pg_notify('tessera_changes', 'keys');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER sessions_ended AFTER UPDATE OF ended_at ON sessions
    FOR EACH ROW WHEN (OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL)
    EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER users_changed AFTER UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER user_roles_changed AFTER INSERT OR DELETE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
CREATE TRIGGER signing_keys_added AFTER INSERT ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_change();
