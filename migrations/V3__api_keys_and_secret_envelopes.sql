-- API keys (stored as SHA-256 hashes: a database dump reveals no usable key) and encrypted
-- webhook secrets.

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'ingest', 'viewer')),
    token_hash    bytea NOT NULL UNIQUE,
    -- The first characters of the token, to recognise it in listings.
    token_prefix  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

-- Secrets become envelopes: one version byte, then the key material. Version 0 is plaintext (no
-- WEBHOOKS_ENCRYPTION_KEY configured); version 1 is XChaCha20-Poly1305 (see src/store/vault.rs).
UPDATE webhooks SET secret = '\x00'::bytea || secret;
UPDATE webhooks SET previous_secret = '\x00'::bytea || previous_secret WHERE previous_secret IS NOT NULL;

-- The hint is computed once from the plaintext, so listings never need to decrypt.
ALTER TABLE webhooks ADD COLUMN secret_hint text NOT NULL DEFAULT '';
