"""Alert summary/description texts in the rules file's locale (`en` or `zh-CN`).

Chinese texts use simplified characters throughout (zh-CN is the mainland locale), so the
contract's 銷售下滑預警 is written 销售下滑预警 here.

The name of the KPI an alert watches, `[[kpi]]`, is its title in the KPI catalogue (`noun`).

Texts are Prometheus (Go) templates: `{{ $value | humanize }}` (or `printf`) and `{{ $labels.x }}` are filled
in by Prometheus when the alert fires. `[[name]]` placeholders are filled in at generation time
with thresholds and words from the rules file (see `render`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from kpi_core.catalogue import BY_NAME

Locale = Literal["en", "zh-CN"]

PERIOD_WORDS: dict[str, dict[str, str]] = {
    "en": {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"},
    "zh-CN": {"day": "日", "week": "周", "month": "月", "quarter": "季度", "year": "年"},
}
PERIOD_WORDS_PLURAL: dict[str, dict[str, str]] = {
    "en": {"day": "days", "week": "weeks", "month": "months", "quarter": "quarters", "year": "years"},
    "zh-CN": {"day": "日", "week": "周", "month": "月", "quarter": "季度", "year": "年"},
}
SCOPE_WORDS: dict[str, dict[str, str]] = {
    "en": {"rep": "Rep", "team": "Team", "region": "Region", "company": "The company"},
    "zh-CN": {"rep": "销售代表", "team": "团队", "region": "区域", "company": "公司"},
}
#: The members whose targets add up to a scope's (contract section 3.3).
MEMBER_WORDS: dict[str, dict[str, str]] = {
    "en": {"team": "reps", "region": "teams", "company": "regions"},
    "zh-CN": {"team": "销售代表", "region": "团队", "company": "区域"},
}

# The alert's value as the texts show it: [[v]] humanized (10k), [[v1]] / [[v2]] with 1 / 2 decimals.
VALUE_FORMATS: dict[str, str] = {
    "v": "{{ $value | humanize }}",
    "v1": '{{ $value | printf "%.1f" }}',
    "v2": '{{ $value | printf "%.2f" }}',
}

# alertname -> (summary, description)
ALERT_TEXTS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "SalesRevenueDecline": (
            "[[Scope]] [[who]]: [[kpi]] down [[v1]]% on the same point of last [[period]]",
            "[[Scope]] [[who]] has won [[current]] [[currency]] this [[period]] to date against "
            "[[previous]] [[currency]] at the same point of the previous [[period]]: "
            "[[v1]]% lower (alert threshold [[threshold]]%, "
            "only when the previous figure is at least [[min]] [[currency]]).",
        ),
        "SalesDownTrend": (
            "[[Scope]] [[who]]: [[kpi]] fell [[n]] [[period]]s in a row",
            "[[Scope]] [[who]] won less revenue than in the [[period]] before in each of the last "
            "[[n]] completed [[period]]s; last [[period]]: [[v]] [[currency]].",
        ),
        "SalesVisitsDrop": (
            "[[Scope]] [[who]]: [[kpi]] down [[v1]]% on last [[period]]",
            "[[Scope]] [[who]] made [[current]] visits (SVT) this [[period]] to date against "
            "[[previous]] at the same point of the previous [[period]]: [[v1]]% fewer "
            "(threshold [[threshold]]%, at least [[min]] visits before).",
        ),
        "SalesTargetPaceBehind": (
            "[[Scope]] [[who]]: on pace for [[v1]]% of the [[period]] target",
            "At the current pace [[Scope]] [[who]] will reach [[v1]]% of its "
            "[[period]] target (alert below [[threshold]]% once [[elapsed]]% of the [[period]] has "
            "elapsed; elapsed now [[elapsed_now]]%).",
        ),
        "SalesQuoteToCloseLow": (
            "[[Scope]] [[who]]: [[kpi]] [[v1]]% this [[period]]",
            "Only [[v1]]% of the [[quotes]] quotes sent by [[Scope]] [[who]] this "
            "[[period]] to date closed as won deals (threshold [[threshold]]%, at least [[min]] quotes).",
        ),
        "SalesPipelineCoverageLow": (
            "[[Scope]] [[who]]: [[kpi]] [[v2]]x the remaining [[period]] target",
            "The weighted open pipeline of [[Scope]] [[who]] is [[v2]] times the "
            "revenue still needed to meet this [[period]]'s target (threshold [[threshold]]x).",
        ),
        "SalesChurnRising": (
            "[[Scope]] [[who]]: [[kpi]] [[v1]]% this [[period]]",
            "[[v1]]% of the [[active]] customers of [[Scope]] [[who]] active at the start of this "
            "[[period]] have churned since (no purchase for [[days]] days; threshold [[threshold]]%, "
            "only with at least [[min]] customers at the start).",
        ),
        "SalesMarginDrop": (
            "[[Scope]] [[who]]: [[kpi]] down [[v1]] points on the same point of last [[period]]",
            "[[Scope]] [[who]] has a [[kpi]] of [[current]]% this [[period]] to date against "
            "[[previous]]% at the same point of the previous [[period]]: [[v1]] points lower "
            "(threshold [[threshold]] points, only with at least [[min]] [[currency]] of costed "
            "revenue in both).",
        ),
        "SalesSatisfactionLow.csat": (
            "[[Scope]] [[who]]: [[kpi]] [[v1]]% this [[period]]",
            "Only [[v1]]% of the [[responses]] CSAT responses about [[Scope]] [[who]] this "
            "[[period]] to date scored 4 or 5 (threshold [[threshold]]%, at least [[min]] responses).",
        ),
        "SalesSatisfactionLow.nps": (
            "[[Scope]] [[who]]: [[kpi]] [[v1]] this [[period]]",
            "The NPS of [[Scope]] [[who]] is [[v1]] this [[period]] to date over [[responses]] "
            "responses (% promoters minus % detractors; threshold [[threshold]], at least [[min]] "
            "responses).",
        ),
        "SalesTargetAllocationGap.allocation": (
            "[[Who]]: [[period]] [[metric]] target [[v]] off its [[members]]' targets",
            "[[Who]] has a [[metric]] target of [[target]] for this [[period]]; the targets of its "
            "[[members]] add up to [[members_total]]: a gap of [[v]] (tolerance [[tolerance]]% of "
            "the target). Allocate the difference or correct the target.",
        ),
        "SalesTargetAllocationGap.split": (
            "[[Who]]: [[period]] [[metric]] target [[v]] off the sum of its [[parts]]",
            "[[Who]] has a [[metric]] target of [[target]] for this [[period]]; the targets of its "
            "[[parts]] differ from it by [[v]] (tolerance [[tolerance]]% of the target).",
        ),
        "KpiWorkerDown": (
            "KPI worker {{ $labels.instance }} is down",
            "Prometheus could not scrape the kpi-worker at {{ $labels.instance }} for [[for]]. "
            "Sales KPIs of its partitions are missing and sales alerts are held back until it is back.",
        ),
        "KpiConsumerLagHigh": (
            "KPI workers are [[v]] messages behind on {{ $labels.topic }}",
            "The kpi-worker consumer group is [[v]] messages behind the end of "
            "topic {{ $labels.topic }} (threshold [[threshold]]): KPIs lag reality.",
        ),
        "KpiDeadLetterRising": (
            "[[v2]] events/s rejected ({{ $labels.reason }})",
            "Events are going to the dead-letter topic at [[v2]]/s with reason "
            "{{ $labels.reason }} (threshold [[threshold]]/s). Check the CRM export.",
        ),
        "KpiNoEvents": (
            "No CRM events processed for [[window]]",
            "The kpi-workers are up but have processed no CRM event in the last [[window]]: "
            "is the CRM export or the Kafka topic stalled?",
        ),
        "KpiStateIncomplete": (
            "KPI state of partition {{ $labels.partition }} may miss events",
            "Redis lost the state of partition {{ $labels.partition }} and the input topics no "
            "longer hold every event it needs: KPIs of the retained periods up to the oldest kept "
            "input may be too low. /readyz of the owning worker lists the periods; they stay "
            "flagged until they leave retention.",
        ),
    },
    "zh-CN": {
        "SalesRevenueDecline": (
            "销售下滑预警：[[Scope]] [[who]] [[kpi]]较上[[period]]同期下降 [[v1]]%",
            "[[Scope]] [[who]] 本[[period]]至今成交收入 [[current]] [[currency]]，上[[period]]同期为 "
            "[[previous]] [[currency]]，下降 [[v1]]%"
            "（预警阈值 [[threshold]]%，仅当上[[period]]同期收入不少于 [[min]] [[currency]] 时预警）。",
        ),
        "SalesDownTrend": (
            "[[Scope]] [[who]] [[kpi]]连续 [[n]] 个[[period]]下降",
            "[[Scope]] [[who]] 最近 [[n]] 个已结束的[[period]]收入均低于前一个[[period]]；"
            "上[[period]]收入 [[v]] [[currency]]。",
        ),
        "SalesVisitsDrop": (
            "[[Scope]] [[who]] [[kpi]]较上[[period]]同期下降 [[v1]]%",
            "[[Scope]] [[who]] 本[[period]]至今完成拜访（SVT）[[current]] 次，上[[period]]同期 "
            "[[previous]] 次，下降 [[v1]]%（阈值 [[threshold]]%，上期至少 [[min]] 次）。",
        ),
        "SalesTargetPaceBehind": (
            "[[Scope]] [[who]] 按当前进度预计完成本[[period]]目标的 [[v1]]%",
            "按当前进度，[[Scope]] [[who]] 预计完成本[[period]]目标的 [[v1]]%"
            "（本[[period]]已过 [[elapsed]]% 后低于 [[threshold]]% 即预警；当前已过 [[elapsed_now]]%）。",
        ),
        "SalesQuoteToCloseLow": (
            "[[Scope]] [[who]] 本[[period]][[kpi]] [[v1]]%",
            "[[Scope]] [[who]] 本[[period]]至今发出 [[quotes]] 份报价，仅 [[v1]]% 成交"
            "（阈值 [[threshold]]%，至少 [[min]] 份报价时预警）。",
        ),
        "SalesPipelineCoverageLow": (
            "[[Scope]] [[who]] [[kpi]]仅 [[v2]] 倍",
            "[[Scope]] [[who]] 的加权在途商机仅为完成本[[period]]目标尚需收入的 [[v2]] 倍"
            "（阈值 [[threshold]] 倍）。",
        ),
        "SalesChurnRising": (
            "[[Scope]] [[who]] 本[[period]][[kpi]] [[v1]]%",
            "[[Scope]] [[who]] 本[[period]]初的 [[active]] 个活跃客户中已有 [[v1]]% 流失"
            "（[[days]] 天未购买即为流失；阈值 [[threshold]]%，期初至少 [[min]] 个活跃客户时预警）。",
        ),
        "SalesMarginDrop": (
            "[[Scope]] [[who]] [[kpi]]较上[[period]]同期下降 [[v1]] 个百分点",
            "[[Scope]] [[who]] 本[[period]]至今[[kpi]] [[current]]%，上[[period]]同期 [[previous]]%，"
            "下降 [[v1]] 个百分点（阈值 [[threshold]] 个百分点，仅当两期带成本收入均不少于 "
            "[[min]] [[currency]] 时预警）。",
        ),
        "SalesSatisfactionLow.csat": (
            "[[Scope]] [[who]] 本[[period]][[kpi]]仅 [[v1]]%",
            "[[Scope]] [[who]] 本[[period]]至今 [[responses]] 份 CSAT 答卷中仅 [[v1]]% 为满意（4-5 分）"
            "（阈值 [[threshold]]%，至少 [[min]] 份答卷时预警）。",
        ),
        "SalesSatisfactionLow.nps": (
            "[[Scope]] [[who]] 本[[period]][[kpi]]仅 [[v1]]",
            "[[Scope]] [[who]] 本[[period]]至今[[kpi]]为 [[v1]]（[[responses]] 份答卷，推荐者占比减"
            "贬损者占比；阈值 [[threshold]]，至少 [[min]] 份答卷时预警）。",
        ),
        "SalesTargetAllocationGap.allocation": (
            "[[Who]] [[metric]]目标（[[period]]）与其[[members]]目标之和相差 [[v]]",
            "[[Who]] 本[[period]][[metric]]目标为 [[target]]，其[[members]]目标之和为 "
            "[[members_total]]，相差 [[v]]（容差为目标的 [[tolerance]]%）。请分配差额或修正目标。",
        ),
        "SalesTargetAllocationGap.split": (
            "[[Who]] [[metric]]目标（[[period]]）与各[[parts]]目标之和相差 [[v]]",
            "[[Who]] 本[[period]][[metric]]目标为 [[target]]，与其各[[parts]]目标之和相差 [[v]]"
            "（容差为目标的 [[tolerance]]%）。",
        ),
        "KpiWorkerDown": (
            "KPI 处理节点 {{ $labels.instance }} 已停止",
            "Prometheus 已 [[for]] 无法抓取 kpi-worker {{ $labels.instance }}。"
            "其分区的销售指标缺失，恢复前销售预警暂停。",
        ),
        "KpiConsumerLagHigh": (
            "KPI 处理节点在 {{ $labels.topic }} 上积压 [[v]] 条消息",
            "kpi-worker 消费组落后主题 {{ $labels.topic }} 末尾 [[v]] 条消息"
            "（阈值 [[threshold]]），指标滞后于实际。",
        ),
        "KpiDeadLetterRising": (
            "每秒 [[v2]] 条事件被拒收（{{ $labels.reason }}）",
            "事件正以每秒 [[v2]] 条的速度进入死信主题，原因 {{ $labels.reason }}"
            "（阈值每秒 [[threshold]] 条）。请检查 CRM 导出。",
        ),
        "KpiNoEvents": (
            "[[window]] 内未处理任何 CRM 事件",
            "kpi-worker 运行中，但最近 [[window]] 内未处理任何 CRM 事件：CRM 导出或 Kafka 主题是否停滞？",
        ),
        "KpiStateIncomplete": (
            "分区 {{ $labels.partition }} 的 KPI 状态可能缺少事件",
            "Redis 丢失了分区 {{ $labels.partition }} 的状态，且输入主题已不再保留其所需的全部事件："
            "截至最早保留输入的各保留周期内，KPI 可能偏低。所属 worker 的 /readyz 列出受影响的周期；"
            "这些周期在超出保留期之前一直标记为不完整。",
        ),
    },
}


def noun(kpi_name: str, locale: str) -> str:
    """A KPI's catalogue title as running text: "quote-to-close", "sales visits (SVT)", "收入"."""
    title = BY_NAME[kpi_name].title.get(locale).removesuffix(" %").removesuffix(" %")
    if locale == "zh-CN" or title[1:2].isupper():  # keep acronyms ("SVT ...") as they are
        return title
    return title[:1].lower() + title[1:]


def render(locale: str, alertname: str, values: Mapping[str, str]) -> dict[str, str]:
    """The `summary` and `description` of `alertname` (`name.variant` for an alert with several
    rules), `[[name]]` placeholders filled in."""
    summary, description = ALERT_TEXTS[locale][alertname]
    values = {**VALUE_FORMATS, **values}

    def fill(text: str) -> str:
        for key, value in values.items():
            text = text.replace(f"[[{key}]]", value)
        if "[[" in text:
            raise KeyError(f"{alertname}: unfilled placeholder in {text!r}")
        return text

    return {"summary": fill(summary), "description": fill(description)}
