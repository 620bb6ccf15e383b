-- Contacts identified by a business-scoped user id (BSUID) and/or a phone
-- number: both encrypted, each found by its blind index; the parent BSUID and
-- the username kept (encrypted) when known. Messages gain the pricing their
-- status webhooks report.
ALTER TABLE contacts ALTER COLUMN phone_index DROP NOT NULL;
ALTER TABLE contacts ALTER COLUMN phone DROP NOT NULL;
ALTER TABLE contacts ADD COLUMN user_id_index BYTEA;
ALTER TABLE contacts ADD COLUMN user_id BYTEA;
ALTER TABLE contacts ADD COLUMN parent_user_id_index BYTEA;
ALTER TABLE contacts ADD COLUMN parent_user_id BYTEA;
ALTER TABLE contacts ADD COLUMN username BYTEA;
ALTER TABLE contacts ADD CONSTRAINT contacts_user_id_unique UNIQUE (workspace_id, user_id_index);
ALTER TABLE contacts ADD CONSTRAINT contacts_phone_pair CHECK ((phone_index IS NULL) = (phone IS NULL));
ALTER TABLE contacts ADD CONSTRAINT contacts_user_id_pair CHECK ((user_id_index IS NULL) = (user_id IS NULL));
ALTER TABLE contacts ADD CONSTRAINT contacts_identified
    CHECK (phone_index IS NOT NULL OR user_id_index IS NOT NULL OR parent_user_id_index IS NOT NULL);
CREATE INDEX contacts_parent_user_id ON contacts (workspace_id, parent_user_id_index)
    WHERE parent_user_id_index IS NOT NULL;

ALTER TABLE messages ADD COLUMN pricing_model TEXT;
ALTER TABLE messages ADD COLUMN pricing_type TEXT;
ALTER TABLE messages ADD COLUMN pricing_category TEXT;
ALTER TABLE messages ADD COLUMN billable BOOLEAN;
