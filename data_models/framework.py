"""The competency framework: scale, calendar, evidence types, domains and competencies."""

from collections.abc import Collection
from datetime import date
from functools import cached_property

from pydantic import Field, ValidationInfo, model_validator

from data_models.base import HalfLevel, Id, LongText, Strict, Text
from data_models.decisions import STANDARD_OUTCOMES, DecisionOutcome


class ScaleLevel(Strict):
    level: int = Field(ge=0, le=20)
    label: Text
    description: LongText = ""


class Term(Strict):
    id: Id
    label: Text
    starts: date | None = Field(default=None, description="The first day of the term, when the calendar gives it.")
    ends: date | None = Field(default=None, description="The last day of the term, when the calendar gives it.")


class Calendar(Strict):
    terms: list[Term] = Field(min_length=1)
    expected: dict[str, HalfLevel]
    graduation_level: HalfLevel


class EvidenceType(Strict):
    id: Id
    label: Text


class LevelDescriptor(Strict):
    level: int = Field(ge=0, le=20)
    descriptor: LongText = Field(min_length=1)


class AssessmentPlan(Strict):
    """What a standing should rest on: advisor or committee ratings each term, different raters, and evidence by a
    term. Given for the whole program (`assessment_plan`) and per competency, where each field given overrides
    the program's; a field given nowhere asks nothing."""

    ratings_per_term: int | None = Field(
        default=None, ge=1, le=20, description="Advisor or committee ratings of the competency in each term."
    )
    raters: int | None = Field(
        default=None, ge=1, le=20, description="Different advisors or committee members who rated it so far."
    )
    evidence_items: int | None = Field(
        default=None, ge=1, le=100, description="Evidence items linked to the competency, by `evidence_by`."
    )
    evidence_by: Id | None = Field(
        default=None, description="The term by whose end the evidence is due (the last term when not given)."
    )

    def over(self, default: "AssessmentPlan | None") -> "AssessmentPlan":
        """This plan, with every field it leaves out taken from `default`."""
        if default is None:
            return self
        mine = self.model_dump(exclude_none=True)
        return AssessmentPlan(**(default.model_dump(exclude_none=True) | mine))

    @property
    def asks(self) -> bool:
        return any(v is not None for v in (self.ratings_per_term, self.raters, self.evidence_items))

    def words(self) -> str:
        """What it asks, in words: "2 ratings a term; 2 raters; 3 evidence items by T4"."""
        parts = []
        if self.ratings_per_term:
            parts.append(f"{self.ratings_per_term} rating{'s' if self.ratings_per_term > 1 else ''} a term")
        if self.raters:
            parts.append(f"{self.raters} rater{'s' if self.raters > 1 else ''}")
        if self.evidence_items:
            by = f"by {self.evidence_by}" if self.evidence_by else "by the last term"
            parts.append(f"{self.evidence_items} evidence item{'s' if self.evidence_items > 1 else ''} {by}")
        return "; ".join(parts) or "nothing"


class Competency(Strict):
    id: Id
    name: Text
    description: LongText = ""
    levels: list[LevelDescriptor] = Field(min_length=1)
    expected: dict[str, HalfLevel] = Field(default_factory=dict)
    assessment_plan: AssessmentPlan | None = None


class Domain(Strict):
    id: Id
    name: Text
    description: LongText = ""
    competencies: list[Competency] = Field(min_length=1)


class Crosswalk(Strict):
    """Where the competencies and levels of the version before went: every old competency absent from this
    version names the competencies that inherit its ratings (one: renamed; several old to one: merged; one old
    to several: split, each inheriting) or none (retired); `levels` maps old levels to new when the scale changed
    (a level not listed keeps its number). Ratings are never rewritten: standings read them through this."""

    from_version: Text
    competencies: dict[Id, list[Id]] = Field(default_factory=dict)
    levels: dict[int, int] = Field(default_factory=dict)

    def successors(self, old_id: str, current: Collection[str]) -> list[str] | None:
        """The competencies of this version that inherit an old competency's ratings ([] when retired); None
        when the old competency is neither kept nor named here (its ratings would have no home)."""
        if old_id in self.competencies:
            return list(self.competencies[old_id])
        return [old_id] if old_id in current else None

    def map_level(self, level: float) -> float:
        """An old level on this version's scale; a half level lands halfway between its two neighbours' images."""
        low, high = int(level // 1), int(-(-level // 1))
        return (self.levels.get(low, low) + self.levels.get(high, high)) / 2


class Framework(Strict):
    """A whole framework. `problems()` lists what is structurally valid but inconsistent."""

    id: Id
    version: Text
    name: Text
    publisher: Text | None = None  # who publishes the framework: the creator and publisher of a CASE export
    changed: date | None = None  # when this version last changed: every lastChangeDateTime of a CASE export
    scale: list[ScaleLevel] = Field(min_length=2)
    calendar: Calendar
    evidence_types: list[EvidenceType] = Field(min_length=1)
    domains: list[Domain] = Field(min_length=1)
    crosswalk: Crosswalk | None = None
    decision_outcomes: list[DecisionOutcome] = Field(
        default_factory=list, description="Outcomes a review committee may decide beyond the standard ones."
    )
    assessment_plan: AssessmentPlan | None = Field(
        default=None, description="The program's assessment plan; a competency's own `assessment_plan` overrides it."
    )

    def __repr__(self) -> str:
        return f"Framework({self.id!r}, version={self.version!r}, {len(self.competencies)} competencies)"

    # ---- look-ups -------------------------------------------------------------------------
    @cached_property
    def levels(self) -> list[int]:
        return [s.level for s in self.scale]

    @cached_property
    def rating_levels(self) -> list[float]:
        """Every level a rating may take: the scale's levels and the halves between them."""
        return [x / 2 for x in range(2 * self.min_level, 2 * self.max_level + 1)]

    @property
    def min_level(self) -> int:
        return min(self.levels)

    @property
    def max_level(self) -> int:
        return max(self.levels)

    @cached_property
    def term_ids(self) -> list[str]:
        return [t.id for t in self.calendar.terms]

    def term_index(self, term_id: str) -> int:
        """1-based position of a term in the program calendar."""
        return self.term_ids.index(term_id) + 1

    def term_dates(self, term_id: str) -> tuple[date | None, date | None]:
        """The first and last day of a term, when the calendar gives them."""
        term = self.calendar.terms[self.term_index(term_id) - 1]
        return term.starts, term.ends

    def term_label(self, term_id: str) -> str:
        return self.calendar.terms[self.term_index(term_id) - 1].label

    def term_name(self, term_id: str) -> str:
        """How a term is named on every page: the calendar's label with its id, "Year 2 · Term 2 (T5)"."""
        return f"{self.term_label(term_id)} ({term_id})"

    @cached_property
    def competencies(self) -> dict[str, Competency]:
        return {c.id: c for d in self.domains for c in d.competencies}

    @cached_property
    def domain_of(self) -> dict[str, Domain]:
        return {c.id: d for d in self.domains for c in d.competencies}

    @cached_property
    def domain_ids(self) -> list[str]:
        return [d.id for d in self.domains]

    def domain(self, domain_id: str) -> Domain:
        return next(d for d in self.domains if d.id == domain_id)

    @cached_property
    def evidence_type_ids(self) -> list[str]:
        return [e.id for e in self.evidence_types]

    def level_label(self, level: float) -> str:
        whole = {s.level: s.label for s in self.scale}
        if level in whole:
            return whole[int(level)]
        low, high = int(level), int(level) + 1
        return f"between {whole.get(low, low)} and {whole.get(high, high)}"

    def expected_level(self, competency_id: str, term_id: str) -> float:
        """The level a learner is expected to hold in a competency at the end of a term."""
        own = self.competencies[competency_id].expected
        return own.get(term_id, self.calendar.expected[term_id])

    @cached_property
    def outcomes(self) -> dict[str, DecisionOutcome]:
        """Every outcome a review committee may decide: the standard ones, then the program's own."""
        return {o.id: o for o in (*STANDARD_OUTCOMES, *self.decision_outcomes)}

    @property
    def final_term(self) -> str:
        return self.term_ids[-1]

    def plan_for(self, competency_id: str) -> AssessmentPlan | None:
        """The assessment plan of a competency (its own fields over the program's), or None when it asks nothing."""
        own = self.competencies[competency_id].assessment_plan
        plan = own.over(self.assessment_plan) if own is not None else self.assessment_plan
        return plan if plan is not None and plan.asks else None

    @cached_property
    def has_assessment_plan(self) -> bool:
        return any(self.plan_for(c) is not None for c in self.competencies)

    # ---- consistency checks that span fields ----------------------------------------------
    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> "Framework":
        if info.context and info.context.get("defer_problems"):
            return self  # the loader reports them one by one, each with its line
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(f"{'.'.join(map(str, p))}: {m}" for p, m in problems))
        return self

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Every inconsistency, each with the path of the field at fault."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        levels = sorted(s.level for s in self.scale)
        _duplicates(out, ("scale",), [s.level for s in self.scale], "level")
        if levels and levels != list(range(levels[0], levels[0] + len(levels))):
            missing = sorted(set(range(levels[0], levels[-1] + 1)) - set(levels))
            out.append((("scale",), f"level {', '.join(map(str, missing))} is missing from the scale"))
        lo, hi = (levels[0], levels[-1]) if levels else (0, 0)
        terms = [t.id for t in self.calendar.terms]
        _duplicates(out, ("calendar", "terms"), terms, "term id")
        _check_term_dates(out, self.calendar.terms)
        _duplicates(out, ("evidence_types",), [e.id for e in self.evidence_types], "evidence type id")
        _duplicates(out, ("domains",), [d.id for d in self.domains], "domain id")
        standard = {o.id for o in STANDARD_OUTCOMES}
        for oi, outcome in enumerate(self.decision_outcomes):
            if outcome.id in standard:
                out.append((("decision_outcomes", oi, "id"), f"{outcome.id!r} is a standard outcome already"))
        _duplicates(out, ("decision_outcomes",), [o.id for o in self.decision_outcomes], "outcome id")
        _check_trajectory(out, ("calendar", "expected"), self.calendar.expected, terms, lo, hi, complete=True)
        g = self.calendar.graduation_level
        if not lo <= g <= hi:
            out.append((("calendar", "graduation_level"), f"{g} leaves the scale {lo}–{hi}"))
        seen: dict[str, tuple[str | int, ...]] = {}
        for di, d in enumerate(self.domains):
            for ci, c in enumerate(d.competencies):
                path: tuple[str | int, ...] = ("domains", di, "competencies", ci)
                if c.id in seen or c.id in {x.id for x in self.domains}:
                    out.append(((*path, "id"), f"duplicate id {c.id!r}"))
                seen[c.id] = path
                _check_plan(out, (*path, "assessment_plan"), c.assessment_plan, terms)
                given = [lv.level for lv in c.levels]
                _duplicates(out, (*path, "levels"), given, "level")
                for absent in sorted(set(levels) - set(given)):
                    out.append(((*path, "levels"), f"level {absent} is missing"))
                for extra in sorted(set(given) - set(levels)):
                    out.append(((*path, "levels"), f"level {extra} is not on the scale {lo}–{hi}"))
                merged = {**self.calendar.expected, **c.expected}
                _check_trajectory(out, (*path, "expected"), c.expected, terms, lo, hi, complete=False)
                if c.expected and not set(c.expected) - set(terms):
                    _check_rising(out, (*path, "expected"), merged, terms, only=set(c.expected))
        if self.crosswalk is not None:
            _check_crosswalk(out, self.crosswalk, self.version, set(seen), set(levels))
        _check_plan(out, ("assessment_plan",), self.assessment_plan, terms)
        return out


def _check_term_dates(out: list, terms: list[Term]) -> None:
    """A term's dates, when given, are in order and do not overlap the term before."""
    previous: Term | None = None
    for i, t in enumerate(terms):
        if (t.starts is None) != (t.ends is None):
            out.append((("calendar", "terms", i), f"term {t.id} needs both `starts` and `ends`, or neither"))
        elif t.starts is not None and t.ends is not None and t.starts > t.ends:
            out.append((("calendar", "terms", i, "ends"), f"term {t.id} ends ({t.ends}) before it starts ({t.starts})"))
        if previous is not None and previous.ends is not None and t.starts is not None and t.starts <= previous.ends:
            out.append(
                (
                    ("calendar", "terms", i, "starts"),
                    f"term {t.id} starts ({t.starts}) before term {previous.id} ends ({previous.ends})",
                )
            )
        previous = t


def _check_plan(out: list, path: tuple, plan: AssessmentPlan | None, terms: list[str]) -> None:
    if plan is not None and plan.evidence_by is not None and plan.evidence_by not in terms:
        out.append(((*path, "evidence_by"), f"unknown term {plan.evidence_by!r} (terms are {', '.join(terms)})"))


def _duplicates(out: list, path: tuple, values: list, what: str) -> None:
    seen: set = set()
    for i, v in enumerate(values):
        if v in seen:
            out.append(((*path, i), f"duplicate {what} {v!r}"))
        seen.add(v)


def _check_trajectory(
    out: list, path: tuple, expected: dict[str, float], terms: list[str], lo: int, hi: int, complete: bool
) -> None:
    for term, level in expected.items():
        if term not in terms:
            out.append(((*path, term), f"unknown term {term!r} (terms are {', '.join(terms)})"))
        elif not lo <= level <= hi:
            out.append(((*path, term), f"{level} leaves the scale {lo}–{hi}"))
    if complete:
        for term in terms:
            if term not in expected:
                out.append((path, f"no expected level for term {term}"))
        if not set(expected) - set(terms) and set(terms) <= set(expected):
            _check_rising(out, path, expected, terms)


def _check_rising(
    out: list, path: tuple, expected: dict[str, float], terms: list[str], only: set[str] | None = None
) -> None:
    """Expected levels must not fall from one term to the next (`only`: report just these terms' falls)."""
    previous: tuple[str, float] | None = None
    for term in terms:
        level = expected.get(term)
        if level is None:
            continue
        if previous is not None and level < previous[1] and (only is None or term in only or previous[0] in only):
            at = term if only is None or term in only else previous[0]
            out.append(((*path, at), f"expected level falls from {previous[1]} at {previous[0]} to {level} at {term}"))
        previous = (term, level)


def _check_crosswalk(out: list, cw: Crosswalk, version: str, competencies: set[str], levels: set[int]) -> None:
    if cw.from_version == version:
        out.append((("crosswalk", "from_version"), f"is this version ({version}); name the version it revises"))
    for old, new in cw.competencies.items():
        for i, target in enumerate(new):
            if target not in competencies:
                out.append((("crosswalk", "competencies", old, i), f"{target!r} is not a competency of this version"))
        _duplicates(out, ("crosswalk", "competencies", old), new, "competency")
    for old_level, new_level in cw.levels.items():
        if new_level not in levels:
            out.append((("crosswalk", "levels", old_level), f"level {new_level} is not on this version's scale"))
