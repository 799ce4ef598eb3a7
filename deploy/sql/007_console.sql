-- Console: users with roles, sessions, login attempts (rate limit) and the console's own audit.
-- No foreign keys into the registry tables on purpose: a registry re-import may replace
-- departments/townships/sites/vendors; a user whose scope id vanished simply sees nothing.

CREATE TABLE IF NOT EXISTS console_users (
    username      text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{2,31}$'),
    display_name  text NOT NULL DEFAULT '',
    -- centre 中心值班员, department 行业部门, township 镇/街道, business 企业, vendor 厂商, admin
    role          text NOT NULL CHECK (role IN ('centre', 'department', 'township', 'business', 'vendor', 'admin')),
    password_hash text NOT NULL,              -- argon2id (argon2-cffi), never the password
    department_id text,
    township_id   text,
    site_ids      text[] NOT NULL DEFAULT '{}',
    vendor_id     text,
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    CHECK (role <> 'department' OR department_id IS NOT NULL),
    CHECK (role <> 'township' OR township_id IS NOT NULL),
    CHECK (role <> 'business' OR cardinality(site_ids) >= 1),
    CHECK (role <> 'vendor' OR vendor_id IS NOT NULL)
);

-- Sessions: the browser holds a random token; only its SHA-256 is stored. Absolute expiry.
CREATE TABLE IF NOT EXISTS console_sessions (
    token_hash    text PRIMARY KEY,
    username      text NOT NULL REFERENCES console_users(username) ON DELETE CASCADE,
    csrf_token    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    ip            text NOT NULL DEFAULT '',
    user_agent    text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS console_sessions_user ON console_sessions (username);
CREATE INDEX IF NOT EXISTS console_sessions_expiry ON console_sessions (expires_at);

-- Every login attempt, so the rate limit holds across console processes and restarts.
CREATE TABLE IF NOT EXISTS console_login_attempts (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    username  text NOT NULL,
    ip        text NOT NULL,
    ok        boolean NOT NULL
);
CREATE INDEX IF NOT EXISTS console_login_attempts_user ON console_login_attempts (username, at DESC);
CREATE INDEX IF NOT EXISTS console_login_attempts_ip ON console_login_attempts (ip, at DESC);

-- What console users did that no other audit records (user management, logins, logouts).
CREATE TABLE IF NOT EXISTS console_audit (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL DEFAULT '',
    detail  jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS console_audit_at ON console_audit (at DESC);
