-- Field roles and sign-in by SMS code (issue 14 item 1).
--
-- * console_users: two roles for the people who work outside the centre — grid_member (网格员,
--   scoped to village_ids: their 村/社区) and maintainer (维保单位, scoped to maintainer_id: the
--   lifts it maintains, devices.maintainer_id of migration 023). ``phone``: the mobile a user
--   signs in with by one-time code (one active account per number); ``source`` 'registry' for an
--   account made at its first code sign-in from the registry (villages.grid_member_phone,
--   maintainers.duty_mobile/duty_phone), whose scope each later sign-in re-reads from it.
-- * console_login_codes: every code request, also for unknown numbers (code_hash NULL: nothing
--   was sent), so the per-number and per-address limits count what was asked for. A code is
--   kept only as its argon2id hash (10^6 codes: a fast hash would fall to a table dump within
--   the 5 minutes); used_at makes it single use, attempts caps the guesses at one code.

ALTER TABLE console_users DROP CONSTRAINT IF EXISTS console_users_role_check;
ALTER TABLE console_users ADD CONSTRAINT console_users_role_check CHECK (
    role IN ('centre', 'department', 'township', 'business', 'vendor', 'admin', 'grid_member', 'maintainer'));
ALTER TABLE console_users ADD COLUMN IF NOT EXISTS village_ids text[] NOT NULL DEFAULT '{}';
ALTER TABLE console_users ADD COLUMN IF NOT EXISTS maintainer_id text;
ALTER TABLE console_users ADD COLUMN IF NOT EXISTS phone text CHECK (phone ~ '^1[3-9][0-9]{9}$');
ALTER TABLE console_users ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'console'
    CHECK (source IN ('console', 'registry'));
ALTER TABLE console_users DROP CONSTRAINT IF EXISTS console_users_grid_member_scope;
ALTER TABLE console_users ADD CONSTRAINT console_users_grid_member_scope
    CHECK (role <> 'grid_member' OR cardinality(village_ids) >= 1);
ALTER TABLE console_users DROP CONSTRAINT IF EXISTS console_users_maintainer_scope;
ALTER TABLE console_users ADD CONSTRAINT console_users_maintainer_scope
    CHECK (role <> 'maintainer' OR maintainer_id IS NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS console_users_phone ON console_users (phone)
    WHERE phone IS NOT NULL AND active;

CREATE TABLE IF NOT EXISTS console_login_codes (
    id          bigserial PRIMARY KEY,
    phone       text NOT NULL,                -- normalised mobile (11 digits) as asked for
    source      text NOT NULL,                -- client address (IPv6 by /64: console.auth.login_source)
    username    text,                         -- the account the code signs in to; NULL: unknown number
    code_hash   text,                         -- argon2id of the 6 digits; NULL: nothing was sent
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0,   -- wrong codes tried against this one
    notification_id text                      -- the outbox row that carried it
);
CREATE INDEX IF NOT EXISTS console_login_codes_phone ON console_login_codes (phone, created_at DESC);
CREATE INDEX IF NOT EXISTS console_login_codes_source ON console_login_codes (source, created_at DESC);
