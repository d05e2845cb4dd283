-- API details every client needs (issue 15, item 6): webhook etags (AIP-154) and request ids
-- (AIP-155) that make a retried admin mutation answer instead of acting twice.

-- The version of a webhook's settings, what its etag says. A trigger bumps it whenever a setting,
-- the enabled state, the secret or the deletion changes, whichever statement does it (an admin,
-- the worker's auto-disable, `webhooks reencrypt`), but not when the worker only counts
-- failures or opens the circuit: those would make every etag go stale while deliveries fail.
ALTER TABLE webhooks ADD COLUMN revision bigint NOT NULL DEFAULT 1;

CREATE FUNCTION webhooks_bump_revision() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.name, NEW.destination_url, NEW.function, NEW.approval_nodes, NEW.on_rejection,
        NEW.description, NEW.deliver_once_per_request, NEW.enabled, NEW.secret,
        NEW.previous_secret_expires_at, NEW.deleted_at, NEW.custom_headers, NEW.client_cert_pem,
        NEW.client_key, NEW.server_ca_pem)
       IS DISTINCT FROM
       (OLD.name, OLD.destination_url, OLD.function, OLD.approval_nodes, OLD.on_rejection,
        OLD.description, OLD.deliver_once_per_request, OLD.enabled, OLD.secret,
        OLD.previous_secret_expires_at, OLD.deleted_at, OLD.custom_headers, OLD.client_cert_pem,
        OLD.client_key, OLD.server_ca_pem) THEN
        NEW.revision := OLD.revision + 1;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER webhooks_revision BEFORE UPDATE ON webhooks
    FOR EACH ROW EXECUTE FUNCTION webhooks_bump_revision();

-- The first answer of each admin mutation called with a request_id, per RPC and caller (the
-- SHA-256 of the caller's token, empty when authentication is off), written in the same
-- transaction as the change it answers. Kept 24 hours (src/startup/tasks.rs purges older rows).
CREATE TABLE admin_requests (
    rpc           text NOT NULL,
    caller        bytea NOT NULL,
    request_id    uuid NOT NULL,
    -- SHA-256 of the request without its request_id: the same id with another request is refused.
    request_hash  bytea NOT NULL,
    -- The encoded response message, sealed by the vault (src/store/vault.rs) since the answers of
    -- CreateWebhook and RotateWebhookSecret carry the secret they show once.
    response      bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rpc, caller, request_id)
);

CREATE INDEX admin_requests_by_age ON admin_requests (created_at);
