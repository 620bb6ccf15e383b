-- Meta prices messages per country: the rate card carries a price per
-- category and country ('' is the category's default), and a message keeps
-- its recipient's country (ISO 3166-1 alpha-2, derived from the number's
-- calling code when it is accepted; never the number).
-- (`country` last, where PostgreSQL's ADD COLUMN puts it: backups match columns in order.)
CREATE TABLE rate_card_by_country (
    category           TEXT NOT NULL,
    currency           TEXT NOT NULL,
    unit_price_micros  INTEGER NOT NULL,
    loaded_at          TEXT NOT NULL,
    country            TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (category, country)
) STRICT;
INSERT INTO rate_card_by_country (category, currency, unit_price_micros, loaded_at, country)
SELECT category, currency, unit_price_micros, loaded_at, '' FROM rate_card;
DROP TABLE rate_card;
ALTER TABLE rate_card_by_country RENAME TO rate_card;

ALTER TABLE messages ADD COLUMN country TEXT;
