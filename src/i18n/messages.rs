//! The catalogue: every user-facing sentence in English and Chinese. Keep a section per part
//! of the program; a message's name says what it is about.

use super::catalogue;

catalogue! {
    // --- run: header, steps, end of run (src/run) ---
    RunResultsIn { en: "Results in {dir}", zh: "结果保存在 {dir}" }
    /// `--repeat`: which repetition a step is, after its label.
    RepeatRun { en: "run {k}/{n}", zh: "第 {k}/{n} 轮" }
    /// `--repeat`: the heading of the per-point lines after the steps.
    RepeatHeading { en: "Repeats: every step ran {runs} times; mean ± half-width of the 95% confidence interval (Student t):", zh: "重复测试：每一步运行 {runs} 次；均值 ± 95% 置信区间半宽（Student t）：" }
    /// `--repeat`: one load point over its repetitions; `figures` are RepeatRate/RepeatLatency joined by ", ".
    RepeatPoint { en: "[{test}] {load} ({runs} runs): {figures}", zh: "[{test}] {load}（{runs} 次）：{figures}" }
    RepeatRate { en: "{mean} ± {half} {unit}", zh: "{mean} ± {half} {unit}" }
    RepeatLatency { en: "{name} {mean} ± {half} ms", zh: "{name} {mean} ± {half} ms" }
    RepeatWithStress { en: "--repeat is for step sweeps: a stress run (-d/--duration) is one long load, reported per interval; drop --repeat", zh: "--repeat 只用于分步测试：压力测试（-d/--duration）是一段连续负载，按时间段报告；请去掉 --repeat" }
    RepeatWithCapacity { en: "--repeat is for step sweeps: a capacity search chooses its own probes (and measures its answer twice); drop --repeat", zh: "--repeat 只用于分步测试：容量搜索自行选择探测点（并对结果复测一次）；请去掉 --repeat" }

    // --- recommendations and sentences (src/metrics) ---
    NothingSucceeded { en: "[{test}] No request succeeded, so there is nothing to recommend.", zh: "[{test}] 没有一个请求成功，无法给出建议。" }

    // --- report.html and compare.html (src/report/html) ---
    HtmlTitle { en: "llm-bench report", zh: "llm-bench 测试报告" }

    // --- llm-bench compare (src/compare) ---
    CompareWithinNoise { en: "within noise", zh: "在噪声范围内" }
    CompareBetter { en: "better", zh: "更好" }
    CompareWorse { en: "worse", zh: "更差" }
    CompareUnknown { en: "unknown", zh: "未知" }
    CompareMethod { en: "Each figure's {confidence}% confidence interval of the change comes from a seeded percentile bootstrap over the requests of each run ({resamples} resamples: requests drawn with replacement for means and throughputs, the resampled rank drawn directly for percentiles, chunk gaps counted as one value per request); a change is within noise when the interval contains 0.", zh: "每个指标变化量的 {confidence}% 置信区间来自对每次运行的请求做的固定种子百分位 bootstrap（{resamples} 次重抽样：均值和吞吐量按请求有放回抽样，百分位数直接抽取重抽样后的秩，分块间隔按每个请求一个值计）；区间包含 0 时，变化在噪声范围内。" }
    CompareBadFailIf { en: "bad --fail-if '{expr}': {why}; a good one: --fail-if '{example}'", zh: "--fail-if '{expr}' 有误：{why}；正确的例子：--fail-if '{example}'" }
    CompareFailIfNoFigure { en: "no figure name at the start (FIGURE OP VALUE)", zh: "开头没有指标名（格式为 指标 运算符 数值）" }
    CompareFailIfUnknownFigure { en: "unknown figure '{figure}' (known: {known})", zh: "未知指标 '{figure}'（可用的指标：{known}）" }
    CompareFailIfNoOp { en: "the operator must be one of < <= > >=", zh: "运算符必须是 < <= > >= 之一" }
    CompareFailIfBadValue { en: "'{value}' is not a number or a percentage such as -5% (a change against the first run) or 500 (a value)", zh: "'{value}' 不是数字或百分比，应写成 -5%（相对第一次运行的变化）或 500（数值本身）" }
    CompareFailIfNothing { en: "--fail-if '{expr}': no compared step or run has {figure}, so nothing was checked.", zh: "--fail-if '{expr}'：没有任何参与比较的步骤或运行包含 {figure}，因此未做检查。" }
    CompareTooManyLabels { en: "{labels} --label given for {runs} runs: give at most one per run, in the order of the runs", zh: "为 {runs} 次运行给了 {labels} 个 --label：每次运行最多一个，顺序与运行一致" }
    CompareUnreadable { en: "cannot read the run {path}: {why}", zh: "无法读取运行结果 {path}：{why}" }
    CompareNoSummary { en: "it has no summary.json (give a results folder of llm-bench, or rebuild the summary with `llm-bench report`)", zh: "其中没有 summary.json（请给出 llm-bench 的结果目录，或用 `llm-bench report` 重建摘要）" }
    CompareNoSuchPath { en: "no such file or folder", zh: "文件或目录不存在" }
    CompareBadLines { en: "{path}: {count} unreadable lines skipped", zh: "{path}：跳过了 {count} 行无法解析的记录" }
    CompareRuns { en: "Comparing {count} runs against the first, {base}:", zh: "以第一次运行 {base} 为基准，比较 {count} 次运行：" }
    CompareRunLine { en: "{label}: {path} ({steps} steps, model {model}, {records})", zh: "{label}：{path}（{steps} 个步骤，模型 {model}，{records}）" }
    CompareWithRecords { en: "with requests.jsonl", zh: "含 requests.jsonl" }
    CompareWithoutRecords { en: "no requests.jsonl: verdicts unknown", zh: "没有 requests.jsonl：无法判断" }
    CompareStepName { en: "{test} at {load}", zh: "{test} 测试，{load}" }
    CompareStepHeader { en: "{step} (measured requests: {requests})", zh: "{step}（计入的请求：{requests}）" }
    CompareColumnFigure { en: "figure", zh: "指标" }
    CompareColumnVs { en: "{label} vs {base}", zh: "{label} 对比 {base}" }
    CompareRunFigures { en: "Whole run (capacity answer, knee):", zh: "整次运行（容量结论、拐点）：" }
    CompareUnmatchedHeader { en: "Steps not in every run (not compared):", zh: "并非每次运行都有的步骤（未比较）：" }
    CompareUnmatchedLine { en: "run {label}: {step}", zh: "运行 {label}：{step}" }
    CompareNothingMatched { en: "No step is in every run: nothing to compare step by step.", zh: "没有每次运行都有的步骤：无法逐步比较。" }
    CompareBreachChange { en: "{where}: {figure} {change} (CI {low} … {high}) crosses {threshold}", zh: "{where}：{figure} {change}（置信区间 {low} … {high}）越过阈值 {threshold}" }
    CompareBreachUnknown { en: "{where}: {figure} {change} (noise unknown) crosses {threshold}", zh: "{where}：{figure} {change}（噪声未知）越过阈值 {threshold}" }
    CompareBreachAbsolute { en: "{where}: {figure} {value} crosses {threshold}", zh: "{where}：{figure} {value} 越过阈值 {threshold}" }
    CompareBreaches { en: "{count} --fail-if thresholds crossed:", zh: "越过了 {count} 个 --fail-if 阈值：" }
    CompareNoBreach { en: "No --fail-if threshold crossed (changes within noise do not count).", zh: "没有越过任何 --fail-if 阈值（噪声范围内的变化不计）。" }
    CompareWritten { en: "Comparison written to {json} and {html}", zh: "比较结果已写入 {json} 和 {html}" }
    CompareCannotWrite { en: "cannot write {path}: {why}", zh: "无法写入 {path}：{why}" }
    CompareHtmlTitle { en: "llm-bench comparison", zh: "llm-bench 对比报告" }

    // --- live view (src/report/live) ---
    LiveStep { en: "step {n}/{total}", zh: "第 {n}/{total} 步" }
    /// A capacity search: the number of probes is not known ahead.
    LiveProbe { en: "probe {n}", zh: "第 {n} 次探测" }
    LiveStress { en: "stress run", zh: "压力测试" }
    /// `done` is "120" or "120/200".
    LiveRequests { en: "{done} done · {in_flight} in flight · {failed} failed", zh: "已完成 {done} · 进行中 {in_flight} · 失败 {failed}" }
    LiveTtft { en: "TTFT p99 {ms} ms", zh: "首 token 延迟 p99 {ms} ms" }
    LiveTtftNone { en: "TTFT p99 –", zh: "首 token 延迟 p99 –" }
    LiveTokens { en: "{tps} tok/s", zh: "{tps} tok/s" }
    LiveElapsed { en: "elapsed {elapsed}", zh: "已用 {elapsed}" }
    LiveLeft { en: "about {left} left", zh: "预计剩余 {left}" }
    LiveLeftUnknown { en: "time left unknown", zh: "剩余时间未知" }
}
