-- Operational alerts (issue 16): webhook-level entries in the delivery-update log, and the
-- internal webhook that receives operational webhooks.
--
-- Webhook-level entries (kinds webhook_disabled, webhook_enabled, circuit_opened,
-- circuit_closed, delivery_exhausted) are written by triggers, in the transaction of the change
-- itself, whoever makes it: an admin's SetWebhookEnabled, the result recorder's 410 / auto-disable
-- / circuit breaker. So they cannot be missed or invented, need no change to the hot-path
-- statements, and get cursors from the same sequencer as every other entry.

-- 'endpoint': a webhook admins manage. 'operational': the one internal webhook behind
-- WEBHOOKS_OPERATIONAL_WEBHOOK_URL, hidden from the API and never alerted about (no loops).
ALTER TABLE webhooks ADD COLUMN kind text NOT NULL DEFAULT 'endpoint'
    CHECK (kind IN ('endpoint', 'operational'));
CREATE UNIQUE INDEX webhooks_one_operational ON webhooks (kind)
    WHERE kind = 'operational' AND deleted_at IS NULL;

-- A webhook-level entry has no delivery (except delivery_exhausted) and carries the webhook's
-- state right after the change, so replaying it later shows the state as it was.
ALTER TABLE delivery_update_inbox ALTER COLUMN delivery_id DROP NOT NULL;
ALTER TABLE delivery_update_inbox ADD COLUMN webhook_state jsonb;
ALTER TABLE delivery_updates ALTER COLUMN delivery_id DROP NOT NULL;
ALTER TABLE delivery_updates ADD COLUMN webhook_state jsonb;

-- How far the alert processor got in the log (one row). It starts at the log's head: history
-- from before this migration raises no alerts.
CREATE TABLE webhook_alert_progress (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cursor     bigint NOT NULL
);
INSERT INTO webhook_alert_progress (cursor) SELECT coalesce(max(cursor), 0) FROM delivery_updates;

CREATE FUNCTION webhook_state_json(w webhooks) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'enabled', w.enabled,
        'disabled_reason', w.disabled_reason,
        -- Microseconds since the epoch; a timestamp set to ±infinity by hand (the service never
        -- writes one) reads as unset rather than failing the change it is logged with.
        'disabled_at_us', CASE WHEN isfinite(w.disabled_at)
            THEN (extract(epoch FROM w.disabled_at) * 1000000)::bigint END,
        'circuit_open_until_us', CASE WHEN isfinite(w.circuit_open_until)
            THEN (extract(epoch FROM w.circuit_open_until) * 1000000)::bigint END,
        'failing_since_us', CASE WHEN isfinite(w.failing_since)
            THEN (extract(epoch FROM w.failing_since) * 1000000)::bigint END,
        'consecutive_failures', w.consecutive_failures,
        -- The latest failure reason among the webhook's deliveries (deliveries_by_webhook).
        'last_error', (SELECT d.status_reason FROM deliveries d
                       WHERE d.webhook_id = w.id AND d.status IN ('pending', 'failed')
                         AND d.status_reason <> ''
                       ORDER BY d.seq DESC LIMIT 1))
$$;

CREATE FUNCTION log_webhook_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state jsonb := webhook_state_json(NEW);
BEGIN
    -- A delete also clears `enabled`: that is a deletion, not an alert.
    IF NEW.deleted_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    IF OLD.enabled AND NOT NEW.enabled THEN
        INSERT INTO delivery_update_inbox (webhook_id, function, kind, status, status_reason, webhook_state)
        VALUES (NEW.id, NEW.function, 'webhook_disabled', '', coalesce(NEW.disabled_reason, ''), state);
    END IF;
    IF OLD.circuit_open_until IS NULL AND NEW.circuit_open_until IS NOT NULL THEN
        INSERT INTO delivery_update_inbox (webhook_id, function, kind, status, status_reason, webhook_state)
        VALUES (NEW.id, NEW.function, 'circuit_opened', '', coalesce(state->>'last_error', ''), state);
    ELSIF OLD.circuit_open_until IS NOT NULL AND NEW.circuit_open_until IS NULL THEN
        INSERT INTO delivery_update_inbox (webhook_id, function, kind, status, status_reason, webhook_state)
        VALUES (NEW.id, NEW.function, 'circuit_closed', '', '', state);
    END IF;
    IF NOT OLD.enabled AND NEW.enabled THEN
        INSERT INTO delivery_update_inbox (webhook_id, function, kind, status, status_reason, webhook_state)
        VALUES (NEW.id, NEW.function, 'webhook_enabled', '', '', state);
    END IF;
    RETURN NULL;
END
$$;

-- The WHEN clause keeps the trigger free for the many webhook updates that change neither.
CREATE TRIGGER webhooks_state_changes
    AFTER UPDATE OF enabled, circuit_open_until ON webhooks
    FOR EACH ROW
    WHEN (NEW.kind = 'endpoint' AND (OLD.enabled IS DISTINCT FROM NEW.enabled
          OR (OLD.circuit_open_until IS NULL) <> (NEW.circuit_open_until IS NULL)))
    EXECUTE FUNCTION log_webhook_state_change();

-- A delivery that failed for good gets a delivery_exhausted entry right after its 'failed' one:
-- the existing entry is untouched, the alert is a separate, webhook-level entry.
CREATE FUNCTION log_delivery_exhausted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hook webhooks;
BEGIN
    SELECT * INTO hook FROM webhooks WHERE id = NEW.webhook_id;
    IF NOT FOUND OR hook.kind <> 'endpoint' THEN
        RETURN NULL;
    END IF;
    INSERT INTO delivery_update_inbox (delivery_id, webhook_id, function, kind, status, status_reason,
        attempt_count, next_attempt_at, last_response_status, attempt_id, webhook_state)
    VALUES (NEW.delivery_id, NEW.webhook_id, NEW.function, 'delivery_exhausted', NEW.status, NEW.status_reason,
        NEW.attempt_count, NEW.next_attempt_at, NEW.last_response_status, NEW.attempt_id, webhook_state_json(hook));
    RETURN NULL;
END
$$;

CREATE TRIGGER delivery_updates_exhausted
    AFTER INSERT ON delivery_update_inbox
    FOR EACH ROW
    WHEN (NEW.kind = 'failed')
    EXECUTE FUNCTION log_delivery_exhausted();
