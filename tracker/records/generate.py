"""A seeded generator of programs shaped like the sample: cohorts, learners, staff, ratings, evidence.

The same code makes the checked-in sample program (60 learners) and the benchmark's large sets.
Each learner has a hidden true starting level and growth per term; advisor ratings are the true
level plus rater noise, self-ratings add the learner's own bias. `truth` keeps those hidden values.
"""

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_models import Framework, Goal

REFERENCE_DAY = dt.date(2026, 11, 20)  # "today" of the generated program, fixed for determinism
TERM_MONTHS = 4

PROFESSIONS = np.array(
    [
        "Physician",
        "Nurse",
        "Pharmacist",
        "Laboratory scientist",
        "Physician assistant",
        "Physiotherapist",
        "Dentist",
        "Midwife",
        "Paramedic",
        "Dietitian",
    ]
)
PROFESSION_WEIGHTS = np.array([30, 22, 12, 8, 8, 6, 5, 4, 3, 2], dtype=float)
FIRST = np.array(
    [
        "Amara",
        "José",
        "Zoë",
        "Wei",
        "Fatima",
        "Liam",
        "Priya",
        "Mateo",
        "Aisha",
        "Noah",
        "Sofía",
        "Kenji",
        "Olusegun",
        "Ingrid",
        "Chloé",
        "Rahul",
        "Mei",
        "Tomás",
        "Leila",
        "Ewa",
        "Kwame",
        "Hana",
        "Diego",
        "Saoirse",
        "Yusuf",
        "Anjali",
        "Björn",
        "Nia",
        "Camille",
        "Arjun",
        "Lucía",
        "Emeka",
        "Freya",
        "Hamid",
        "Ava",
        "Daniel",
    ]
)
LAST = np.array(
    [
        "Okafor",
        "García",
        "Müller",
        "Chen",
        "Haddad",
        "Nguyen",
        "Patel",
        "Kowalski",
        "Silva",
        "O'Brien",
        "Kim",
        "Mensah",
        "Andersson",
        "Rossi",
        "Tanaka",
        "Dubois",
        "Hernández",
        "Novak",
        "Ibrahim",
        "Walsh",
        "Lindqvist",
        "Adeyemi",
        "Moreau",
        "Sato",
        "Fernandes",
        "Schmidt",
        "Ahmed",
        "Nowak",
        "Papadopoulos",
        "Murphy",
    ]
)
ADVISOR_COMMENTS = np.array(
    [
        "Solid progress in {c}; next step is to lead rather than assist.",
        "Observed in {c}: well prepared, with clear objectives. Keep building on the feedback from learners.",
        "{c}: still needs close guidance; we agreed on a concrete plan for next term.",
        "Good evidence for {c} this term. The portfolio entry shows real reflection.",
        "{c} is developing as expected. Consider presenting this work at the regional meeting.",
        "Concern about {c}: little evidence so far. Please bring examples to our next meeting.",
    ]
)
SELF_COMMENTS = np.array(
    [
        "I felt more confident in {c} this term, especially after the workshop.",
        "{c}: I tried a new approach and the feedback was mixed; I want to refine it.",
        "I think I have mastered {c}; the session went very well.",
        "I found {c} hard with my clinical schedule; I need protected time.",
        "Reflection on {c}: what worked was asking learners for feedback early.",
    ]
)
EVIDENCE_TITLES = {
    "teaching-evaluation": "Learner evaluations, {d} session",
    "observation": "Peer observation of teaching ({d})",
    "curriculum-artifact": "Module outline and objectives ({d})",
    "manuscript": "Manuscript draft ({d})",
    "presentation": "Poster presented at the regional meeting ({d})",
    "grant": "Ethics application ({d})",
    "leadership-project": "Leadership project report ({d})",
    "reflection": "Reflective essay ({d})",
    "peer-feedback": "Interprofessional team feedback ({d})",
}


@dataclass
class Program:
    learners: pd.DataFrame
    staff: pd.DataFrame
    ratings: pd.DataFrame
    evidence: pd.DataFrame
    truth: pd.DataFrame
    meetings: pd.DataFrame = field(default_factory=pd.DataFrame)
    decisions: pd.DataFrame = field(default_factory=pd.DataFrame)
    goals: pd.DataFrame = field(default_factory=pd.DataFrame)

    def write(self, out_dir: str | Path, with_truth: bool = False) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        tables = {"learners": self.learners, "staff": self.staff, "evidence": self.evidence, "ratings": self.ratings}
        tables |= {"meetings": self.meetings, "decisions": self.decisions, "goals": self.goals}
        if with_truth:
            tables["truth"] = self.truth
        con = duckdb.connect()
        for name, frame in tables.items():
            # the path goes in as an argument, never into SQL text: a folder named o'brien is a folder like any other
            con.from_df(frame).write_csv(str(out / f"{name}.csv"), header=True, sep=",", quotechar='"')
        con.close()


def _add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    return dt.date(day.year + y, m + 1, 1)


def cohort_plan(n_terms: int, n_cohorts: int) -> list[tuple[str, dt.date, int]]:
    """(cohort id, intake day, current term index) for cohorts that are in the program now."""
    current_start = _add_months(
        dt.date(REFERENCE_DAY.year, ((REFERENCE_DAY.month - 1) // TERM_MONTHS) * TERM_MONTHS + 1, 1), 0
    )
    fractions = [1.0, 2 / 3, 1 / 2, 5 / 6, 1 / 3, 1 / 6]
    plan = []
    for k in range(n_cohorts):
        current = max(1, math.ceil(n_terms * fractions[k % len(fractions)]) - (k // len(fractions)))
        intake = _add_months(current_start, -TERM_MONTHS * (current - 1))
        plan.append((intake.strftime("%Y-%m"), intake, current))
    return plan


GROWTH = ("straight", "slowing")  # a straight line per learner, or fast early and slowing toward a ceiling


def graduated_plan(
    n_terms: int, n_cohorts: int, current: list[tuple[str, dt.date, int]]
) -> list[tuple[str, dt.date, int]]:
    """(cohort id, intake day, final term index) for cohorts that graduated, a year apart, before the current ones."""
    earliest = min(intake for _, intake, _ in current)
    plan = []
    for k in range(n_cohorts, 0, -1):
        intake = _add_months(earliest, -TERM_MONTHS * n_terms - 12 * (k - 1) - 12)
        plan.append((intake.strftime("%Y-%m"), intake, n_terms))
    return plan


def generate(
    framework: Framework,
    n_learners: int = 60,
    seed: int = 7,
    n_cohorts: int | None = None,
    graduated_cohorts: int = 2,
    graduated_learners: int | None = None,
    growth: str = "straight",
) -> Program:
    """`n_learners` in `n_cohorts` cohorts now in the program and, before them, `graduated_cohorts` cohorts that
    finished every term (status graduated; `graduated_learners` in all, by default as many as a current cohort
    each, at least 30), learners numbered on after the current ones. `growth` is one of GROWTH."""
    n_cohorts = n_cohorts or max(3, min(12, n_learners // 20))
    program = _generate(framework, n_learners, seed, cohort_plan(len(framework.term_ids), n_cohorts), growth)
    if not graduated_cohorts:
        return program
    n_past = graduated_learners or graduated_cohorts * max(30, n_learners // n_cohorts)
    plan = graduated_plan(len(framework.term_ids), graduated_cohorts, cohort_plan(len(framework.term_ids), n_cohorts))
    n_adv = len(program.staff) - 4
    past = _generate(framework, n_past, seed + 1, plan, growth, first=n_learners, n_adv=n_adv, graduated=True)
    return Program(
        pd.concat([program.learners, past.learners], ignore_index=True),
        program.staff,
        pd.concat([program.ratings, past.ratings], ignore_index=True),
        pd.concat([program.evidence, past.evidence], ignore_index=True),
        pd.concat([program.truth, past.truth], ignore_index=True),
        program.meetings,
        program.decisions,
        program.goals,
    )


def _generate(
    framework: Framework,
    n_learners: int,
    seed: int,
    plan: list[tuple[str, dt.date, int]],
    shape: str,
    first: int = 0,
    n_adv: int | None = None,
    graduated: bool = False,
) -> Program:
    """Learners `first + 1` … `first + n_learners` in the cohorts of `plan`; graduated ones are rated in every
    term (none pending, none on leave) and their ratings' and evidence's ids start with G."""
    if shape not in GROWTH:
        raise ValueError(f"growth must be one of {', '.join(GROWTH)}, not {shape!r}")
    rng = np.random.default_rng(seed)
    comps = list(framework.competencies)
    n_comp, n_terms = len(comps), len(framework.term_ids)
    lo, hi = framework.min_level, framework.max_level
    n_cohorts = len(plan)
    width = max(3, len(str(first + n_learners)))

    # ---- staff -------------------------------------------------------------------------------
    n_adv = n_adv or max(8, n_learners // 8)
    staff_rows = [(f"A{i + 1:03d}", _name(rng), ["advisor"]) for i in range(n_adv)]
    staff_rows[0] = (staff_rows[0][0], staff_rows[0][1], ["advisor", "committee"])  # the committee chair advises too
    staff_rows += [(f"C{i + 1:03d}", _name(rng), ["committee"]) for i in range(3)]
    staff_rows += [("K001", _name(rng), ["coordinator"])]
    staff = pd.DataFrame(
        {
            "id": [s[0] for s in staff_rows],
            "name": [s[1] for s in staff_rows],
            "email": [f"{s[0].lower()}@staff.milestone.example.org" for s in staff_rows],
            "roles": [";".join(s[2]) for s in staff_rows],
        }
    )

    # ---- learners and their hidden truth -----------------------------------------------------
    ids = np.array([f"L{first + i + 1:0{width}d}" for i in range(n_learners)])
    cohort_of = np.arange(n_learners) % n_cohorts
    current = np.array([plan[c][2] for c in cohort_of])
    start_level = np.clip(rng.normal(framework.calendar.expected[framework.term_ids[0]], 0.2, n_learners), lo, hi)
    span = max(1, n_terms - 1)
    program_growth = (framework.calendar.graduation_level - start_level.mean()) / span
    growth = rng.normal(program_growth * 1.1, program_growth * 0.15, n_learners)
    struggling = rng.random(n_learners) < 0.08
    growth[struggling] = rng.normal(program_growth * 0.45, program_growth * 0.1, struggling.sum())
    bias = rng.normal(0.1, 0.2, n_learners)
    over = rng.random(n_learners) < 0.1
    bias[over] = rng.uniform(0.8, 1.3, over.sum())
    status = np.full(n_learners, "graduated" if graduated else "active", dtype=object)
    on_leave = rng.choice(
        np.flatnonzero(current >= 3), size=0 if graduated else max(1, n_learners // 60), replace=False
    )
    status[on_leave] = "leave"
    last_term = current.copy()
    last_term[on_leave] = np.maximum(1, current[on_leave] - 1)
    advisor = np.array([staff_rows[i % n_adv][0] for i in rng.permutation(n_learners)])
    names = [_name(rng) for _ in range(n_learners)]
    learners = pd.DataFrame(
        {
            "id": ids,
            "name": names,
            "email": [f"{i.lower()}@learner.milestone.example.org" for i in ids],
            "cohort": [plan[c][0] for c in cohort_of],
            "profession": rng.choice(PROFESSIONS, n_learners, p=PROFESSION_WEIGHTS / PROFESSION_WEIGHTS.sum()),
            "start_term": [plan[c][0] for c in cohort_of],
            "status": status,
            "advisor_id": advisor,
        }
    )
    # the true level after `terms` terms: a straight line, or (slowing) the same first term's gain, then each
    # term's gain a fixed share smaller, so that the gains shrink toward a ceiling
    shrink = 0.75

    def path(terms: np.ndarray | int, who: np.ndarray | slice = slice(None)) -> np.ndarray:
        if shape == "straight":
            return start_level[who] + growth_rate[who] * terms
        first_gain = growth_rate[who] * span * (1 - shrink) / (1 - shrink**span)
        return start_level[who] + first_gain * (1 - shrink**terms) / (1 - shrink)

    growth_rate = growth
    truth = pd.DataFrame(
        {
            "learner_id": ids,
            "start_level": start_level.round(3),
            "growth_per_term": growth.round(3),
            "self_bias": bias.round(3),
            "final_true_level": path(span).round(3),
            # rated below the graduation level at the end: a true level a quarter below the target or lower
            "misses_graduation_level": path(span) < framework.calendar.graduation_level - 0.25,
        }
    )

    # ---- one row per learner x term x competency that has happened ---------------------------
    learner_idx = np.repeat(np.arange(n_learners), last_term)
    term_idx = np.concatenate([np.arange(1, t + 1) for t in last_term]) if n_learners else np.array([], int)
    lt = np.repeat(learner_idx, n_comp)
    tt = np.repeat(term_idx, n_comp)
    ct = np.tile(np.arange(n_comp), len(learner_idx))
    comp_offset = rng.normal(0, 0.15, (n_learners, n_comp))
    true_level = path(tt - 1, lt) + comp_offset[lt, ct]
    advisor_level = _half(true_level + rng.normal(0, 0.2, len(lt)), lo, hi)
    self_level = _half(true_level + bias[lt] + rng.normal(0, 0.3, len(lt)), lo, hi)
    intake = np.array([np.datetime64(plan[c][1]) for c in cohort_of])
    term_start = intake[lt].astype("datetime64[M]") + (tt - 1) * TERM_MONTHS
    self_day = term_start.astype("datetime64[D]") + 60 + rng.integers(0, 10, len(lt))
    adv_day = term_start.astype("datetime64[D]") + 70 + rng.integers(0, 10, len(lt))
    # in the current term the advisor has not yet rated everyone: their self-ratings await review
    pending = (tt == current[lt]) & (rng.random(n_learners)[lt] < 0.35) & (not graduated)
    adv_keep = ~pending & (adv_day <= np.datetime64(REFERENCE_DAY))
    self_day = np.minimum(self_day, np.datetime64(REFERENCE_DAY))

    comp_names = np.array([framework.competencies[c].name for c in comps])
    comp_ids = np.array(comps)
    term_ids = np.array(framework.term_ids)

    # ---- evidence: one or two items per learner and term, each on a few competencies ---------
    n_ev = np.repeat(1 + (rng.random(len(learner_idx)) < 0.5), 1)
    ev_lt = np.repeat(learner_idx, n_ev)
    ev_tt = np.repeat(term_idx, n_ev)
    domains = framework.domains
    ev_dom = rng.integers(0, len(domains), len(ev_lt))
    types = np.array(framework.evidence_type_ids)
    ev_type = types[rng.integers(0, len(types), len(ev_lt))]
    ev_ids = np.array([f"E{i + 1:0{width + 2}d}" for i in range(len(ev_lt))])
    ev_comps = [
        ";".join(c.id for c in rng.permutation(np.array(domains[d].competencies, dtype=object))[: 1 + rng.integers(3)])
        for d in ev_dom
    ]
    ev_day = (intake[ev_lt].astype("datetime64[M]") + (ev_tt - 1) * TERM_MONTHS).astype("datetime64[D]") + 40
    evidence = pd.DataFrame(
        {
            "id": ev_ids,
            "learner_id": ids[ev_lt],
            "type": ev_type,
            "title": [
                EVIDENCE_TITLES.get(t, "{d} evidence").format(d=domains[d].name)
                for t, d in zip(ev_type, ev_dom, strict=True)
            ],
            "competency_ids": ev_comps,
            "url": [f"https://portfolio.milestone.example.org/{i}" for i in ev_ids],
            "description": [f"Term {t} portfolio entry." for t in ev_tt],
            "added_on": pd.to_datetime(ev_day).strftime("%Y-%m-%d"),
        }
    )
    # a self-rating cites the learner's evidence of that term when it covers the competency
    ev_key: dict[tuple[Any, Any, str], list[str]] = {}
    for eid, li, ti, cs in zip(ev_ids, ev_lt, ev_tt, ev_comps, strict=True):
        for cid in cs.split(";"):
            ev_key.setdefault((li, ti, cid), []).append(eid)
    self_ev = (
        [";".join(ev_key.get((li, ti, comps[ci]), [])) for li, ti, ci in zip(lt, tt, ct, strict=True)]
        if len(ev_key) < 2_000_000
        else [""] * len(lt)
    )

    # ---- ratings ----------------------------------------------------------------------------
    def comments(templates: np.ndarray, share: float) -> np.ndarray:
        pick = rng.integers(0, len(templates), len(lt))
        has = rng.random(len(lt)) < share
        out = np.where(has, templates[pick], "")
        return np.array([t.format(c=comp_names[ci]) if t else "" for t, ci in zip(out, ct, strict=True)], dtype=object)

    self_part = pd.DataFrame(
        {
            "learner_id": ids[lt],
            "competency_id": comp_ids[ct],
            "level": self_level,
            "rater_id": ids[lt],
            "rater_role": "self",
            "rated_on": pd.to_datetime(self_day).strftime("%Y-%m-%d"),
            "term": term_ids[tt - 1],
            "comment": comments(SELF_COMMENTS, 0.25),
            "evidence_ids": self_ev,
        }
    )
    adv_part = pd.DataFrame(
        {
            "learner_id": ids[lt],
            "competency_id": comp_ids[ct],
            "level": advisor_level,
            "rater_id": advisor[lt],
            "rater_role": "advisor",
            "rated_on": pd.to_datetime(adv_day).strftime("%Y-%m-%d"),
            "term": term_ids[tt - 1],
            "comment": comments(ADVISOR_COMMENTS, 0.3),
            "evidence_ids": "",
        }
    )[adv_keep]
    ratings = pd.concat([self_part, adv_part], ignore_index=True)
    ratings = ratings.sort_values(
        ["rated_on", "learner_id", "rater_role", "competency_id"], kind="stable", ignore_index=True
    )
    ratings.insert(0, "id", [f"R{i + 1:0{width + 4}d}" for i in range(len(ratings))])
    ratings["framework_version"] = framework.version
    ratings["corrects"] = ""
    ratings["level"] = ratings["level"].map(lambda v: f"{v:.1f}")
    ratings = _with_corrections(ratings, rng, n=max(2, n_learners // 30))
    # competencies whose assessment plan asks for a second opinion: a committee member rates part of the terms
    # too, a few days before the advisor (whose rating stays the term's level); a random stream of its own
    # leaves every other row as it was
    second = np.array([_asks_second_opinion(framework, c) for c in comps])
    if second.any():
        extra = np.random.default_rng([seed, 17])
        pick = adv_keep & second[ct] & (extra.random(len(lt)) < 0.55)
        second_day = adv_day[pick] - 5
        opinions = pd.DataFrame(
            {
                "id": [f"Q{i + 1:0{width + 4}d}" for i in range(int(pick.sum()))],
                "learner_id": ids[lt[pick]],
                "competency_id": comp_ids[ct[pick]],
                "level": [f"{v:.1f}" for v in _half(true_level[pick] + extra.normal(0, 0.2, pick.sum()), lo, hi)],
                "rater_id": extra.choice(np.array(REVIEWED_BY), int(pick.sum())),
                "rater_role": "committee",
                "rated_on": pd.to_datetime(second_day).strftime("%Y-%m-%d"),
                "term": term_ids[tt[pick] - 1],
                "comment": "",
                "evidence_ids": "",
                "framework_version": framework.version,
                "corrects": "",
            }
        )
        ratings = pd.concat([ratings, opinions], ignore_index=True)
    if graduated:  # ids of their own beside the current cohorts'
        ratings["id"] = "G" + ratings["id"]
        ratings["corrects"] = ratings["corrects"].map(lambda c: f"G{c}" if c else "")
        ratings["evidence_ids"] = ratings["evidence_ids"].map(lambda e: ";".join(f"G{i}" for i in e.split(";") if i))
        evidence["id"] = "G" + evidence["id"]
        evidence["url"] = "https://portfolio.milestone.example.org/" + evidence["id"]
        return Program(learners, staff, ratings, evidence, truth)
    # the committee's last review of the most advanced cohort, from the advisor levels of the term before this one
    expected = np.array([[framework.expected_level(c, t) for t in framework.term_ids] for c in comps])
    reviewed = (cohort_of[lt] == 0) & (tt == current[lt] - 1) & adv_keep & (status[lt] == "active")
    gap = advisor_level[reviewed] - expected[ct[reviewed], tt[reviewed] - 1]
    mean_gap = pd.Series(gap).groupby(lt[reviewed]).mean()
    meetings, decisions = past_review(plan[0], framework.term_ids, mean_gap, learners, bias, staff_rows[0][0])
    goals = plan_goals(framework, decisions, ratings, learners)
    return Program(learners, staff, ratings, evidence, truth, meetings, decisions, goals)


REVIEWED_BY = ("C001", "C002", "C003")  # the committee members besides its chair


def past_review(
    cohort: tuple[str, dt.date, int],
    term_ids: list[str],
    mean_gap: pd.Series,
    learners: pd.DataFrame,
    bias: np.ndarray,
    chair: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The signed review of a cohort at the end of the term before its current one: every active learner on the
    agenda, a decision from their mean level against the expected levels then, and one decision revised later."""
    cohort_id, intake, current = cohort
    if current < 2 or mean_gap.empty:
        return pd.DataFrame(), pd.DataFrame()
    term = term_ids[current - 2]
    held_on = _add_months(intake, TERM_MONTHS * (current - 1)) - dt.timedelta(days=10)
    meeting_id = f"M-{cohort_id}-{term}"
    ids = learners["id"].to_numpy()
    agenda, rows = [], []
    advisors = learners["advisor_id"].to_numpy()
    for i, g in zip(mean_gap.index.to_numpy(dtype=int), mean_gap.to_numpy(), strict=True):
        learner_id, advisor = ids[i], advisors[i]
        if g <= -1.0:
            outcome, why = "remediation-plan", f"Levels a whole level below the expected ones on average ({g:+.1f})."
        elif g <= -0.5:
            outcome, why = (
                "learning-plan",
                f"Levels below the expected ones on average ({g:+.1f}); a plan can close it.",
            )
        elif bias[i] >= 0.8:
            outcome, why = "monitor", "Rates themselves well above the advisor; discuss self-assessment this term."
        else:
            outcome, why = "on-track", ""
        actions = (
            f"{held_on + dt.timedelta(days=30)} | {advisor} | Agree a {outcome.split('-')[0]} plan with the learner"
            if outcome.endswith("-plan")
            else ""
        )
        agenda.append(f"{learner_id} | every learner of cohort {cohort_id}")
        rows.append((f"D-{learner_id}-{term}", meeting_id, learner_id, outcome, why, held_on, chair, "", actions))
    decisions = pd.DataFrame(
        rows,
        columns=[
            "id",
            "meeting_id",
            "learner_id",
            "outcome",
            "rationale",
            "decided_on",
            "signed_by",
            "replaces",
            "actions",
        ],
    )
    planned = decisions[decisions["outcome"] == "learning-plan"]
    if not planned.empty:  # a plan that worked: revised to "monitor" a few weeks later
        first = planned.iloc[0]
        revised = (
            f"D-{first.learner_id}-{term}-r1",
            "",
            first.learner_id,
            "monitor",
            "The plan's first goals are met: monitor instead of a formal plan.",
            held_on + dt.timedelta(days=28),
            REVIEWED_BY[1],
            first.id,
            "",
        )
        decisions.loc[len(decisions)] = revised
    decisions["decided_on"] = decisions["decided_on"].map(str)
    meetings = pd.DataFrame(
        {
            "id": [meeting_id],
            "title": [f"Progress committee: cohort {cohort_id}"],
            "held_on": [str(held_on)],
            "period": [f"End of {term}"],
            "cohort": [cohort_id],
            "chair_id": [chair],
            "members": [";".join(sorted({chair, *REVIEWED_BY}))],
            "signed_on": [str(held_on)],
            "agenda": ["\n".join(agenda)],
        }
    )
    return meetings, decisions


GOAL_COLUMNS = tuple(Goal.model_fields)  # the goals file's columns: the model's fields
GOAL_ACTIONS = (
    "Practise {c} twice with a peer observing; discuss the feedback with my advisor.",
    "Read two key papers on {c} and try one idea out in my next block.",
)
GOAL_EVIDENCE = (
    "Peer observation form and my reflection on it",
    "Learner evaluations of the sessions",
)


def plan_goals(
    framework: Framework, decisions: pd.DataFrame, ratings: pd.DataFrame, learners: pd.DataFrame
) -> pd.DataFrame:
    """The goals of the plans the review's decisions opened: for each learner whose decision requires a plan, the two
    competencies furthest below the expected level at the review, aimed a level higher by the term after it; written
    two weeks after the review and agreed by the advisor a week later. One learner's first goal is changed after its
    agreement (waiting to be agreed again), with the advisor's comment and the learner's reply."""
    if decisions.empty:
        return pd.DataFrame(columns=list(GOAL_COLUMNS))
    wanted = {o.id for o in framework.outcomes.values() if o.requires_plan}
    opened = decisions[decisions["outcome"].isin(wanted)]
    advisor_of = dict(zip(learners["id"], learners["advisor_id"], strict=True))
    assessed = ratings[(ratings["rater_role"] == "advisor") & ratings["learner_id"].isin(opened["learner_id"])]
    by_learner = dict(tuple(assessed.sort_values(["rated_on", "id"]).groupby("learner_id")))
    rows = []
    for decision_id, learner_id, decided_on in zip(
        opened["id"], opened["learner_id"], opened["decided_on"], strict=True
    ):
        held = dt.date.fromisoformat(str(decided_on))
        mine = by_learner.get(learner_id, assessed.head(0))
        before = mine[mine["rated_on"] < str(held)]  # the levels the committee reviewed
        if before.empty:
            continue
        at = int(before["term"].map(framework.term_index).max())
        term_id = framework.term_ids[at - 1]
        levels = before[before["term"] == term_id].groupby("competency_id")["level"].last().astype(float).to_dict()
        gaps = {str(c): float(v) - framework.expected_level(str(c), term_id) for c, v in levels.items()}
        by_term = framework.term_ids[min(at, len(framework.term_ids) - 1)]
        advisor = advisor_of[learner_id]
        for k, competency_id in enumerate(sorted(gaps, key=lambda c: (gaps[c], c))[:2]):
            name = framework.competencies[competency_id].name
            goal = {
                "id": f"G-{learner_id}-{k + 1}",
                "version": 1,
                "plan_id": f"P-{decision_id}",
                "decision_id": decision_id,
                "learner_id": learner_id,
                "competency_id": competency_id,
                "target_level": f"{min(levels[competency_id] + 1, framework.max_level):.1f}",
                "by_term": by_term,
                "actions": GOAL_ACTIONS[k].format(c=name.lower()),
                "evidence": GOAL_EVIDENCE[k],
                "written_by": learner_id,
                "written_on": str(held + dt.timedelta(days=14)),
                "agreed_by": advisor,
                "agreed_on": str(held + dt.timedelta(days=21)),
                "comments": f"{held + dt.timedelta(days=21)} | {advisor} | Agreed; bring the evidence to our next meeting.",
            }
            rows.append(goal)
    goals = pd.DataFrame(rows, columns=list(GOAL_COLUMNS))
    if len(goals):  # the last learner's first goal is changed after its agreement: it waits to be agreed again
        first = goals[goals["learner_id"] == goals["learner_id"].iloc[-1]].iloc[0].to_dict()
        held = dt.date.fromisoformat(first["agreed_on"])
        changed = first | {
            "version": 2,
            "target_level": f"{float(first['target_level']) - 0.5:.1f}",
            "actions": first["actions"] + "\nAlso: ask for a second observer from another department.",
            "written_on": str(held + dt.timedelta(days=20)),
            "agreed_by": "",
            "agreed_on": "",
            "comments": f"{held + dt.timedelta(days=22)} | {first['learner_id']} | "
            "Half a level lower: the clinical rota leaves fewer teaching sessions this term.",
        }
        goals.loc[len(goals)] = changed
    goals["version"] = goals["version"].astype(int)
    return goals


def _with_corrections(ratings: pd.DataFrame, rng: np.random.Generator, n: int) -> pd.DataFrame:
    """A few advisor ratings corrected later (a typo in the level), as happens in real programs."""
    advisor_rows = ratings.index[ratings["rater_role"] == "advisor"]
    if len(advisor_rows) == 0:
        return ratings
    picked = ratings.loc[rng.choice(advisor_rows, size=min(n, len(advisor_rows)), replace=False)].copy()
    picked["corrects"] = picked["id"]
    picked["id"] = [f"{i}-c1" for i in picked["id"]]
    picked["comment"] = "Correction: the level entered earlier was a typing error."
    picked["rated_on"] = (pd.to_datetime(picked["rated_on"]) + pd.Timedelta(days=2)).dt.strftime("%Y-%m-%d")
    picked["rated_on"] = picked["rated_on"].where(
        picked["rated_on"] <= REFERENCE_DAY.isoformat(), REFERENCE_DAY.isoformat()
    )
    return pd.concat([ratings, picked], ignore_index=True)


def _asks_second_opinion(framework: Framework, competency_id: str) -> bool:
    plan = framework.plan_for(competency_id)
    return plan is not None and ((plan.ratings_per_term or 0) >= 2 or (plan.raters or 0) >= 2)


def _half(values: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.clip(np.round(values * 2) / 2, lo, hi)


def _name(rng: np.random.Generator) -> str:
    return f"{FIRST[rng.integers(len(FIRST))]} {LAST[rng.integers(len(LAST))]}"
