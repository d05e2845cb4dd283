-- The key that authenticates page tokens when no WEBHOOKS_ENCRYPTION_KEY is set (with one, the
-- key is derived from it and this table stays empty). One row, so every instance on the
-- database signs and checks tokens alike: the first instance to start inserts a random key,
-- the others keep it (INSERT ... ON CONFLICT DO NOTHING, then SELECT).
CREATE TABLE page_token_key (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    key bytea NOT NULL CHECK (octet_length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
