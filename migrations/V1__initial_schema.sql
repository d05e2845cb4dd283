-- Webhooks, events, deliveries and attempts. Postgres is the only store and the work queue.

CREATE TABLE webhooks (
    id                          uuid PRIMARY KEY,
    -- Insertion order: the stable key behind ListWebhooks' page tokens.
    seq                         bigserial NOT NULL UNIQUE,
    name                        text NOT NULL,
    destination_url             text NOT NULL,
    function                    text NOT NULL
        CHECK (function IN ('withdrawal', 'prop_trading_participation', 'prop_trading_live_stage')),
    approval_nodes              integer[] NOT NULL,
    on_rejection                boolean NOT NULL,
    description                 text NOT NULL DEFAULT '',
    secret                      bytea NOT NULL,
    -- Kept during a rotation's grace period so receivers can switch over without failures.
    previous_secret             bytea,
    previous_secret_expires_at  timestamptz,
    deliver_once_per_request    boolean NOT NULL DEFAULT false,
    enabled                     boolean NOT NULL DEFAULT true,
    disabled_reason             text,
    disabled_at                 timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    -- Soft delete: the delivery history of a deleted webhook stays readable.
    deleted_at                  timestamptz
);

CREATE INDEX webhooks_routing ON webhooks (function) WHERE enabled AND deleted_at IS NULL;

CREATE TABLE events (
    id               uuid PRIMARY KEY,
    idempotency_key  text NOT NULL UNIQUE,
    -- SHA-256 of the published request: a repeat must carry the same content.
    content_hash     bytea NOT NULL,
    event_type       text NOT NULL,
    function         text NOT NULL,
    request_id       text NOT NULL,
    -- The exact JSON body every delivery of this event sends (signed byte for byte).
    body             text NOT NULL,
    occurred_at      timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE deliveries (
    id                    uuid PRIMARY KEY,
    -- Publish order: deliveries to one webhook about one request go out in this order.
    seq                   bigserial NOT NULL UNIQUE,
    webhook_id            uuid NOT NULL REFERENCES webhooks (id),
    event_id              uuid NOT NULL REFERENCES events (id),
    event_type            text NOT NULL,
    function              text NOT NULL,
    -- Empty for test pings, which are not ordered against anything.
    request_id            text NOT NULL,
    status                text NOT NULL
        CHECK (status IN ('pending', 'succeeded', 'failed', 'skipped', 'cancelled')),
    status_reason         text NOT NULL DEFAULT '',
    attempt_count         integer NOT NULL DEFAULT 0,
    -- Failed attempts counted against the retry schedule (resend and recover start it again).
    schedule_position     integer NOT NULL DEFAULT 0,
    -- Due time while pending. A claim pushes it past the lease, so a crashed worker's delivery
    -- becomes due again by itself.
    next_attempt_at       timestamptz,
    -- What the next attempt is: 'scheduled', 'resend' or 'recover'.
    next_trigger          text NOT NULL DEFAULT 'scheduled',
    -- Set on every claim; results are written only by the holder of the current token.
    claim_token           uuid,
    last_response_status  integer,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_request_order ON deliveries (webhook_id, request_id, seq) WHERE status = 'pending';
CREATE INDEX deliveries_by_webhook ON deliveries (webhook_id, seq DESC);
CREATE INDEX deliveries_by_request ON deliveries (request_id, seq DESC);
CREATE INDEX deliveries_by_event ON deliveries (event_id);

-- The first delivery of a once-per-request webhook for each request; its primary key makes the
-- choice race-free across instances.
CREATE TABLE once_per_request (
    webhook_id   uuid NOT NULL REFERENCES webhooks (id),
    request_id   text NOT NULL,
    delivery_id  uuid NOT NULL,
    PRIMARY KEY (webhook_id, request_id)
);

CREATE TABLE delivery_attempts (
    id                       uuid PRIMARY KEY,
    delivery_id              uuid NOT NULL REFERENCES deliveries (id),
    attempt_number           integer NOT NULL,
    trigger                  text NOT NULL,
    started_at               timestamptz NOT NULL,
    duration_us              bigint NOT NULL,
    request_url              text NOT NULL,
    -- [[name, value], ...] as sent.
    request_headers          jsonb NOT NULL,
    response_status          integer,
    response_headers         jsonb NOT NULL DEFAULT '[]',
    response_body            text NOT NULL DEFAULT '',
    response_body_truncated  boolean NOT NULL DEFAULT false,
    error_kind               text,
    error_message            text NOT NULL DEFAULT ''
);

CREATE INDEX delivery_attempts_by_delivery ON delivery_attempts (delivery_id, attempt_number);
