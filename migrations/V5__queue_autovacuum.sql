-- The queue tables churn: every delivery is inserted, updated at claim and at result, and every
-- change passes through the update inbox (inserted, then deleted by the sequencer). With the
-- default thresholds (20 % of the table) their dead index entries pile up between vacuums, and
-- the claim's index scans slow down with them. Vacuum and analyze them after far less churn.
ALTER TABLE deliveries SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.05,
    autovacuum_vacuum_cost_delay = 1
);
ALTER TABLE delivery_update_inbox SET (
    autovacuum_vacuum_scale_factor = 0,
    autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_insert_scale_factor = 0,
    autovacuum_vacuum_insert_threshold = 5000,
    autovacuum_vacuum_cost_delay = 1
);
