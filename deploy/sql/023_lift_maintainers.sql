-- Lifts and their 维保单位 (issue 13 item 8). A lift maintenance company (电梯维保单位) is a
-- registry entity with its own 24-hour duty line (应急救援值班: a mobile gets SMS, a landline a
-- voice call) and optionally a duty mobile beside it; a lift (a device of domain elevator) names
-- the company maintaining it. Trapped passengers and lift faults reach it (alerting/matrix.py,
-- role maintenance).
CREATE TABLE IF NOT EXISTS maintainers (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    duty_name   text NOT NULL DEFAULT '',
    duty_phone  text NOT NULL,
    duty_mobile text
);
ALTER TABLE devices ADD COLUMN IF NOT EXISTS maintainer_id text REFERENCES maintainers (id);
CREATE INDEX IF NOT EXISTS devices_maintainer ON devices (maintainer_id) WHERE maintainer_id IS NOT NULL;

-- The 到场 timer of a trapped-passenger alarm (alerting/arrival.py): TSG T5002 / GB/T 18775 practice,
-- the 维保单位 arrives within 30 min (lift.arrival_limit_min). One row per alert, created when the
-- alarm is first told to the 维保单位; due_at is started_at + the limit at that time, so a restart
-- (or a changed setting) does not move a running timer. arrived_at/arrived_by: 到场 recorded (the
-- centre on the console, audited on the alert's timeline); escalated_at: the missed limit escalated
-- (township, regulator, the centre's duty operator told once).
CREATE TABLE IF NOT EXISTS lift_arrivals (
    alert_id      text PRIMARY KEY REFERENCES alerts (id) ON DELETE CASCADE,
    device_id     text NOT NULL,
    maintainer_id text NOT NULL,
    started_at    timestamptz NOT NULL,
    due_at        timestamptz NOT NULL,
    arrived_at    timestamptz,
    arrived_by    text,
    escalated_at  timestamptz
);
CREATE INDEX IF NOT EXISTS lift_arrivals_pending ON lift_arrivals (due_at)
    WHERE arrived_at IS NULL AND escalated_at IS NULL;
-- alerting looks for trapped-passenger alarms to time every tick (second): the firing ones only
CREATE INDEX IF NOT EXISTS alerts_trapped_firing ON alerts (starts_at)
    WHERE kind = 'elevator.trapped' AND state = 'firing';
