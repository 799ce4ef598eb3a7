-- The per-minute rollup readings_1m and late readings (docs/timescaledb.md, *Late readings*).
-- Plain PostgreSQL: readings_1m is a view over readings, computed when read, so a late reading
-- is in it at once and there is nothing to refresh. With TimescaleDB, timescale/041_rollup_realtime.sql
-- makes the continuous aggregate answer the same way (real-time aggregation, a 30-day refresh
-- window, the history refreshed once).
COMMENT ON VIEW readings_1m IS
    'per device, metric and minute: min/max/avg/count of readings (computed when read)';
