-- Dead-letter retention and per-vendor quota (issue 17 item 15, detectors/deadletter_retention.py).
--
-- * deadletters.stored_at: when the row was written. Retention and quota count by it, not by
--   received_at (a replayed or late dead letter of an old message still takes disk now).
-- * deadletter_overflow: dead letters beyond a vendor's quota are not kept as rows but counted
--   here per vendor, reason, cause and day (of stored_at), so an operator still sees how many
--   there were. cause: 'quota' (the vendor's row quota within the retention is used up) or
--   'disk_full' (PostgreSQL refused the insert for lack of resources: the store degrades to
--   counting, best effort). Rows older than the retention are deleted with the dead letters.

ALTER TABLE deadletters ADD COLUMN IF NOT EXISTS stored_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS deadletters_vendor_stored ON deadletters (vendor, stored_at);
CREATE INDEX IF NOT EXISTS deadletters_stored ON deadletters (stored_at);

CREATE TABLE IF NOT EXISTS deadletter_overflow (
    vendor    text NOT NULL,
    reason    text NOT NULL,
    cause     text NOT NULL CHECK (cause IN ('quota', 'disk_full')),
    day       date NOT NULL,
    letters   bigint NOT NULL DEFAULT 0,
    raw_bytes bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (vendor, reason, cause, day)
);
