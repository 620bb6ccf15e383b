-- Meta prices messages per country: the rate card carries a price per
-- category and country ('' is the category's default), and a message keeps
-- its recipient's country (ISO 3166-1 alpha-2, derived from the number's
-- calling code when it is accepted; never the number).
ALTER TABLE rate_card ADD COLUMN country TEXT NOT NULL DEFAULT '';
ALTER TABLE rate_card DROP CONSTRAINT rate_card_pkey;
ALTER TABLE rate_card ADD PRIMARY KEY (category, country);

ALTER TABLE messages ADD COLUMN country TEXT;
