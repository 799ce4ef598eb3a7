-- 隐患台账 from the page (issue 14): 挂牌督办 with the 五落实 (责任、措施、资金、时限、预案), 整改 with
-- photos, 复查 by the township or department (passed → 复查通过，待销号 ``reviewed``; failed → back to
-- 整改 with a reason), 销号 only after a passed 复查, and the overdue pass (逾期提醒 → 逾期升级).
--   phase: found → registered → supervised → rectified → reviewed → struck_off
--          (rectified → supervised/registered again when the 复查 fails)
--   time limit (时限) of the 五落实 is ``deadline`` (004); the supervising unit ``supervisor`` (004)
--   overdue_level: 0 none told, 1 逾期提醒 sent (to the business and the territory), 2 逾期升级 sent
--     (to the departments and the responsible leader); overdue_due_at: when the overdue pass next
--     looks at the hazard (NULL: nothing due — the partial index keeps the pass free when none is)
ALTER TABLE hazards DROP CONSTRAINT IF EXISTS hazards_phase_check;
ALTER TABLE hazards ADD CONSTRAINT hazards_phase_check
    CHECK (phase IN ('found', 'registered', 'supervised', 'rectified', 'reviewed', 'struck_off'));
ALTER TABLE hazards
    ADD COLUMN IF NOT EXISTS owner          text NOT NULL DEFAULT '',   -- 责任人
    ADD COLUMN IF NOT EXISTS measures       text NOT NULL DEFAULT '',   -- 整改措施
    ADD COLUMN IF NOT EXISTS funds          text NOT NULL DEFAULT '',   -- 整改资金
    ADD COLUMN IF NOT EXISTS plan           text NOT NULL DEFAULT '',   -- 应急预案
    ADD COLUMN IF NOT EXISTS rectify_note   text NOT NULL DEFAULT '',   -- 整改情况
    ADD COLUMN IF NOT EXISTS attachment_ids text[] NOT NULL DEFAULT '{}',  -- 整改照片 (H1's attachments)
    ADD COLUMN IF NOT EXISTS reviewed_at    timestamptz,                -- 复查
    ADD COLUMN IF NOT EXISTS reviewed_by    text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS review_note    text NOT NULL DEFAULT '',
    ADD COLUMN IF NOT EXISTS overdue_level  smallint NOT NULL DEFAULT 0 CHECK (overdue_level BETWEEN 0 AND 2),
    ADD COLUMN IF NOT EXISTS overdue_due_at timestamptz;
CREATE INDEX IF NOT EXISTS hazards_overdue_due ON hazards (overdue_due_at) WHERE overdue_due_at IS NOT NULL;
-- 转隐患: the hazards an alarm became
CREATE INDEX IF NOT EXISTS hazards_source_alert ON hazards (source_alert_id) WHERE source_alert_id IS NOT NULL;
-- 重大隐患清零: the open major hazards per township
CREATE INDEX IF NOT EXISTS hazards_open_major ON hazards (township_id, found_at)
    WHERE grade = 'major' AND phase <> 'struck_off';
