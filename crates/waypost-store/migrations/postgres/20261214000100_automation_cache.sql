-- Whether a channel has automation (an enabled rule, or the assistant switched on
-- for it) decides whether an inbound message gets a work item; nodes cache that
-- answer, so changes to rules and to the assistant's switch bump the generation.
-- The assistant's token count is not a change to what is cached.
CREATE TRIGGER automation_rules_cache_change AFTER INSERT OR UPDATE OR DELETE ON automation_rules
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
CREATE TRIGGER assistant_settings_cache_change AFTER INSERT OR DELETE ON assistant_settings
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
CREATE TRIGGER assistant_settings_cache_update AFTER UPDATE OF enabled, channels ON assistant_settings
    FOR EACH STATEMENT EXECUTE FUNCTION bump_cache_generation();
