-- A counter that every change to a cached table bumps in the same transaction,
-- so every node can tell within one poll that its in-memory lookups (API keys,
-- channels, workspace settings, templates) may be stale. Triggers, not
-- application code, bump it: no writer (another node, the CLI, a restore) can
-- forget to. Touching an API key's last use is not a change to what is cached.
-- Statement-level triggers: a bulk change bumps it once.
CREATE TABLE _cache_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  BIGINT NOT NULL
);
INSERT INTO _cache_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION bump_cache_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER api_keys_cache_change AFTER INSERT OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
CREATE TRIGGER api_keys_cache_update
    AFTER UPDATE OF id, workspace_id, name, key_hash, scopes, allowed_ips, expires_at, revoked_at ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
CREATE TRIGGER channels_cache_change AFTER INSERT OR UPDATE OR DELETE ON channels
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
CREATE TRIGGER workspaces_cache_change AFTER INSERT OR UPDATE OR DELETE ON workspaces
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
CREATE TRIGGER templates_cache_change AFTER INSERT OR UPDATE OR DELETE ON templates
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
