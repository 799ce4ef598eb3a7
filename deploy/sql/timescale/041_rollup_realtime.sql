-- readings_1m as a continuous aggregate that answers like the plain view (docs/timescaledb.md).
-- Every statement is re-runnable (hazmon/db.py runs them one by one and records the step last).

-- Real-time aggregation: buckets not materialized yet are computed from readings when read
-- (TimescaleDB ≥ 2.13 creates continuous aggregates materialized-only: no rows until a refresh).
ALTER MATERIALIZED VIEW readings_1m SET (timescaledb.materialized_only = false);

-- The refresh policy covers the last 30 days (mqtt.max_age_s: device time older than that is
-- flagged ts_past), every minute. A refresh re-aggregates only the ranges readings were written
-- into since the last one, so the wide window costs nothing while nothing is late. Readings more
-- than 30 days late are stored but reach readings_1m only by a refresh by hand
-- (CALL refresh_continuous_aggregate('readings_1m', '<from>', '<to>')), and never for buckets
-- already dropped from readings by retention (400 days).
SELECT remove_continuous_aggregate_policy('readings_1m', if_exists => TRUE);
SELECT add_continuous_aggregate_policy('readings_1m',
    start_offset => INTERVAL '30 days', end_offset => INTERVAL '1 minute',
    schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE);

-- The history: readings already stored (a plain deployment converted, or an older one whose
-- policy covered one day) are aggregated once, up to the policy's end.
CALL refresh_continuous_aggregate('readings_1m', NULL, now() - INTERVAL '1 minute');
