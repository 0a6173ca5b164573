"""The words of the HTML/PDF report that the KPI catalogue does not hold, in `en` and `zh-CN`."""

from __future__ import annotations

from kpi_core.catalogue import kpi

_TEXTS: dict[str, tuple[str, str]] = {
    "title": ("Sales KPI report", "销售 KPI 报表"),
    "digest_title": ("Sales KPI digest", "销售 KPI 摘要"),
    "source_file": ("Events: {source}", "事件文件：{source}"),
    "source_prometheus": ("Prometheus: {source}", "Prometheus：{source}"),
    "generated": ("Generated {when} ({zone})", "生成于 {when}（{zone}）"),
    "period_line": (
        "{period} periods, {scope}, amounts in {currency}",
        "{period}报表，{scope}，金额单位 {currency}",
    ),
    "summary": ("Summary", "概要"),
    "summary_of": ("{period} to date", "{period}至今"),
    "charts": ("Charts", "图表"),
    "figures": ("Figures of {period}", "{period}明细"),
    "rejected": ("Rejected input", "被拒收的输入"),
    "rejected_none": ("No input was rejected.", "没有被拒收的输入。"),
    "rejected_total": ("{total} events rejected", "共拒收 {total} 条事件"),
    "reason": ("Reason", "原因"),
    "count": ("Count", "数量"),
    "limits": ("What this report cannot show", "本报表未能展示的内容"),
    "alerts": ("Alerts", "预警"),
    "no_alert": ("none", "无"),
    "scope": ("Scope", "范围"),
    "name": ("Name", "名称"),
    "team": ("Team", "团队"),
    "company": ("Company", "公司"),
    "region": ("Region", "区域"),
    "rep": ("Rep", "销售代表"),
    "all": ("all", "全部"),
    "chart_revenue_target": ("Revenue and target by {who}", "各{who}收入与目标"),
    "chart_attainment": ("Target attainment by rep, {period}", "各销售代表目标达成率（{period}）"),
    "chart_funnel": ("Deal funnel, {period}", "商机漏斗（{period}）"),
    "chart_channel": ("Revenue by contact channel, {period}", "各接触渠道收入（{period}）"),
    "chart_visits": ("Sales visits (SVT) by {who}", "各{who}销售拜访次数（SVT）"),
    "chart_customers": ("Customer retention and churn", "客户保留率与流失率"),
    "chart_margin": ("Gross margin", "毛利"),
    "target_marker": ("target", "目标"),
    "full_target": ("100% of target", "100% 目标"),
    "no_chart": ("{chart}: no data in these periods.", "{chart}：所选期间没有数据。"),
    "no_margin": (
        "Gross margin: no won deal in these periods carried a cost.",
        "毛利：所选期间没有带成本的赢单。",
    ),
    "no_customers": (
        "Customer retention and churn: no customer was active in these periods.",
        "客户保留与流失：所选期间没有活跃客户。",
    ),
    "would_fire": ("condition met", "条件已满足"),
    "firing": ("firing", "触发"),
    "pending": ("pending", "待定"),
    "alert_note": (
        "Alerts: from the event file, an alert shows as “condition met” when its rule's threshold "
        "and guards hold for the current period now (Prometheus also waits the rule's `for:` time); "
        "visits drop needs the like-for-like visits, which only the live service (digest) has.",
        "预警：根据事件文件，当前期间满足预警规则阈值与保护条件即显示“条件已满足”"
        "（Prometheus 还需持续 `for:` 时长）；拜访量下降需要同期拜访数据，仅在线服务（摘要）提供。",
    ),
    "limit_history": (
        "History: {found} of the {asked} periods asked for. Periods before the previous one are "
        "the figures Prometheus recorded at the end of the period after them, as far back as its "
        "retention ({retention}) and the deployment's start allow; events that arrived later are "
        "counted in the file report only.",
        "历史：共请求 {asked} 个期间，获得 {found} 个。"
        "上一期之前的期间取自 Prometheus 在其后一期结束时记录的数值，"
        "可追溯的深度取决于其保留期（{retention}）和部署开始的时间；之后才到达的事件只计入文件报表。",
    ),
    "limit_rejected": (
        "Rejected input: the workers' counters since they started (kpi_events_rejected_total), "
        "not per period.",
        "被拒收的输入：各处理节点自启动以来的计数（kpi_events_rejected_total），不按期间统计。",
    ),
    "limit_file_only": (
        "Customer lifetime value (trailing months) and the target allocation and split gaps are "
        "in the file report only.",
        "客户终身价值（最近若干个月）以及目标分配与拆分差额仅见于文件报表。",
    ),
    "unknown_retention": ("not reported", "未报告"),
    "alert_note_digest": (
        "Alerts: as Prometheus evaluates them now (pending, then firing after the rule's `for:`).",
        "预警：Prometheus 当前的评估状态（待定，持续 `for:` 时长后触发）。",
    ),
}

SCOPE_KEYS = {"company": "company", "region": "region", "team": "team", "rep": "rep"}


def text(key: str, locale: str, **values: object) -> str:
    """A report word or sentence in `locale` (`en` or `zh-CN`), `{name}` placeholders filled."""
    en, zh = _TEXTS[key]
    chosen = zh if locale == "zh-CN" else en
    return chosen.format(**values) if values else chosen


def kpi_title(name: str, locale: str) -> str:
    """A KPI's short title from the catalogue, without the trailing " %" of a percentage."""
    return kpi(name).title.get(locale).removesuffix(" %")


def scope_word(scope: str, locale: str) -> str:
    return text(SCOPE_KEYS[scope], locale)


#: A period kind as an adjective ("Monthly report") and as a noun ("month").
PERIOD_ADJECTIVES: dict[str, tuple[str, str]] = {
    "day": ("Daily", "日度"),
    "week": ("Weekly", "周度"),
    "month": ("Monthly", "月度"),
    "quarter": ("Quarterly", "季度"),
    "year": ("Yearly", "年度"),
}
#: Contact channels (kpi_rules.vocabulary.Channel); an unknown one shows as it is.
CHANNELS: dict[str, tuple[str, str]] = {
    "phone": ("phone", "电话"),
    "email": ("email", "邮件"),
    "visit": ("visit", "拜访"),
    "web": ("web", "网站"),
    "referral": ("referral", "推荐"),
    "event": ("event", "活动"),
    "other": ("other", "其他"),
}
#: Rejection reasons (kpi_rules.vocabulary.Reason, and the CSV import's); others show as they are.
REASONS: dict[str, tuple[str, str]] = {
    "invalid_json": ("not valid JSON", "不是有效的 JSON"),
    "schema": ("does not match the event schema", "不符合事件模式"),
    "unknown_type": ("unknown event type", "未知事件类型"),
    "naive_timestamp": ("time stamp without a UTC offset", "时间戳缺少 UTC 偏移"),
    "negative_amount": ("negative amount", "金额为负"),
    "currency_mismatch": ("currency without a rate", "币种没有汇率"),
    "too_late": ("older than the periods kept", "早于保留期间"),
    "future": ("in the future", "时间在未来"),
    "too_large": ("event too large", "事件过大"),
}


def _pick(pair: tuple[str, str], locale: str) -> str:
    return pair[1] if locale == "zh-CN" else pair[0]


def period_adjective(kind: str, locale: str) -> str:
    return _pick(PERIOD_ADJECTIVES[kind], locale)


def channel_name(channel: str, locale: str) -> str:
    return _pick(CHANNELS[channel], locale) if channel in CHANNELS else channel


def reason_text(reason: str, locale: str) -> str:
    return _pick(REASONS[reason], locale) if reason in REASONS else reason
