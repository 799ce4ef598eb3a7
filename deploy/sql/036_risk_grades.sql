-- 企业风险分级 红橙黄蓝 (双重预防: 安全风险分级管控, seeds 000 and 002) per site (issue 15), computed by the
-- risk pass (alerting/risk.py) from the rules of data/risk_rules.yaml: inherent factors (行业, 重点场所,
-- 用气, 人员密集程度) and dynamic ones (报警频次, 未销号隐患, 逾期未整改, 近期真实报警).
--
-- sites.density_class: 人员密集程度 高/中/低 ('' = not assessed), a registry column (SiteRow).
-- risk_grades: the current grade of each graded site (one row), with its score, the reasons shown
--   ("餐饮 +20；近30天真实报警 2 起 +30") and the figures they came from; since = when it took this grade.
-- risk_grade_history: every grading that changed a site's grade (its first one included), the
--   grade's record and audit: from → to, score, reasons, the pass that did it (actor) and when.
ALTER TABLE sites ADD COLUMN IF NOT EXISTS density_class text NOT NULL DEFAULT ''
    CHECK (density_class IN ('', '高', '中', '低'));

CREATE TABLE IF NOT EXISTS risk_grades (
    site_id      text PRIMARY KEY,
    grade        text NOT NULL CHECK (grade IN ('red', 'orange', 'yellow', 'blue')),
    score        integer NOT NULL,
    reasons      jsonb NOT NULL DEFAULT '[]'::jsonb,
    measures     jsonb NOT NULL DEFAULT '{}'::jsonb,
    since        timestamptz NOT NULL,
    graded_at    timestamptz NOT NULL,
    rules_digest text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS risk_grades_grade ON risk_grades (grade, score DESC);

CREATE TABLE IF NOT EXISTS risk_grade_history (
    id          bigserial PRIMARY KEY,
    site_id     text NOT NULL,
    from_grade  text CHECK (from_grade IN ('red', 'orange', 'yellow', 'blue')),
    to_grade    text NOT NULL CHECK (to_grade IN ('red', 'orange', 'yellow', 'blue')),
    score       integer NOT NULL,
    reasons     jsonb NOT NULL DEFAULT '[]'::jsonb,
    actor       text NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS risk_grade_history_site ON risk_grade_history (site_id, at DESC);
