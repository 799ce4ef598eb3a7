-- Registry additions (owned by the registry; the alerting engineer uses 004+).
--
-- DOMAIN.md's matrix has venue rows besides the sensor-domain rows: a fire alarm in an
-- elderly home (养老) concerns 民政 as well as 应急/消防救援, one in a hospital 卫健, in a school
-- 教育. A rule therefore may be limited to sites of some industries; empty = every site.
ALTER TABLE matrix_rules ADD COLUMN IF NOT EXISTS industries text[] NOT NULL DEFAULT '{}';

-- Device lookups by parent (gateway/panel offline ⇒ its detectors are offline: inhibition).
CREATE INDEX IF NOT EXISTS devices_parent ON devices (parent_id) WHERE parent_id IS NOT NULL;
