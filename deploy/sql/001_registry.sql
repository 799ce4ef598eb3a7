-- Registry: the district's territory, sites, devices and the responsibility matrix (责任矩阵).
-- Loaded by `hazmon registry import`; all-or-nothing per import.

CREATE TABLE IF NOT EXISTS domains (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    name_zh     text NOT NULL,
    -- default expected reporting interval for devices of this domain (seconds)
    default_interval_s integer NOT NULL DEFAULT 60 CHECK (default_interval_s > 0)
);

-- 镇/街道
CREATE TABLE IF NOT EXISTS townships (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    kind        text NOT NULL DEFAULT '镇' CHECK (kind IN ('镇', '街道', '乡', '园区')),
    duty_name   text NOT NULL DEFAULT '',     -- 24小时值班
    duty_phone  text NOT NULL DEFAULT ''
);

-- 村/社区, each walked by a grid member (网格员)
CREATE TABLE IF NOT EXISTS villages (
    id               text PRIMARY KEY,
    township_id      text NOT NULL REFERENCES townships(id),
    name             text NOT NULL,
    kind             text NOT NULL DEFAULT '社区' CHECK (kind IN ('村', '社区')),
    grid_member      text NOT NULL DEFAULT '',
    grid_member_phone text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS villages_township ON villages (township_id);

-- 行业监管部门 (住建, 市监, 应急, 消防救援, ...)
CREATE TABLE IF NOT EXISTS departments (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    duty_name   text NOT NULL DEFAULT '',
    duty_phone  text NOT NULL DEFAULT ''
);

-- 责任领导 / 包保领导
CREATE TABLE IF NOT EXISTS leaders (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    title       text NOT NULL DEFAULT '',
    phone       text NOT NULL DEFAULT ''
);

-- Hardware vendors publishing over MQTT with their own credentials.
CREATE TABLE IF NOT EXISTS vendors (
    id            text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9_-]*$'),
    name          text NOT NULL,
    adapter       text NOT NULL,          -- default payload adapter for this vendor
    mqtt_username text NOT NULL UNIQUE
);

CREATE TABLE IF NOT EXISTS sites (
    id            text PRIMARY KEY,
    name          text NOT NULL,          -- business name
    address       text NOT NULL DEFAULT '',
    industry      text NOT NULL DEFAULT '',  -- 餐饮, 商场, 医院, 养老, 工厂 ...
    site_class    text NOT NULL DEFAULT '',  -- threshold class for detectors
    township_id   text NOT NULL REFERENCES townships(id),
    village_id    text REFERENCES villages(id),
    lon           double precision,
    lat           double precision,
    gas_alarm_required boolean NOT NULL DEFAULT false,   -- 餐饮 可燃气体报警装置 要求
    critical      boolean NOT NULL DEFAULT false,         -- 不放心点位 / 重点场所
    covering_leader_id text REFERENCES leaders(id)        -- 包保领导
);
CREATE INDEX IF NOT EXISTS sites_township ON sites (township_id);

-- 企业主体责任: the business's contacts, usually reached by SMS
CREATE TABLE IF NOT EXISTS site_contacts (
    site_id     text NOT NULL REFERENCES sites(id) ON DELETE CASCADE,
    name        text NOT NULL,
    role        text NOT NULL DEFAULT '主要负责人',
    phone       text NOT NULL,
    PRIMARY KEY (site_id, phone)
);

CREATE TABLE IF NOT EXISTS devices (
    id            text PRIMARY KEY,
    vendor_id     text NOT NULL REFERENCES vendors(id),
    model         text NOT NULL DEFAULT '',
    domain        text NOT NULL REFERENCES domains(name),
    site_id       text NOT NULL REFERENCES sites(id),
    expected_interval_s integer NOT NULL CHECK (expected_interval_s > 0),
    installed_on  date,
    -- a panel/gateway this device hangs off (inhibition: gateway offline ⇒ device offline)
    parent_id     text REFERENCES devices(id),
    active        boolean NOT NULL DEFAULT true
);
CREATE INDEX IF NOT EXISTS devices_site ON devices (site_id);
CREATE INDEX IF NOT EXISTS devices_vendor ON devices (vendor_id);

-- 责任矩阵: domain → department(s) + responsible leader (三管三必须). Data, not code.
CREATE TABLE IF NOT EXISTS matrix_rules (
    id              text PRIMARY KEY,
    domain          text NOT NULL REFERENCES domains(name),
    department_ids  text[] NOT NULL CHECK (cardinality(department_ids) >= 1),
    leader_id       text REFERENCES leaders(id),
    committee       text NOT NULL DEFAULT '',   -- 专委会
    note            text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS matrix_rules_domain ON matrix_rules (domain);

-- Audit of registry imports and matrix edits.
CREATE TABLE IF NOT EXISTS registry_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,
    action      text NOT NULL,
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
