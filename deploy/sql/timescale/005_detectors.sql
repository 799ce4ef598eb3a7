-- Runs only where `CREATE EXTENSION timescaledb` succeeded.
SELECT create_hypertable('device_events', 'ts', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => TRUE, migrate_data => TRUE);
SELECT add_retention_policy('device_events', INTERVAL '400 days', if_not_exists => TRUE);
