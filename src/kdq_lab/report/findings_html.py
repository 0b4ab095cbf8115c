"""The Findings section as HTML: Korean first, each sentence with its English gloss; every user string escaped."""

from __future__ import annotations

from html import escape

from kdq_lab.models.registry import IDS
from kdq_lab.report.findings import Caveat, Findings, Score, SplitFinding, Test
from kdq_lab.report.resolution import ALPHA, IDENTICAL

AGAINST = {
    "reference": ("기준 모델", "the reference"),
    "ids": ("ID 전용 최고 모델", "the best ids-only run"),
    "next_ids": ("다음 ID 전용 모델", "the next best ids-only run"),
}


def _num(value: float) -> str:
    return f"{value:.4f}"


def _signed(value: float) -> str:
    return f"{value:+.4f}"


def _p(value: float) -> str:
    return "p &lt; 0.001" if value < 0.001 else f"p = {value:.3f}"


def _run(score: Score, best: bool = False) -> str:
    css = ' class="kdq-best"' if best else ""
    return f'<strong{css} data-run="{escape(score.run)}">{escape(score.label)}</strong>'


def _relative(test: Test) -> str:
    return f" ({test.diff / test.other.value:+.0%})" if test.other.value > 0 else ""


def _verdict(test: Test) -> tuple[str, str]:
    """Different (better or worse), equivalent within ±sesoi, or inconclusive; each with its resolution."""
    mde = _num(test.mde)
    where = (
        f"Holm 보정 {_p(test.p_holm)}, 최소 검출 효과 {mde}",
        f"Holm-adjusted {_p(test.p_holm)}, minimum detectable effect {mde}",
    )
    if test.significant and test.diff > 0:
        return f"유의하게 더 좋음 ({where[0]})", f"significantly better ({where[1]})"
    if test.significant and test.diff < 0:
        return f"유의하게 더 나쁨 ({where[0]})", f"significantly worse ({where[1]})"
    if test.verdict == IDENTICAL:
        return (
            f"모든 사용자에서 값이 같음 ({test.n_users}명 모두 차이 0)",
            f"identical on every user (all {test.n_users} users' differences are 0)",
        )
    if test.equivalent:
        band, p = _num(test.sesoi), _p(test.p_equivalence_holm)
        return (
            f"±{band} 이내에서 동등 (동등성 검정 TOST, Holm 보정 {p})",
            f"equivalent within ±{band} (two one-sided tests, Holm-adjusted {p})",
        )
    return (
        f"결론 없음: 이 테스트 세트는 {mde} 이상의 차이를 검출할 수 있습니다 (Holm 보정 {_p(test.p_holm)})",
        f"inconclusive: this test set could detect differences of {mde} or more (Holm-adjusted {_p(test.p_holm)})",
    )


def _difference(test: Test) -> str:
    return f"{_signed(test.diff)} [{_signed(test.lo)}, {_signed(test.hi)}]{_relative(test)}"


def _sentence(korean: str, english: str) -> str:
    return f'{korean} <span class="kdq-en" lang="en">({english})</span>'


def _split_item(found: SplitFinding, metric: str) -> str:
    best = found.best
    interval = f"{escape(metric)} {_num(best.value)} [{_num(best.lo)}, {_num(best.hi)}]"
    split = escape(found.split)
    parts = [
        _sentence(
            f"<b>{split}</b>: 최고 모델은 {_run(best, best=True)}, {interval}.",
            f"best run on {split}: {escape(best.label)}, {interval}",
        )
    ]
    for test in found.tests:
        ko, en = AGAINST["next_ids" if test.against == "ids" and found.best_role == IDS else test.against]
        verdict = _verdict(test)
        parts.append(
            _sentence(
                f"{ko} {_run(test.other)} ({_num(test.other.value)}) 대비 {_difference(test)}: {verdict[0]}.",
                f"against {en}, {escape(test.other.label)}: {_difference(test)}, {verdict[1]}",
            )
        )
    return "<li>" + " ".join(parts) + "</li>"


def _new_users(test: Test, ceiling: Score | None, metric: str) -> str:
    verdict = _verdict(test)
    run, other = test.run, test.other
    share_ko = share_en = ""
    if ceiling is not None and ceiling.value > other.value:
        share = (run.value - other.value) / (ceiling.value - other.value)
        share_ko = f" 오라클 상한 {_num(ceiling.value)}까지의 격차 중 {share:.0%}를 회복합니다."
        share_en = f"; it recovers {share:.0%} of the gap to the oracle ceiling ({_num(ceiling.value)})"
    return _sentence(
        f"<b>신규 사용자</b> ({escape(run.split)}, 시드당 {run.n_users}명): 프로필 특성을 쓰는 최고 모델 {_run(run)}의 "
        f"{escape(metric)}은 {_num(run.value)}로, 프로필 특성 없는 최고 모델 {_run(other)} ({_num(other.value)}) "
        f"대비 {_difference(test)}: {verdict[0]}.{share_ko}",
        f"new users ({run.n_users} per seed): the best run with profile features, {escape(run.label)}, reaches "
        f"{_num(run.value)}, {_difference(test)} against the best run without them, {escape(other.label)}: "
        f"{verdict[1]}{share_en}",
    )


def _returning_users(test: Test, metric: str) -> str:
    verdict = _verdict(test)
    run, other = test.run, test.other
    cost_ko = "비용" if test.diff < 0 else "비용 없음"
    cost_en = "a cost" if test.diff < 0 else "no cost"
    return _sentence(
        f"<b>기존 사용자</b> ({escape(run.split)}, 시드당 {run.n_users}명): 같은 모델 {_run(run)}은 {escape(metric)} "
        f"{_num(run.value)}로, 프로필 특성 없는 최고 모델 {_run(other)} ({_num(other.value)}) 대비 "
        f"{_difference(test)}: {cost_ko}, {verdict[0]}.",
        f"returning users ({run.n_users} per seed): the same run scores {_num(run.value)}, {_difference(test)} "
        f"against the best run without profile features, {escape(other.label)}: {cost_en}, {verdict[1]}",
    )


def _caveat(caveat: Caveat, findings: Findings) -> str:
    split = escape(caveat.split)
    if caveat.kind == "ties":
        listed = ", ".join(f"{escape(label)} {count}" for label, count in caveat.runs)
        return _sentence(
            f"{split}: 상위 {findings.k} 경계에서 점수가 같은 사용자가 있는 실행 (시드 합계): {listed}.",
            f"ties at the top-{findings.k} cut-off, users summed over seeds",
        )
    if caveat.kind == "single_seed":
        return _sentence(
            "시드가 하나뿐입니다: 구간은 사용자 표본의 변동만 반영합니다.",
            "a single seed: intervals reflect the sampling of users only, not of splits or model seeds",
        )
    if caveat.kind == "disagree":
        listed = ", ".join(escape(label) for label, _ in caveat.runs)
        return _sentence(
            f"Wilcoxon 검정과 평균 차이의 부트스트랩 구간이 엇갈리는 비교: {listed}. 순위 검정은 차이의 분포를, "
            "구간은 평균을 봅니다.",
            "comparisons where the Wilcoxon test and the bootstrap interval of the mean difference disagree: the rank "
            "test looks at the distribution of differences, the interval at their mean",
        )
    if caveat.kind == "failed":
        listed = ", ".join(escape(label) for label, _ in caveat.runs)
        return _sentence(f"실패한 실행: {listed}.", "failed runs, missing from every table")
    found = next(s for s in findings.splits if s.split == caveat.split)
    assert found.runner_up is not None
    second, best = found.runner_up, found.best
    return _sentence(
        f"{split}: 2위 {_run(second)}의 구간 [{_num(second.lo)}, {_num(second.hi)}]이 최고 모델의 구간 "
        f"[{_num(best.lo)}, {_num(best.hi)}]과 겹칩니다.",
        "the runner-up's interval overlaps the best run's; the paired tests above are the sharper comparison",
    )


def findings_html(findings: Findings) -> str:
    """The Findings section (``<section id="findings">``), ready for ``IPython.display.HTML``."""
    metric = findings.metric
    answer = []
    if findings.new_users is not None:
        answer.append(f"<li>{_new_users(findings.new_users, findings.new_ceiling, metric)}</li>")
    if findings.returning_users is not None:
        answer.append(f"<li>{_returning_users(findings.returning_users, metric)}</li>")
    caveats = [f"<li>{_caveat(c, findings)}</li>" for c in findings.caveats] or [
        f"<li>{_sentence('없음.', 'none')}</li>"
    ]
    n_tests = len(findings.tests)
    method = _sentence(
        f"검정: 사용자 단위 쌍체 Wilcoxon 부호순위 검정 (사용자별 차이를 모든 시드에 걸쳐 평균), 이 절의 {n_tests}개 "
        f"검정에 Holm 보정, 유의수준 {ALPHA}. 괄호 안 구간은 95% 부트스트랩 구간입니다. 최소 검출 효과는 "
        f"검정력 80%, 유의수준 {ALPHA}/{max(n_tests, 1)}에서 평균 차이를 검출하는 크기 (정규 근사)입니다.",
        f"paired Wilcoxon signed-rank tests over users, each user's difference averaged over all seeds; Holm's "
        f"correction over the {n_tests} tests of this section, α = {ALPHA}; brackets are 95% bootstrap intervals; "
        f"the minimum detectable effect is the mean difference detected with 80% power at the family's strictest "
        f"level α/{max(n_tests, 1)} (normal approximation)",
    )
    sesoi = findings.sesoi
    if sesoi is not None:
        method += " " + _sentence(
            f"관심 최소 효과 {_num(sesoi)}: 유의하지 않은 비교는 ±{_num(sesoi)} 동등성 검정 (TOST)을 받습니다.",
            f"smallest effect of interest {_num(sesoi)}: a comparison that is not significant is tested for "
            f"equivalence within ±{_num(sesoi)} (two one-sided tests, Holm over the same family)",
        )
    parts = [
        '<section id="findings" class="kdq-findings">',
        '<h2>발견 <span lang="en">(Findings)</span></h2>',
        f'<p class="kdq-question"><b>질문 (question)</b>: {escape(findings.question)}</p>',
    ]
    if answer:
        parts += ['<h3>답 <span lang="en">(answer)</span></h3>', "<ul>", *answer, "</ul>"]
    if findings.for_whom:  # each sentence is Korean with its English gloss in parentheses, escaped whole
        parts += ['<h3>누구에게 맞는가 <span lang="en">(for whom)</span></h3>', "<ul>"]
        parts += [f"<li>{escape(sentence)}</li>" for sentence in findings.for_whom] + ["</ul>"]
    parts += [
        '<h3>분할별 최고 모델 <span lang="en">(best run per split)</span></h3>',
        "<ul>",
        *(_split_item(s, metric) for s in findings.splits),
        "</ul>",
        '<h3>주의 <span lang="en">(caveats)</span></h3>',
        "<ul>",
        *caveats,
        "</ul>",
        f'<p class="kdq-method">{method}</p>',
        "</section>",
    ]
    if not findings.splits:
        parts.insert(3, f"<p>{_sentence('성공한 실행이 없습니다.', 'no run succeeded')}</p>")
    return "\n".join(parts)
