-- Claims find due work per endpoint (deliveries_due_by_webhook), so the global due index only
-- cost a write on every claim and result, and it misled the planner: the claim's final lookup
-- of its few candidates by primary key was combined with a scan of every due delivery in it
-- (6 ms with 85,000 due instead of a few index probes; see BENCHMARKS.md).
DROP INDEX deliveries_due;
