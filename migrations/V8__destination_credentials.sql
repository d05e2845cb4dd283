-- Credentials a destination asks for beyond the Standard Webhooks signature (issue 13): custom
-- request headers (a partner gateway's Authorization or X-Api-Key), a client certificate for
-- mutual TLS, and a private CA the destination's certificate is verified against.
ALTER TABLE webhooks
    -- Vault envelope (src/store/vault.rs) of the headers as JSON, [[name, value], ...]; NULL
    -- when the webhook has none. Sealed as a whole: header values are credentials.
    ADD COLUMN custom_headers bytea,
    -- What responses show of the headers, [{"name": ..., "hint": ...}]: never the values.
    ADD COLUMN custom_header_hints jsonb NOT NULL DEFAULT '[]',
    -- The client certificate chain (PEM; certificates are public) and the vault envelope of its
    -- private key (PEM). Both or neither.
    ADD COLUMN client_cert_pem text,
    ADD COLUMN client_key bytea,
    -- The client certificate's subject, issuer and expiry, read once when it is saved, for
    -- responses (which never carry the certificate itself).
    ADD COLUMN client_cert_subject text,
    ADD COLUMN client_cert_issuer text,
    ADD COLUMN client_cert_not_after timestamptz,
    -- The private CA (PEM, one or more certificates): when set, the destination's certificate
    -- must chain to it, and to nothing else (public roots are not consulted).
    ADD COLUMN server_ca_pem text,
    ADD COLUMN server_ca_subject text,
    ADD COLUMN server_ca_issuer text,
    ADD COLUMN server_ca_not_after timestamptz,
    ADD CONSTRAINT client_cert_with_key CHECK ((client_cert_pem IS NULL) = (client_key IS NULL));
