-- The audit trail: one append-only row per admin mutation or system action, written in the
-- transaction of the change it records, chained by SHA-256 so an edited or deleted row is
-- detectable (`webhooks audit verify`). docs/operations.md ("Audit and alerts") defines the
-- canonical encoding the hash covers; src/store/audit.rs verifies it independently of the
-- function below.

-- The chain's head, one row: the last id and hash. Appends lock it (FOR UPDATE) for the rest of
-- their transaction, which serializes writers of the trail only, never the delivery queue.
-- anchor_id/anchor_hash: the first retained row and the prev_hash it must carry (32 zero bytes
-- until a purge moves them to the first row it kept).
CREATE TABLE audit_chain_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id bigint NOT NULL,
    last_hash bytea NOT NULL,
    anchor_id bigint NOT NULL,
    anchor_hash bytea NOT NULL
);
INSERT INTO audit_chain_head (last_id, last_hash, anchor_id, anchor_hash)
VALUES (0, decode(repeat('00', 32), 'hex'), 1, decode(repeat('00', 32), 'hex'));

CREATE TABLE audit_events (
    id bigint PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    role text NOT NULL,
    action text NOT NULL,
    target_kind text NOT NULL,
    target_id text NOT NULL,
    request_id text NOT NULL,
    peer text NOT NULL,
    user_agent text NOT NULL,
    diff jsonb NOT NULL,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL
);
CREATE INDEX audit_events_by_target ON audit_events (target_kind, target_id, id);
CREATE INDEX audit_events_by_actor ON audit_events (actor, id);
CREATE INDEX audit_events_by_at ON audit_events (at);

-- One field of the canonical encoding: a netstring, `<UTF-8 byte length>:<value>,`.
CREATE FUNCTION audit_netstring(value text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT octet_length(value)::text || ':' || value || ','
$$;

-- The hash of a row: SHA-256 over the UTF-8 bytes of 'webhooks-audit-v1' followed by the
-- netstrings of id, at (microseconds since the Unix epoch, decimal), actor, role, action,
-- target_kind, target_id, request_id, peer, user_agent, diff (as `diff::text` prints it) and
-- prev_hash (lower-case hex).
CREATE FUNCTION audit_hash(
    id bigint, at timestamptz, actor text, role text, action text, target_kind text,
    target_id text, request_id text, peer text, user_agent text, diff jsonb, prev_hash bytea
) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT sha256(convert_to(
        'webhooks-audit-v1'
        || audit_netstring(id::text)
        || audit_netstring((extract(epoch FROM at) * 1000000)::bigint::text)
        || audit_netstring(actor) || audit_netstring(role) || audit_netstring(action)
        || audit_netstring(target_kind) || audit_netstring(target_id)
        || audit_netstring(request_id) || audit_netstring(peer) || audit_netstring(user_agent)
        || audit_netstring(diff::text) || audit_netstring(encode(prev_hash, 'hex')),
        'UTF8'))
$$;

-- Appends one row to the chain, in the caller's transaction. VOLATILE plpgsql: each statement
-- takes a fresh snapshot, so after waiting for the head's lock it reads the head another
-- instance just committed, never a stale one.
CREATE FUNCTION audit_append(
    p_actor text, p_role text, p_action text, p_target_kind text, p_target_id text,
    p_request_id text, p_peer text, p_user_agent text, p_diff jsonb
) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    head audit_chain_head%ROWTYPE;
    v_id bigint;
    v_at timestamptz := now();
    v_hash bytea;
BEGIN
    SELECT * INTO head FROM audit_chain_head FOR UPDATE;
    v_id := head.last_id + 1;
    v_hash := audit_hash(v_id, v_at, p_actor, p_role, p_action, p_target_kind, p_target_id,
                         p_request_id, p_peer, p_user_agent, p_diff, head.last_hash);
    INSERT INTO audit_events (id, at, actor, role, action, target_kind, target_id, request_id,
                              peer, user_agent, diff, prev_hash, hash)
    VALUES (v_id, v_at, p_actor, p_role, p_action, p_target_kind, p_target_id, p_request_id,
            p_peer, p_user_agent, p_diff, head.last_hash, v_hash);
    UPDATE audit_chain_head SET last_id = v_id, last_hash = v_hash;
    RETURN v_id;
END
$$;

-- Append-only: rows are never updated, and deleted only by the retention purge, which sets
-- `webhooks.audit_purge` for its transaction. (Whoever owns the table can still disable this;
-- the hash chain is what detects that.)
CREATE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('webhooks.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only (% refused)', TG_OP;
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
