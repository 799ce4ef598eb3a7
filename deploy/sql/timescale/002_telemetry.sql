-- Runs only where `CREATE EXTENSION timescaledb` succeeded (the docker-compose image).
-- Hypertables, compression, retention and the per-minute continuous aggregate.
-- Each statement runs on its own and must be re-runnable: a step interrupted half-way runs again
-- from its first statement (hazmon/db.py). Real-time aggregation, the refresh window and the
-- refresh of the history are in timescale/041_rollup_realtime.sql.

SELECT create_hypertable('readings', 'ts', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT create_hypertable('device_status', 'ts', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE, migrate_data => TRUE);

-- once: compression settings cannot change while chunks are compressed (2.17 accepts the same
-- settings again; older and newer versions need not)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
                   WHERE hypertable_schema = current_schema() AND hypertable_name = 'readings'
                     AND compression_enabled) THEN
        ALTER TABLE readings SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'device_id, metric',
            timescaledb.compress_orderby = 'ts DESC'
        );
    END IF;
END
$$;
SELECT add_compression_policy('readings', INTERVAL '7 days', if_not_exists => TRUE);
-- raw readings kept 400 days (a year of bulletins plus margin); the rollup is kept longer
SELECT add_retention_policy('readings', INTERVAL '400 days', if_not_exists => TRUE);
SELECT add_retention_policy('device_status', INTERVAL '400 days', if_not_exists => TRUE);

-- the plain view of 002_telemetry.sql gives way to the continuous aggregate; a continuous
-- aggregate made by an earlier, interrupted run stays (DROP VIEW refuses to drop one)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                   WHERE view_schema = current_schema() AND view_name = 'readings_1m') THEN
        DROP VIEW IF EXISTS readings_1m;
    END IF;
END
$$;
CREATE MATERIALIZED VIEW IF NOT EXISTS readings_1m
WITH (timescaledb.continuous) AS
SELECT device_id, metric, time_bucket(INTERVAL '1 minute', ts) AS bucket,
       min(value) AS min_value, max(value) AS max_value, avg(value) AS avg_value, count(*) AS n
FROM readings
GROUP BY device_id, metric, time_bucket(INTERVAL '1 minute', ts)
WITH NO DATA;
-- a first refresh policy only where there is none: 041 replaces it by a wider one, and a re-run
-- of this step must not add a second (2.28 refuses an overlapping one even with if_not_exists)
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.jobs j
                   JOIN _timescaledb_catalog.continuous_agg c
                     ON c.mat_hypertable_id = (j.config->>'mat_hypertable_id')::int
                   WHERE j.proc_name = 'policy_refresh_continuous_aggregate'
                     AND c.user_view_schema = current_schema() AND c.user_view_name = 'readings_1m') THEN
        PERFORM add_continuous_aggregate_policy('readings_1m',
            start_offset => INTERVAL '1 day', end_offset => INTERVAL '1 minute',
            schedule_interval => INTERVAL '1 minute', if_not_exists => TRUE);
    END IF;
END
$$;
