"""``notifications`` rows of 登录验证码 (alerting/login_code.py): blanking the code once done."""

from __future__ import annotations

from datetime import datetime

import asyncpg

__all__ = ["BLANK", "blank_codes"]

#: what stands for a used or expired code in a finished row's text and parameters
BLANK = "••••••"


async def blank_codes(conn: asyncpg.Connection, *, template: str, before: datetime, ids: list[str]) -> int:
    """Rows of ``template`` no longer being sent (``pending``, ``sending``, ``held`` keep their code) whose
    code is still there: created before ``before``, or among ``ids``."""
    got = await conn.fetch(
        """UPDATE notifications
              SET body = regexp_replace(body, '[0-9]{6}', $4, 'g'),
                  params = jsonb_set(params, '{code}', to_jsonb($4::text))
            WHERE template = $1 AND params->>'code' IS DISTINCT FROM $4
              AND status NOT IN ('pending', 'sending', 'held')
              AND (created_at < $2 OR id = ANY($3::text[]))
           RETURNING id""",
        template, before, ids, BLANK)
    return len(got)
