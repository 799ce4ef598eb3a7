"""From one round of checks to pages: pure, with the clock as an argument.

Every round gives an :class:`Observation` per problem: bad, good, or unknown (the check could
not run — while the database is unreachable, nothing read from it is known). A problem seen
bad without a break for ``confirm_s`` opens an incident and is paged **once**; seen good
without a break for ``clear_s`` it is closed with **one** 恢复. Unknown rounds change nothing,
so an incident neither closes nor opens on what could not be seen.

Inhibition, as Alertmanager's: a consequence is not paged while its cause is bad — while
alerting is down or the database unreachable or read-only, the outbox cannot drain, SMS
attempts are not recorded and the canary's arrivals are not written, so those are the cause's
incident, not three more pages. A consequence paged before its cause appeared stays open until
it is seen good again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hazwatch.texts import PROBLEMS

__all__ = ["Observation", "Page", "Recovered", "Incidents", "INHIBITED_BY", "PageableState"]

_DB = ("db_unreachable", "db_refuses_writes")
#: problem → the problems whose being bad keeps it from being paged
INHIBITED_BY: dict[str, tuple[str, ...]] = {
    "db_refuses_writes": ("db_unreachable",),
    "alerting_down": (),
    "sms_failing": (*_DB, "alerting_down"),
    "sms_unreachable": (),
    "outbox_stuck": (*_DB, "alerting_down", "sms_failing", "sms_unreachable"),
    "canary_broken": (*_DB, "alerting_down"),
}


@dataclass(frozen=True, slots=True)
class Observation:
    problem: str
    bad: bool | None  # None: unknown this round
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    problem: str
    since: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class Recovered:
    problem: str
    since: datetime
    until: datetime


@dataclass
class PageableState:
    bad_since: datetime | None = None
    good_since: datetime | None = None
    #: confirmation counts from here: the first bad round, or ``settle`` after its cause
    #: stopped inhibiting it (a canary needs a moment to flow again after alerting restarted)
    confirm_from: datetime | None = None
    detail: str = ""
    #: paged (an incident is open) since ``bad_since``
    open: bool = False


@dataclass
class Incidents:
    """The open incidents and the problems on their way to one; :meth:`step` once per round."""

    confirm: timedelta = timedelta(seconds=15)
    clear: timedelta = timedelta(seconds=10)
    settle: timedelta = timedelta(seconds=60)
    states: dict[str, PageableState] = field(default_factory=dict)

    def restore(self, open_since: Mapping[str, datetime]) -> None:
        """Incidents a previous run of the watchdog had paged (its ``watchdog_state`` row): they
        are not paged again, and get their 恢复."""
        for problem, since in open_since.items():
            if problem in PROBLEMS:
                self.states[problem] = PageableState(bad_since=since, open=True)

    def open_incidents(self) -> dict[str, PageableState]:
        return {k: s for k, s in self.states.items() if s.open}

    def bad_now(self) -> set[str]:
        return {k for k, s in self.states.items() if s.bad_since is not None and s.good_since is None}

    def step(self, observations: Iterable[Observation], now: datetime) -> list[Page | Recovered]:
        out: list[Page | Recovered] = []
        seen = list(observations)
        for ob in seen:
            st = self.states.setdefault(ob.problem, PageableState())
            if ob.bad is None:
                continue
            if ob.bad:
                st.detail = ob.detail or st.detail
                st.good_since = None
                if st.bad_since is None:
                    st.bad_since = st.confirm_from = now
            elif st.open:
                st.good_since = st.good_since or now
            else:
                st.bad_since = st.good_since = st.confirm_from = None
        bad = self.bad_now()
        for ob in seen:
            st = self.states[ob.problem]
            if st.open and st.good_since is not None and now - st.good_since >= self.clear:
                assert st.bad_since is not None
                out.append(Recovered(ob.problem, st.bad_since, st.good_since))
                self.states[ob.problem] = PageableState()
            elif not st.open and st.bad_since is not None and st.good_since is None:
                if bad.intersection(INHIBITED_BY.get(ob.problem, ())):
                    st.confirm_from = now + self.settle
                    continue
                if now - (st.confirm_from or st.bad_since) < self.confirm:
                    continue
                st.open = True
                out.append(Page(ob.problem, st.bad_since, st.detail))
        return out

    def inhibited(self) -> set[str]:
        """Problems bad now that are not paged because their cause is bad too."""
        bad = self.bad_now()
        return {k for k in bad if not self.states[k].open and bad.intersection(INHIBITED_BY.get(k, ()))}
