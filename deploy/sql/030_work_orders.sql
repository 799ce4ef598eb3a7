-- 工单 (issue 14): 派发 of an alarm to the units and people the 责任矩阵 names for it, one order
-- per unit (and person), each with a deadline, notified over the person's channels, and its
-- steps: 接单 accept → 到场签到 arrive (location, accuracy) → 反馈 feedback (note, photos) →
-- 办结 closed by the centre's approval, or 退回 returned (the person redoes its feedback).
--   state:     issued → accepted → arrived → fed_back → closed; fed_back → returned → fed_back
--   unit_kind: business | township | grid | department | maintainer | leader
--   recipients: the people it is addressed to, as the matrix resolved them at dispatch
--               ([Recipient]: role, name, unit, phone, rule, channels), so a later matrix edit
--               changes neither who was told nor who may act on it
-- Timers, as the alerts' (004): ``next_due_at`` is the next thing alerting's timer pass does for
-- the order (notify it, remind its assignee at the deadline, escalate to the duty operator and
-- the leader after that), NULL when nothing is due; ``notify_step`` says which was done last.
-- Every step (applied or refused) is a row of work_order_transitions with actor, at, reason.
CREATE TABLE IF NOT EXISTS work_orders (
    id              text PRIMARY KEY,                   -- WO-…
    alert_id        text NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    site_id         text NOT NULL,
    township_id     text NOT NULL DEFAULT '',
    unit_kind       text NOT NULL
                    CHECK (unit_kind IN ('business', 'township', 'grid', 'department', 'maintainer', 'leader')),
    unit_id         text NOT NULL,
    unit_name       text NOT NULL,
    contact_id      text,                               -- NULL: the whole unit (its duty room)
    assignee_name   text NOT NULL DEFAULT '',
    assignee_phone  text,
    recipients      jsonb NOT NULL DEFAULT '[]'::jsonb,
    state           text NOT NULL DEFAULT 'issued'
                    CHECK (state IN ('issued', 'accepted', 'arrived', 'fed_back', 'closed', 'returned')),
    note            text NOT NULL DEFAULT '',           -- the centre's words at dispatch
    deadline        timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    created_by      text NOT NULL,
    accepted_at     timestamptz,
    accepted_by     text,
    arrived_at      timestamptz,
    arrived_by      text,
    arrived_lat     double precision CHECK (arrived_lat BETWEEN -90 AND 90),
    arrived_lon     double precision CHECK (arrived_lon BETWEEN -180 AND 180),
    arrived_accuracy_m double precision CHECK (arrived_accuracy_m >= 0),
    fed_back_at     timestamptz,
    fed_back_by     text,
    feedback_note   text NOT NULL DEFAULT '',
    attachment_ids  text[] NOT NULL DEFAULT '{}',
    close_requested boolean NOT NULL DEFAULT false,     -- 申请办结
    returned_at     timestamptz,
    return_reason   text NOT NULL DEFAULT '',
    return_told_at  timestamptz,                        -- the person was told of the 退回
    closed_at       timestamptz,
    closed_by       text,
    close_reason    text CHECK (close_reason IN ('real', 'false', 'test', 'fault')),
    close_note      text NOT NULL DEFAULT '',
    notify_step     integer NOT NULL DEFAULT 0 CHECK (notify_step BETWEEN 0 AND 3),
    notified_at     timestamptz,
    next_due_at     timestamptz,
    version         integer NOT NULL DEFAULT 1,
    updated_at      timestamptz NOT NULL,
    CHECK (deadline > created_at),
    CHECK (state <> 'closed' OR (closed_at IS NOT NULL AND close_reason IS NOT NULL))
);
CREATE INDEX IF NOT EXISTS work_orders_alert ON work_orders (alert_id, created_at);
CREATE INDEX IF NOT EXISTS work_orders_unit ON work_orders (unit_kind, unit_id, created_at DESC);
CREATE INDEX IF NOT EXISTS work_orders_open ON work_orders (deadline) WHERE state <> 'closed';
-- the timer pass: what is due, by its partial index (no scan when nothing is)
CREATE INDEX IF NOT EXISTS work_orders_due ON work_orders (next_due_at) WHERE next_due_at IS NOT NULL;

-- Audit of every step of an order. outcome='rejected' keeps the losing side of a race (two
-- operators approving one order) and refused steps, with the reason.
CREATE TABLE IF NOT EXISTS work_order_transitions (
    id          bigserial PRIMARY KEY,
    order_id    text NOT NULL REFERENCES work_orders(id) ON DELETE CASCADE,
    action      text NOT NULL,      -- issue, accept, arrive, feedback, approve, return, remind, escalate
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    outcome     text NOT NULL DEFAULT 'applied' CHECK (outcome IN ('applied', 'rejected')),
    actor       text NOT NULL,
    at          timestamptz NOT NULL,
    reason      text NOT NULL DEFAULT '',
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb,
    version     integer NOT NULL                     -- order version after the step
);
CREATE INDEX IF NOT EXISTS work_order_transitions_o ON work_order_transitions (order_id, id);
