-- Members' email addresses are personal data: stored encrypted (AAD binds
-- table, column and row id) and found by a blind index of the normalised
-- address, like contacts' phone numbers. A migration cannot encrypt, so the
-- plaintext moves to `legacy_email` and the server seals it at startup (then
-- sets `legacy_email` to NULL) before it serves; new rows never use it.
-- Uniqueness moves to the blind index.
ALTER TABLE users RENAME COLUMN email TO legacy_email;
ALTER TABLE users ALTER COLUMN legacy_email DROP NOT NULL;
ALTER TABLE users ADD COLUMN email_index BYTEA;
ALTER TABLE users ADD COLUMN email BYTEA;
ALTER TABLE users ADD CONSTRAINT users_email_index_unique UNIQUE (email_index);
ALTER TABLE users ADD CONSTRAINT users_email_pair CHECK ((email_index IS NULL) = (email IS NULL));
ALTER TABLE users ADD CONSTRAINT users_email_known CHECK (email IS NOT NULL OR legacy_email IS NOT NULL);

ALTER TABLE invitations RENAME COLUMN email TO legacy_email;
ALTER TABLE invitations ALTER COLUMN legacy_email DROP NOT NULL;
ALTER TABLE invitations ADD COLUMN email BYTEA;
ALTER TABLE invitations ADD CONSTRAINT invitations_email_known CHECK (email IS NOT NULL OR legacy_email IS NOT NULL);

ALTER TABLE email_tokens RENAME COLUMN email TO legacy_email;
ALTER TABLE email_tokens ALTER COLUMN legacy_email DROP NOT NULL;
ALTER TABLE email_tokens ADD COLUMN email_index BYTEA;
ALTER TABLE email_tokens ADD COLUMN email BYTEA;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_email_pair CHECK ((email_index IS NULL) = (email IS NULL));
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_email_known CHECK (email IS NOT NULL OR legacy_email IS NOT NULL);
