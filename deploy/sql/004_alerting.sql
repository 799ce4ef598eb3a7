-- Alerting: alerts and their closed loop (闭环管理), aggregation groups, the persisted
-- notification outbox and its attempts, the four notices (四单), silences, the hazards ledger
-- (隐患台账), key periods (重点时段) and safety broadcasts (安全公益短信).
--
-- Conventions
--  * Every state change is a row in a *_transitions / *_audit table with actor, at, reason.
--  * alerts.version / hazards.version are bumped by every applied transition (optimistic check
--    for API callers); transitions themselves take a row lock (SELECT ... FOR UPDATE), so two
--    operators closing one alert end in one state and two recorded attempts.
--  * notifications.id is deterministic (dedup key of alert + recipient + notice step +
--    template): a replayed event inserts nothing new (ON CONFLICT DO NOTHING).
--  * No foreign keys to the registry tables: an alert for a site deleted later keeps its history.

-- Alerts: one per detector event (alert id = event id). The event's firing/resolved state is
-- `state`; the operators' closed loop is `phase`.
CREATE TABLE IF NOT EXISTS alerts (
    id              text PRIMARY KEY,
    kind            text NOT NULL,
    domain          text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('red', 'orange', 'yellow', 'blue')),
    state           text NOT NULL CHECK (state IN ('firing', 'resolved')),
    device_id       text NOT NULL,
    site_id         text NOT NULL,
    township_id     text NOT NULL DEFAULT '',
    department_ids  text[] NOT NULL DEFAULT '{}',   -- 行业监管 at creation (KPIs per department)
    component       text NOT NULL DEFAULT '',
    zone            text NOT NULL DEFAULT '',
    summary         text NOT NULL DEFAULT '',
    labels          jsonb NOT NULL DEFAULT '{}'::jsonb,   -- routing labels (domain, severity, kind, site_id, township_id, panel, ...)
    evidence        jsonb NOT NULL DEFAULT '[]'::jsonb,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz,
    detected_at     timestamptz NOT NULL,
    received_at     timestamptz NOT NULL,                 -- first seen by alerting
    -- routing / suppression
    route_id        text NOT NULL DEFAULT '',
    group_key       text NOT NULL DEFAULT '',
    suppressed_by   text NOT NULL DEFAULT '',             -- '' | 'silence:<id>' | 'inhibit:<alert id>'
    notified_at     timestamptz,                          -- first notification queued
    -- closed loop
    phase           text NOT NULL DEFAULT 'alarm'
                    CHECK (phase IN ('alarm', 'verified', 'dispatched', 'handling', 'feedback', 'closed')),
    verdict         text CHECK (verdict IN ('real', 'false', 'test', 'fault')),
    ack_code        text NOT NULL UNIQUE,                 -- 回复码 / short link code
    acked_at        timestamptz,
    acked_by        text,
    closed_at       timestamptz,
    closed_by       text,
    close_reason    text,
    -- escalation (四单); the timer is persisted so a restart fires what fell due meanwhile
    timer_factor    double precision NOT NULL DEFAULT 1.0 CHECK (timer_factor > 0),   -- 重点时段 tightening
    escalation_step integer NOT NULL DEFAULT 0 CHECK (escalation_step BETWEEN 0 AND 4),
    next_escalation_at timestamptz,
    version         integer NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_starts ON alerts (starts_at DESC);
CREATE INDEX IF NOT EXISTS alerts_site ON alerts (site_id, starts_at DESC);
CREATE INDEX IF NOT EXISTS alerts_township ON alerts (township_id, starts_at DESC);
CREATE INDEX IF NOT EXISTS alerts_open ON alerts (severity, starts_at DESC) WHERE phase <> 'closed';
CREATE INDEX IF NOT EXISTS alerts_group ON alerts (group_key) WHERE group_key <> '';
CREATE INDEX IF NOT EXISTS alerts_escalation_due ON alerts (next_escalation_at)
    WHERE next_escalation_at IS NOT NULL;

-- Audit of every alert action. outcome='rejected' keeps the losing side of a race (two
-- operators closing one alert) and refused actions, with the reason.
CREATE TABLE IF NOT EXISTS alert_transitions (
    id          bigserial PRIMARY KEY,
    alert_id    text NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    action      text NOT NULL,      -- fire, resolve, verify, acknowledge, dispatch, handle, feedback, close, reopen, escalate, suppress, unsuppress
    from_phase  text NOT NULL,
    to_phase    text NOT NULL,
    outcome     text NOT NULL DEFAULT 'applied' CHECK (outcome IN ('applied', 'rejected')),
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    verdict     text,
    note        text NOT NULL DEFAULT '',
    photo_ref   text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    version     integer NOT NULL                     -- alert version after the action
);
CREATE INDEX IF NOT EXISTS alert_transitions_alert ON alert_transitions (alert_id, id);
CREATE INDEX IF NOT EXISTS alert_transitions_at ON alert_transitions (at DESC);

-- Aggregation groups (Alertmanager's aggregation groups, persisted): one per route + group_by
-- label values. `notified_ids` is the notification log (nflog): the firing alert ids last told.
CREATE TABLE IF NOT EXISTS alert_groups (
    key             text PRIMARY KEY,
    route_id        text NOT NULL,
    labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL,
    next_flush_at   timestamptz NOT NULL,       -- group_wait, then group_interval
    last_flush_at   timestamptz,
    last_notify_at  timestamptz,                -- for repeat_interval
    notified_ids    text[] NOT NULL DEFAULT '{}',
    resolved_ids    text[] NOT NULL DEFAULT '{}',
    flushes         integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS alert_groups_due ON alert_groups (next_flush_at);

-- 四单: 工作提醒单 → 风险警示单 → 问题督办单 → 问责建议单, one per alert and level.
CREATE TABLE IF NOT EXISTS notices (
    id          bigserial PRIMARY KEY,
    alert_id    text NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    level       text NOT NULL CHECK (level IN ('reminder', 'warning', 'supervision', 'accountability')),
    step        integer NOT NULL CHECK (step BETWEEN 1 AND 4),
    issued_at   timestamptz NOT NULL,
    deadline    timestamptz NOT NULL,
    recipients  jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [Recipient], each with the matrix rule that chose it
    issued_by   text NOT NULL DEFAULT 'system',
    reason      text NOT NULL DEFAULT '',
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'answered', 'superseded', 'closed')),
    closed_at   timestamptz,
    UNIQUE (alert_id, level)
);
CREATE INDEX IF NOT EXISTS notices_issued ON notices (issued_at DESC);

-- Safety broadcasts (安全公益短信) to a set of businesses, e.g. before 春节 or a typhoon.
CREATE TABLE IF NOT EXISTS broadcasts (
    id              text PRIMARY KEY,
    key_period_id   text,
    body            text NOT NULL,
    audience        jsonb NOT NULL DEFAULT '{}'::jsonb,   -- filter: townships, industries, domains
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL,
    reason          text NOT NULL CHECK (reason <> ''),
    recipients      integer NOT NULL DEFAULT 0
);

-- The persisted outbox: every message is a row before any provider is called, so a provider
-- outage delays but loses nothing. id = deterministic dedup key.
CREATE TABLE IF NOT EXISTS notifications (
    id                  text PRIMARY KEY,
    alert_id            text,                  -- lead alert (NULL for broadcasts)
    group_key           text NOT NULL DEFAULT '',
    notice_id           bigint REFERENCES notices(id) ON DELETE SET NULL,
    broadcast_id        text REFERENCES broadcasts(id) ON DELETE SET NULL,
    channel             text NOT NULL CHECK (channel IN ('sms', 'webhook', 'console')),
    recipient_role      text NOT NULL,
    recipient_name      text NOT NULL DEFAULT '',
    recipient_unit      text NOT NULL DEFAULT '',
    recipient_phone     text,
    rule                text NOT NULL,          -- matrix rule that chose this recipient
    notice_level        text,
    template            text NOT NULL,
    body                text NOT NULL,
    params              jsonb NOT NULL DEFAULT '{}'::jsonb,   -- template parameters (provider templates)
    priority            integer NOT NULL DEFAULT 0,          -- >0: exempt from per-phone rate limit
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'failed', 'suppressed')),
    attempts            integer NOT NULL DEFAULT 0,
    next_attempt_at     timestamptz NOT NULL,
    last_error          text NOT NULL DEFAULT '',
    provider            text NOT NULL DEFAULT '',
    provider_message_id text NOT NULL DEFAULT '',
    created_at          timestamptz NOT NULL,
    sent_at             timestamptz,
    delivered_at        timestamptz,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_attempt_at)
    WHERE status IN ('pending', 'sending');
CREATE INDEX IF NOT EXISTS notifications_alert ON notifications (alert_id);
CREATE INDEX IF NOT EXISTS notifications_phone_sent ON notifications (recipient_phone, sent_at)
    WHERE sent_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS notifications_provider_msg ON notifications (provider_message_id)
    WHERE provider_message_id <> '';

CREATE TABLE IF NOT EXISTS notification_attempts (
    id                  bigserial PRIMARY KEY,
    notification_id     text NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
    attempt             integer NOT NULL,
    at                  timestamptz NOT NULL,
    provider            text NOT NULL,
    outcome             text NOT NULL CHECK (outcome IN ('sent', 'failed', 'retrying', 'rate_limited', 'delivered', 'undelivered')),
    http_status         integer,
    error               text NOT NULL DEFAULT '',
    provider_message_id text NOT NULL DEFAULT '',
    latency_ms          double precision
);
CREATE INDEX IF NOT EXISTS notification_attempts_n ON notification_attempts (notification_id, id);

-- Replies from businesses (回复码 acknowledgement) and other inbound SMS.
CREATE TABLE IF NOT EXISTS sms_replies (
    id          bigserial PRIMARY KEY,
    provider    text NOT NULL,
    phone       text NOT NULL,
    text        text NOT NULL,
    received_at timestamptz NOT NULL,
    alert_id    text,                    -- matched by ack code, NULL when nothing matched
    outcome     text NOT NULL DEFAULT ''
);

-- Silences (维保 windows, tests): matchers + creator + reason + expiry, all audited.
CREATE TABLE IF NOT EXISTS silences (
    id          text PRIMARY KEY,
    matchers    jsonb NOT NULL,                 -- [{"name": "site_id", "op": "=", "value": "S001"}]
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,           -- a silence without expiry is refused
    created_by  text NOT NULL,
    reason      text NOT NULL CHECK (reason <> ''),
    created_at  timestamptz NOT NULL,
    expired_at  timestamptz,                    -- set when expired early by an operator
    expired_by  text,
    CHECK (ends_at > starts_at)
);
CREATE INDEX IF NOT EXISTS silences_active ON silences (ends_at) WHERE expired_at IS NULL;

CREATE TABLE IF NOT EXISTS silence_audit (
    id          bigserial PRIMARY KEY,
    silence_id  text NOT NULL REFERENCES silences(id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('create', 'expire', 'update')),
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Hazards ledger (隐患台账): 排查发现 found → 建立台账 registered → 挂牌督办 supervised (deadline)
-- → 整改 rectified → 销号 struck_off.
CREATE TABLE IF NOT EXISTS hazards (
    id              text PRIMARY KEY,
    site_id         text NOT NULL,
    township_id     text NOT NULL DEFAULT '',
    domain          text NOT NULL,
    department_ids  text[] NOT NULL DEFAULT '{}',
    title           text NOT NULL,
    description     text NOT NULL DEFAULT '',
    grade           text NOT NULL DEFAULT 'general' CHECK (grade IN ('general', 'major')),  -- 一般/重大隐患
    source_alert_id text,
    phase           text NOT NULL DEFAULT 'found'
                    CHECK (phase IN ('found', 'registered', 'supervised', 'rectified', 'struck_off')),
    found_at        timestamptz NOT NULL,
    found_by        text NOT NULL,
    deadline        timestamptz,                -- 限期整改
    supervisor      text NOT NULL DEFAULT '',   -- 督办单位
    rectified_at    timestamptz,
    struck_off_at   timestamptz,
    version         integer NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS hazards_found ON hazards (found_at DESC);
CREATE INDEX IF NOT EXISTS hazards_township ON hazards (township_id, found_at DESC);

CREATE TABLE IF NOT EXISTS hazard_transitions (
    id          bigserial PRIMARY KEY,
    hazard_id   text NOT NULL REFERENCES hazards(id) ON DELETE CASCADE,
    action      text NOT NULL,      -- find, register, supervise, rectify, strike_off
    from_phase  text NOT NULL,
    to_phase    text NOT NULL,
    outcome     text NOT NULL DEFAULT 'applied' CHECK (outcome IN ('applied', 'rejected')),
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    photo_ref   text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    version     integer NOT NULL
);
CREATE INDEX IF NOT EXISTS hazard_transitions_h ON hazard_transitions (hazard_id, id);

-- 重点时段: holidays, major meetings, flood season, severe weather. timer_factor < 1 tightens
-- escalation timers for alerts starting inside the period; empty arrays mean "everywhere".
CREATE TABLE IF NOT EXISTS key_periods (
    id              text PRIMARY KEY,
    name            text NOT NULL,
    kind            text NOT NULL DEFAULT 'other'
                    CHECK (kind IN ('holiday', 'meeting', 'flood', 'heat', 'freezing', 'resumption', 'weather', 'other')),
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    timer_factor    double precision NOT NULL DEFAULT 0.5 CHECK (timer_factor > 0 AND timer_factor <= 1),
    domains         text[] NOT NULL DEFAULT '{}',
    township_ids    text[] NOT NULL DEFAULT '{}',
    note            text NOT NULL DEFAULT '',
    created_by      text NOT NULL DEFAULT 'config',
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (ends_at > starts_at)
);
