-- Console login throttle (issue 17 item 12). One row per (account, source address) and one per
-- source as a whole (username '*': password spraying across accounts). An attempt is taken
-- here *before* its password is checked, under the row lock (SELECT … FOR UPDATE), so
-- concurrent guesses cannot overshoot the limit; a lock lasts longer each time (backoff).
-- Keyed by source on purpose: failures from one address never lock the owner out elsewhere.
CREATE TABLE IF NOT EXISTS console_login_throttle (
    username     text NOT NULL,                 -- lower-cased login name, or '*' for the whole source
    source       text NOT NULL,                 -- client address; IPv6 grouped by /64
    failures     integer NOT NULL DEFAULT 0,    -- wrong passwords since window_start
    pending      integer NOT NULL DEFAULT 0,    -- attempts taken, password check still running
    window_start timestamptz NOT NULL,
    locked_until timestamptz,
    lockouts     integer NOT NULL DEFAULT 0,    -- locks so far: the next one lasts lock_s · 2^lockouts
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (username, source)
);
CREATE INDEX IF NOT EXISTS console_login_throttle_last ON console_login_throttle (last_at);
