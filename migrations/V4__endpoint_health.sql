-- Endpoint health, one source of truth for every instance: consecutive failures drive the
-- circuit breaker (deliveries of an open circuit wait instead of burning worker slots), and
-- failing_since drives auto-disable.
ALTER TABLE webhooks ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN circuit_open_until timestamptz;
ALTER TABLE webhooks ADD COLUMN failing_since timestamptz;

-- Attempts in flight per webhook (claimed, lease running), for the per-webhook cap.
CREATE INDEX deliveries_in_flight ON deliveries (webhook_id) WHERE status = 'pending' AND claim_token IS NOT NULL;

-- Due deliveries per webhook, for the claim's per-endpoint scan.
CREATE INDEX deliveries_due_by_webhook ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
