-- Whether a channel has automation (an enabled rule, or the assistant switched on
-- for it) decides whether an inbound message gets a work item; nodes cache that
-- answer, so changes to rules and to the assistant's switch bump the generation.
-- The assistant's token count is not a change to what is cached.
CREATE TRIGGER automation_rules_cache_insert AFTER INSERT ON automation_rules
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER automation_rules_cache_delete AFTER DELETE ON automation_rules
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER automation_rules_cache_update AFTER UPDATE ON automation_rules
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER assistant_settings_cache_insert AFTER INSERT ON assistant_settings
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER assistant_settings_cache_delete AFTER DELETE ON assistant_settings
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
CREATE TRIGGER assistant_settings_cache_update AFTER UPDATE OF enabled, channels ON assistant_settings
BEGIN UPDATE _cache_generation SET generation = generation + 1 WHERE id = 1; END;
