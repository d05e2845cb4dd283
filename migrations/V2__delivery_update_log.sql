-- The delivery-update log behind WatchDeliveries.
--
-- Writers append to the inbox in the same statement as the delivery change, without any global
-- lock. One sequencer at a time (advisory lock) moves inbox rows into the log, numbering them
-- with consecutive cursors. Cursors are therefore dense and in commit order of the sequencer: a
-- reader that has seen cursor N has seen everything up to N, and resuming after N replays
-- exactly what followed.

CREATE TABLE delivery_update_inbox (
    id                    bigserial PRIMARY KEY,
    delivery_id           uuid NOT NULL,
    webhook_id            uuid NOT NULL,
    function              text NOT NULL,
    kind                  text NOT NULL,
    status                text NOT NULL,
    status_reason         text NOT NULL DEFAULT '',
    attempt_count         integer NOT NULL DEFAULT 0,
    next_attempt_at       timestamptz,
    last_response_status  integer,
    attempt_id            uuid,
    recorded_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE delivery_updates (
    cursor                bigint PRIMARY KEY,
    delivery_id           uuid NOT NULL,
    webhook_id            uuid NOT NULL,
    function              text NOT NULL,
    kind                  text NOT NULL,
    status                text NOT NULL,
    status_reason         text NOT NULL DEFAULT '',
    attempt_count         integer NOT NULL DEFAULT 0,
    next_attempt_at       timestamptz,
    last_response_status  integer,
    attempt_id            uuid,
    recorded_at           timestamptz NOT NULL
);

CREATE INDEX delivery_updates_by_webhook ON delivery_updates (webhook_id, cursor);
