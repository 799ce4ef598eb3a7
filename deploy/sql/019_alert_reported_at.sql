-- Late data is not a fresh emergency ladder (issue 18): an alarm keeps its true start
-- (starts_at, the device's time) and the 四单 clocks count from when hazmon learned of it.
-- reported_at: when hazmon learned of the episode (ingest's received_at of the record that
-- opened it, else the detector's detected_at; never after alerting's own received_at); NULL
-- on rows stored before this migration (their ladder counted from starts_at, as it still does).
-- time_flag: '' on time, 'late' (reported more than alerting.late_after_s after it started),
-- 'clock_future' (device time ahead of the report beyond the clock skew) or 'clock_old'
-- (before the device was installed, or older than alerting.late_max_age_s): a flagged alert
-- escalates from reported_at and its texts say so.
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS reported_at timestamptz;
ALTER TABLE alerts ADD COLUMN IF NOT EXISTS time_flag text NOT NULL DEFAULT '';
ALTER TABLE alerts DROP CONSTRAINT IF EXISTS alerts_time_flag_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_time_flag_check
    CHECK (time_flag IN ('', 'late', 'clock_future', 'clock_old'));
