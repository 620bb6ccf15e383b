-- How the provider accepted a send (`messages[].message_status` of its answer:
-- `accepted`, `held_for_quality_assessment`, `paused`), when it said.
ALTER TABLE messages ADD COLUMN provider_acceptance TEXT;
