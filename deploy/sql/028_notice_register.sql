-- 通知单台账 (issue 14): the 四单 register per unit. A notice (004's ``notices``, one per alert
-- and level) is issued by the 区安委办 (``issued_by``: routes.yaml notice_issuer) to one or more
-- units; each addressed unit has its row here with its 签收 (received), its 回复 (reply) and the
-- centre's 办结 (the unit's part closed after the reply was accepted).
--   unit_kind: township (镇/街道, its grid member's notice counts under it), department (行业监管),
--              leader (a 问责建议单's reader), centre (the duty desk's copy)
-- A 问责建议单 names the units that failed to act in ``notices.concerning`` ([{kind, id, name}]).
ALTER TABLE notices ADD COLUMN IF NOT EXISTS concerning jsonb NOT NULL DEFAULT '[]'::jsonb;

CREATE TABLE IF NOT EXISTS notice_units (
    notice_id   bigint NOT NULL REFERENCES notices(id) ON DELETE CASCADE,
    unit_kind   text NOT NULL CHECK (unit_kind IN ('township', 'department', 'leader', 'centre')),
    unit_id     text NOT NULL,
    unit_name   text NOT NULL,
    roles       text[] NOT NULL DEFAULT '{}',   -- the recipient roles reached for this unit
    signed_at   timestamptz,
    signed_by   text,
    replied_at  timestamptz,
    replied_by  text,
    reply       text NOT NULL DEFAULT '',
    closed_at   timestamptz,
    closed_by   text,
    close_note  text NOT NULL DEFAULT '',
    PRIMARY KEY (notice_id, unit_kind, unit_id),
    CHECK (reply = '' OR replied_at IS NOT NULL)
);
-- a township's or a department's register, newest first
CREATE INDEX IF NOT EXISTS notice_units_unit ON notice_units (unit_kind, unit_id, notice_id DESC);
