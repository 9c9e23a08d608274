"""Running conformance cases against a running sandbox, and what the suite concludes from them.

A case is one request meant to provoke one answer (a page, a record, a write, a documented error). Cases of
a vendor run in order against one sandbox (a later case may read what an earlier one made, or page on from
its answer); each answer is judged against the vendor's document and the waivers. Coverage compares the
routes the vendor app builds with the routes the cases reached.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from integration_assets_tests.testing.conformance import Answer, Verdict, Violation, documents_for, judge
from integration_assets_tests.testing.conformance_waivers import Waivers, load_waivers
from integration_sandbox.server import Sandbox

__all__ = [
    "Case",
    "Outcome",
    "describe",
    "idle_waivers",
    "run_cases",
    "served_routes",
    "stale_route_waivers",
    "unexercised_routes",
    "unjudged_routes",
]

CALM = "{}"


@dataclass(frozen=True)
class Case:
    name: str  # unique within the vendor: the test id
    method: str
    path: str  # `{placeholders}` are filled from the vendor's ids and the earlier answers' values
    expect: int  # the status this case is meant to provoke
    params: Mapping[str, Any] | None = None
    json: Any = None
    form: Mapping[str, Any] | None = None
    auth: str = "good"  # "good", "bad" (unknown credentials) or "none"
    faults: str | None = None  # a fault profile (YAML) in force for this case only
    then: Callable[[Any], Mapping[str, str]] | None = None  # values this answer gives later cases


@dataclass
class Outcome:
    case: Case
    route: str  # "METHOD template" of the sandbox route that served it ("" if none)
    answer: Answer
    verdict: Verdict
    failures: list[Violation] = field(default_factory=list)  # violations no waiver covers
    waived: list[Violation] = field(default_factory=list)

    @property
    def conforms(self) -> bool:
        return not self.failures and not self.waived and self.answer.status == self.case.expect


_ONE_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    """Placeholders filled; a string that is one placeholder becomes the value itself (an id stays a number)."""
    if isinstance(value, str):
        whole = _ONE_PLACEHOLDER.fullmatch(value)
        return values[whole.group(1)] if whole else value.format_map(values)
    if isinstance(value, Mapping):
        return {k: _fill(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values) for v in value]
    return value


def run_cases(
    sandbox: Sandbox,
    vendor: str,
    cases: Iterable[Case],
    values: dict[str, str],
    auth: Callable[[str], dict[str, Any]],
    waivers: Waivers,
) -> dict[str, Outcome]:
    """Sends each case in order and judges its answer. `auth(kind)` gives the `requests` arguments
    (headers or auth) for "good", "bad" or "none" credentials; `values` grows with each case's `then`."""
    base, app, outcomes = sandbox.url(vendor), sandbox.apps[vendor], {}
    with requests.Session() as session:
        for case in cases:
            if case.name in outcomes:
                raise ValueError(f"{vendor}: two cases are named {case.name!r}")
            try:
                path = _fill(case.path, values)
                params, body, form = _fill(case.params, values), _fill(case.json, values), _fill(case.form, values)
            except KeyError as missing:  # an earlier case did not give it: say so, and go on with the others
                unsent = Verdict(vendor, f"{case.method} {case.path}", 0)
                reason = f"not sent: needs {missing} from an earlier case, which did not answer as expected"
                outcome = Outcome(case, "", Answer(0, {}, b""), unsent)
                outcome.failures.append(Violation(vendor, unsent.operation, 0, "$", "case", reason))
                outcomes[case.name] = outcome
                continue
            if case.faults:
                _put_faults(session, base, case.faults)
            try:
                response = session.request(
                    case.method,
                    base + path,
                    params=params,
                    json=body,
                    data=form,
                    timeout=30,
                    **auth(case.auth),
                )
            finally:
                if case.faults:
                    _put_faults(session, base, CALM)
            answer = Answer.of(response)
            route, _ = app.match(case.method, path)
            verdict = judge(vendor, case.method, path, answer)
            outcome = Outcome(case, f"{route.method} {route.template}" if route else "", answer, verdict)
            for violation in verdict.violations:
                (outcome.waived if waivers.waiver_for(violation) else outcome.failures).append(violation)
            outcomes[case.name] = outcome
            if case.then is not None and answer.status == case.expect:
                try:
                    values.update(case.then(response.json() if answer.body else None))
                except (LookupError, TypeError, ValueError) as error:
                    raise AssertionError(
                        f"{vendor} {case.name}: no value for later cases in {answer.body[:300]!r}"
                    ) from error
    return outcomes


def _put_faults(session: requests.Session, base: str, profile: str) -> None:
    response = session.put(f"{base}/__sandbox__/faults", data=profile, timeout=5)
    assert response.status_code == 200, response.text


def served_routes(sandbox: Sandbox, vendor: str) -> list[str]:
    """Every route the vendor app builds, as "METHOD template" (the sandbox's own routes are not among them)."""
    return [f"{r.method} {r.template}" for r in sandbox.apps[vendor].build_routes()]


def unexercised_routes(routes: Iterable[str], outcomes: Iterable[Outcome], vendor: str, waivers: Waivers) -> list[str]:
    """Routes no case reached and no waiver lists: a new route lands here until it is covered."""
    reached = {o.route for o in outcomes}
    return [r for r in routes if r not in reached and not waivers.route_waived(vendor, r)]


def stale_route_waivers(routes: Iterable[str], vendor: str, waivers: Waivers) -> list[str]:
    """Route waivers that no longer hold: the route is not served any more, or the document now carries it."""
    served, problems = set(routes), []
    for waiver in (w for w in waivers.routes_outside_documents if w.vendor == vendor):
        method, _, template = waiver.operation.partition(" ")
        if waiver.operation not in served:
            problems.append(f"{vendor} {waiver.operation}: waived, but the sandbox serves no such route")
        elif documents_for(vendor).find(method, template) is not None:
            problems.append(f"{vendor} {waiver.operation}: waived, but the document carries it: judge it instead")
    return problems


def describe(outcome: Outcome) -> str:
    """What is wrong with one case's answer, for an assertion message."""
    lines = []
    if outcome.answer.status != outcome.case.expect:
        lines.append(
            f"{outcome.case.name}: expected {outcome.case.expect}, the sandbox answered {outcome.answer.status}: "
            f"{outcome.answer.body[:300]!r}"
        )
    lines += [str(v) for v in outcome.failures]
    return "\n".join(lines)


def unjudged_routes(sandbox: Sandbox, outcomes: Mapping[str, Outcome], vendor: str) -> list[str]:
    """The vendor's served routes that no case reached and no waiver names: each fails the suite."""
    return unexercised_routes(served_routes(sandbox, vendor), outcomes.values(), vendor, load_waivers())


def idle_waivers(sandbox: Sandbox, outcomes: Mapping[str, Outcome], vendor: str) -> list[str]:
    """The vendor's waivers that excused nothing in this run, or name a route no longer served: each must go."""
    waivers = load_waivers()
    seen = [violation for outcome in outcomes.values() for violation in outcome.waived]
    return waivers.unused(vendor, seen) + stale_route_waivers(served_routes(sandbox, vendor), vendor, waivers)
