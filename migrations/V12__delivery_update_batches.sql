-- The delivery-update log with one write per entry (issue 17).
--
-- Before, every entry was inserted into `delivery_update_inbox`, deleted from it by the
-- sequencer and inserted again into `delivery_updates` with its cursor: three row writes and
-- their index entries per entry, six of the eleven rows written per delivery at fan-out 1.
--
-- Now a statement that changes deliveries appends its entries once, to `delivery_update_entries`,
-- as one batch: the entries share a batch id (from a sequence, taken when the statement runs) and
-- are numbered 1..n within it, and the statement adds one row for the batch to
-- `delivery_update_batches`. The sequencer (one at a time, advisory lock) only gives each
-- committed batch a cursor range, in batch-id order: first_cursor..last_cursor, consecutive
-- after the previous batch. An entry's cursor is its batch's first_cursor + its number - 1.
-- Cursors therefore stay dense and in the sequencer's commit order, exactly as before: a reader
-- that has seen cursor N has seen everything up to N. What the sequencer writes is one row per
-- batch (a publish of 100 events is one batch), not three per entry.
--
-- The previous release's tables stay (its instances keep working during a rolling upgrade: its
-- writers still append to the inbox, and this release's sequencer moves those rows into the new
-- log); a later release drops them. The existing log is copied with its cursors, one batch per
-- entry, so watchers resume across the upgrade.

CREATE SEQUENCE delivery_update_batch_ids;

CREATE TABLE delivery_update_batches (
    id            bigint PRIMARY KEY,
    -- How many entries the batch has (1..n in delivery_update_entries.batch_seq).
    entries       integer NOT NULL CHECK (entries > 0),
    -- The batch's cursor range; NULL until the sequencer has numbered it.
    first_cursor  bigint,
    last_cursor   bigint,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CHECK ((first_cursor IS NULL) = (last_cursor IS NULL)),
    CHECK (last_cursor IS NULL OR last_cursor = first_cursor + entries - 1)
);

-- Reads go by cursor range: the batch holding the first cursor wanted (by last_cursor), then
-- the batches up to the last one wanted (by first_cursor). Ranges never overlap, so both
-- orders are the same.
CREATE UNIQUE INDEX delivery_update_batches_by_cursor ON delivery_update_batches (last_cursor);
CREATE UNIQUE INDEX delivery_update_batches_by_first_cursor ON delivery_update_batches (first_cursor);
-- The sequencer's queue: small, since a batch leaves it when numbered.
CREATE INDEX delivery_update_batches_unsequenced ON delivery_update_batches (id)
    WHERE first_cursor IS NULL;

CREATE TABLE delivery_update_entries (
    batch_id              bigint NOT NULL,
    batch_seq             integer NOT NULL,
    delivery_id           uuid,
    webhook_id            uuid NOT NULL,
    function              text NOT NULL,
    kind                  text NOT NULL,
    status                text NOT NULL,
    status_reason         text NOT NULL DEFAULT '',
    attempt_count         integer NOT NULL DEFAULT 0,
    next_attempt_at       timestamptz,
    last_response_status  integer,
    attempt_id            uuid,
    recorded_at           timestamptz NOT NULL DEFAULT now(),
    webhook_state         jsonb,
    PRIMARY KEY (batch_id, batch_seq)
);
-- The alert processor reads only webhook-level entries (rare): this keeps its read off the log.
CREATE INDEX delivery_update_entries_webhook_level ON delivery_update_entries (batch_id)
    WHERE webhook_state IS NOT NULL;

-- Copy the log with its cursors: one batch per entry, batch id = cursor.
INSERT INTO delivery_update_entries (batch_id, batch_seq, delivery_id, webhook_id, function, kind, status,
    status_reason, attempt_count, next_attempt_at, last_response_status, attempt_id, recorded_at, webhook_state)
SELECT cursor, 1, delivery_id, webhook_id, function, kind, status, status_reason, attempt_count, next_attempt_at,
       last_response_status, attempt_id, recorded_at, webhook_state
FROM delivery_updates;
INSERT INTO delivery_update_batches (id, entries, first_cursor, last_cursor, created_at)
SELECT cursor, 1, cursor, cursor, recorded_at FROM delivery_updates;

-- New batch ids start after the copied ones. The inbox's pending rows become one unsequenced
-- batch each, in inbox order, so they get the next cursors as they would have.
SELECT setval('delivery_update_batch_ids', coalesce((SELECT max(cursor) FROM delivery_updates), 0) + 1, false);
WITH pending AS (
    SELECT i.*, (SELECT last_value FROM delivery_update_batch_ids) - 1 + row_number() OVER (ORDER BY i.id) AS batch_id
    FROM delivery_update_inbox i
),
copied AS (
    INSERT INTO delivery_update_entries (batch_id, batch_seq, delivery_id, webhook_id, function, kind, status,
        status_reason, attempt_count, next_attempt_at, last_response_status, attempt_id, recorded_at, webhook_state)
    SELECT batch_id, 1, delivery_id, webhook_id, function, kind, status, status_reason, attempt_count,
           next_attempt_at, last_response_status, attempt_id, recorded_at, webhook_state
    FROM pending
    RETURNING batch_id
)
INSERT INTO delivery_update_batches (id, entries) SELECT batch_id, 1 FROM copied;
SELECT setval('delivery_update_batch_ids',
              greatest(coalesce((SELECT max(id) FROM delivery_update_batches), 0) + 1,
                       (SELECT last_value FROM delivery_update_batch_ids)), false);
DELETE FROM delivery_update_inbox;

-- Both tables churn like the queue (V5): vacuum after little churn.
ALTER TABLE delivery_update_batches SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 1
);
ALTER TABLE delivery_update_entries SET (
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 1
);

-- Appends one entry to the log as a batch of its own (the triggers' way: rare, one row at a time).
CREATE FUNCTION append_delivery_update(e delivery_update_entries) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    batch bigint := nextval('delivery_update_batch_ids');
BEGIN
    e.batch_id := batch;
    e.batch_seq := 1;
    e.recorded_at := coalesce(e.recorded_at, now());
    e.status_reason := coalesce(e.status_reason, '');
    e.attempt_count := coalesce(e.attempt_count, 0);
    INSERT INTO delivery_update_entries SELECT e.*;
    INSERT INTO delivery_update_batches (id, entries) VALUES (batch, 1);
END
$$;

-- The webhook-level entries of V11, now appended to the new log.
CREATE OR REPLACE FUNCTION log_webhook_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    state jsonb := webhook_state_json(NEW);
    e delivery_update_entries;
BEGIN
    -- A delete also clears `enabled`: that is a deletion, not an alert.
    IF NEW.deleted_at IS NOT NULL THEN
        RETURN NULL;
    END IF;
    e.webhook_id := NEW.id;
    e.function := NEW.function;
    e.status := '';
    e.webhook_state := state;
    IF OLD.enabled AND NOT NEW.enabled THEN
        e.kind := 'webhook_disabled';
        e.status_reason := coalesce(NEW.disabled_reason, '');
        PERFORM append_delivery_update(e);
    END IF;
    IF OLD.circuit_open_until IS NULL AND NEW.circuit_open_until IS NOT NULL THEN
        e.kind := 'circuit_opened';
        e.status_reason := coalesce(state->>'last_error', '');
        PERFORM append_delivery_update(e);
    ELSIF OLD.circuit_open_until IS NOT NULL AND NEW.circuit_open_until IS NULL THEN
        e.kind := 'circuit_closed';
        e.status_reason := '';
        PERFORM append_delivery_update(e);
    END IF;
    IF NOT OLD.enabled AND NEW.enabled THEN
        e.kind := 'webhook_enabled';
        e.status_reason := '';
        PERFORM append_delivery_update(e);
    END IF;
    RETURN NULL;
END
$$;

-- A delivery that failed for good gets a delivery_exhausted entry after its 'failed' one (a
-- later batch of the same transaction). The trigger on the inbox stays for the previous
-- release's writers.
CREATE FUNCTION log_delivery_exhausted_entry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hook webhooks;
    e delivery_update_entries;
BEGIN
    SELECT * INTO hook FROM webhooks WHERE id = NEW.webhook_id;
    IF NOT FOUND OR hook.kind <> 'endpoint' THEN
        RETURN NULL;
    END IF;
    e := NEW;
    e.kind := 'delivery_exhausted';
    e.recorded_at := now();
    e.webhook_state := webhook_state_json(hook);
    PERFORM append_delivery_update(e);
    RETURN NULL;
END
$$;

CREATE TRIGGER delivery_update_entries_exhausted
    AFTER INSERT ON delivery_update_entries
    FOR EACH ROW
    WHEN (NEW.kind = 'failed')
    EXECUTE FUNCTION log_delivery_exhausted_entry();

-- During a rolling upgrade, the previous release's sequencer still moves inbox rows into the old
-- log: forward each such entry to the new log, so that no change goes unseen by this release's
-- watchers. (The old log's own readers see only the previous release's writes meanwhile.)
CREATE FUNCTION forward_legacy_delivery_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    e delivery_update_entries;
BEGIN
    e.delivery_id := NEW.delivery_id;
    e.webhook_id := NEW.webhook_id;
    e.function := NEW.function;
    e.kind := NEW.kind;
    e.status := NEW.status;
    e.status_reason := NEW.status_reason;
    e.attempt_count := NEW.attempt_count;
    e.next_attempt_at := NEW.next_attempt_at;
    e.last_response_status := NEW.last_response_status;
    e.attempt_id := NEW.attempt_id;
    e.recorded_at := NEW.recorded_at;
    e.webhook_state := NEW.webhook_state;
    PERFORM append_delivery_update(e);
    RETURN NULL;
END
$$;

CREATE TRIGGER delivery_updates_forward
    AFTER INSERT ON delivery_updates
    FOR EACH ROW
    EXECUTE FUNCTION forward_legacy_delivery_update();

-- The new log's trigger makes the delivery_exhausted entries now, whichever way a 'failed' entry
-- arrives; the inbox's would make a second one.
DROP TRIGGER delivery_updates_exhausted ON delivery_update_inbox;

-- The alert processor's progress in the new log. The previous release's processor keeps its own
-- row in webhook_alert_progress, reads the old log and finds no webhook-level entries there any
-- more (the triggers above write to the new log), so no alert is sent twice or skipped.
CREATE TABLE delivery_update_alert_progress (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    cursor     bigint NOT NULL
);
INSERT INTO delivery_update_alert_progress (cursor)
SELECT coalesce((SELECT cursor FROM webhook_alert_progress LIMIT 1),
                (SELECT max(last_cursor) FROM delivery_update_batches), 0);
