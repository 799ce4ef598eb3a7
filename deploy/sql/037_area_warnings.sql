-- 三色区域预警 by 片 (township), 线 (industry: a 行业领域, the matrix's domain) and 点 (site) (issue 15),
-- from alarms with their 研判, hazards (open, overdue, 重大隐患) and accidents (生产安全事故), per
-- the rules of data/area_warnings.yaml (alerting/area_warning.py).
--
-- accidents: a 生产安全事故 as entered by the centre (`hazmon accident add`), graded per
--   《生产安全事故报告和调查处理条例》第三条: general 一般 / larger 较大 / major 重大 /
--   especially_major 特别重大; site_id NULL when it happened at no registered site (a road, a
--   building site), then township_id and domain place it. accident_audit: who entered it.
-- area_warnings: one row per warning episode of an area (raised → lowered/raised … → lifted);
--   at most one active (lifted_at NULL) per area. reasons: the Chinese sentences shown and sent;
--   measures: the figures they came from.
-- area_warning_history: every change (new, raise, lower, lift) with the figures, who was told
--   (notification ids) — the warning's record and audit.
CREATE TABLE IF NOT EXISTS accidents (
    id              text PRIMARY KEY,
    occurred_at     timestamptz NOT NULL,
    township_id     text NOT NULL,
    site_id         text,
    domain          text NOT NULL,
    level           text NOT NULL CHECK (level IN ('general', 'larger', 'major', 'especially_major')),
    deaths          integer NOT NULL DEFAULT 0 CHECK (deaths >= 0),
    injuries        integer NOT NULL DEFAULT 0 CHECK (injuries >= 0),
    title           text NOT NULL CHECK (title <> ''),
    description     text NOT NULL DEFAULT '',
    created_by      text NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS accidents_occurred ON accidents (occurred_at DESC);

CREATE TABLE IF NOT EXISTS accident_audit (
    id          bigserial PRIMARY KEY,
    accident_id text NOT NULL REFERENCES accidents(id) ON DELETE CASCADE,
    action      text NOT NULL,
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE IF NOT EXISTS area_warnings (
    id          bigserial PRIMARY KEY,
    scope       text NOT NULL CHECK (scope IN ('township', 'industry', 'site')),
    key         text NOT NULL,
    name        text NOT NULL,
    township_id text NOT NULL DEFAULT '',
    domains     text[] NOT NULL DEFAULT '{}',
    level       text NOT NULL CHECK (level IN ('red', 'orange', 'yellow')),
    reasons     jsonb NOT NULL DEFAULT '[]'::jsonb,
    measures    jsonb NOT NULL DEFAULT '{}'::jsonb,
    since       timestamptz NOT NULL,
    level_since timestamptz NOT NULL,
    evaluated_at timestamptz NOT NULL,
    lifted_at   timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS area_warnings_active ON area_warnings (scope, key) WHERE lifted_at IS NULL;
CREATE INDEX IF NOT EXISTS area_warnings_since ON area_warnings (since DESC);

CREATE TABLE IF NOT EXISTS area_warning_history (
    id          bigserial PRIMARY KEY,
    warning_id  bigint NOT NULL REFERENCES area_warnings(id) ON DELETE CASCADE,
    action      text NOT NULL CHECK (action IN ('new', 'raise', 'lower', 'lift')),
    from_level  text,
    to_level    text,
    reasons     jsonb NOT NULL DEFAULT '[]'::jsonb,
    measures    jsonb NOT NULL DEFAULT '{}'::jsonb,
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS area_warning_history_w ON area_warning_history (warning_id, id);
