-- A counter that every change to a cached table bumps in the same transaction,
-- so every node can tell within one poll that its in-memory lookups (API keys,
-- channels, workspace settings, templates) may be stale. Triggers, not
-- application code, bump it: no writer (another node, the CLI, a restore) can
-- forget to. Touching an API key's last use is not a change to what is cached.
CREATE TABLE _cache_generation (
    id          INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    generation  INTEGER NOT NULL
) STRICT;
INSERT INTO _cache_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER api_keys_cache_insert AFTER INSERT ON api_keys
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_cache_delete AFTER DELETE ON api_keys
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER api_keys_cache_update
AFTER UPDATE OF id, workspace_id, name, key_hash, scopes, allowed_ips, expires_at, revoked_at ON api_keys
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;

CREATE TRIGGER channels_cache_insert AFTER INSERT ON channels
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER channels_cache_delete AFTER DELETE ON channels
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER channels_cache_update AFTER UPDATE ON channels
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;

CREATE TRIGGER workspaces_cache_insert AFTER INSERT ON workspaces
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER workspaces_cache_delete AFTER DELETE ON workspaces
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER workspaces_cache_update AFTER UPDATE ON workspaces
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;

CREATE TRIGGER templates_cache_insert AFTER INSERT ON templates
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER templates_cache_delete AFTER DELETE ON templates
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER templates_cache_update AFTER UPDATE ON templates
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
