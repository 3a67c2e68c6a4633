//! The catalogue: every user-facing sentence in English and Chinese. Keep a section per part
//! of the program; a message's name says what it is about.

use super::catalogue;

catalogue! {
    // --- run: header, steps, end of run (src/run) ---
    RunResultsIn { en: "Results in {dir}", zh: "结果保存在 {dir}" }

    // --- recommendations and sentences (src/metrics) ---
    NothingSucceeded { en: "[{test}] No request succeeded, so there is nothing to recommend.", zh: "[{test}] 没有一个请求成功，无法给出建议。" }

    // --- report.html and compare.html (src/report/html) ---
    HtmlTitle { en: "llm-bench report", zh: "llm-bench 测试报告" }
    HtmlSubtitle { en: "Model {model} · status {status}", zh: "模型 {model} · 状态 {status}" }
    HtmlFooter { en: "Written by llm-bench {version}. Every figure comes from summary.json in this folder; hover a point to read its value.", zh: "由 llm-bench {version} 生成。所有数据都来自本目录下的 summary.json；将鼠标悬停在数据点上可查看数值。" }
    HtmlSecRun { en: "What was run", zh: "测试内容" }
    HtmlSecAnswers { en: "Answers", zh: "结论" }
    HtmlSecCharts { en: "Charts", zh: "图表" }
    HtmlSecTables { en: "Tables", zh: "数据表" }
    HtmlSecErrors { en: "Errors", zh: "错误" }
    HtmlServer { en: "Server", zh: "服务器" }
    HtmlModel { en: "Model", zh: "模型" }
    HtmlTests { en: "Tests", zh: "测试项" }
    HtmlWorkload { en: "Workload", zh: "负载内容" }
    HtmlLoadModel { en: "Load model", zh: "负载模式" }
    HtmlTool { en: "Tool", zh: "工具" }
    HtmlDate { en: "Date", zh: "日期" }
    HtmlClientMachine { en: "Client machine", zh: "客户端机器" }
    HtmlStatus { en: "Status", zh: "状态" }
    HtmlClientMachineValue { en: "{host}, {os}, {cpus} CPUs, {memory} GiB memory", zh: "{host}，{os}，{cpus} 个 CPU，内存 {memory} GiB" }
    HtmlWorkloadSynthetic { en: "synthetic prompts of {chars} characters, up to {max} output tokens", zh: "合成提示词，每条 {chars} 个字符，最多输出 {max} 个 token" }
    HtmlWorkloadDataset { en: "dataset {dataset}", zh: "数据集 {dataset}" }
    HtmlArrival { en: "arrivals: {arrival}", zh: "到达方式：{arrival}" }
    HtmlLoadConcurrency { en: "concurrency {n}", zh: "并发 {n}" }
    HtmlLoadRate { en: "{rate} req/s", zh: "{rate} 请求/秒" }
    HtmlStepName { en: "{test} at {load}", zh: "{test} 测试，{load}" }
    HtmlRecommendations { en: "Recommendations", zh: "建议" }
    HtmlCapacity { en: "Capacity", zh: "容量" }
    HtmlSloTitle { en: "SLO attainment", zh: "SLO 达成率" }
    HtmlSloLine { en: "[{test}] SLO {slo}: {pct}% of requests met it; steps passing: {pass}; steps failing: {fail}.", zh: "[{test}] SLO {slo}：{pct}% 的请求满足；通过的步：{pass}；未通过的步：{fail}。" }
    HtmlClientBoundTitle { en: "The client was the bottleneck", zh: "瓶颈在客户端" }
    HtmlClientBoundLine { en: "{step}: llm-bench itself limited this step, so its figures describe the client, not the server. {reasons}", zh: "{step}：这一步受限于 llm-bench 自身，数据反映的是客户端而不是服务器。{reasons}" }
    HtmlSaturationTitle { en: "Saturation", zh: "饱和" }
    HtmlSaturatedLine { en: "{step}: the server saturated; requests piled up until the backlog limit ({limit}) ended the step.", zh: "{step}：服务器已饱和，请求堆积到积压上限（{limit}）后该步结束。" }
    HtmlLengthsTitle { en: "Prompt and output lengths (ISL/OSL)", zh: "输入与输出长度（ISL/OSL）" }
    HtmlNotesTitle { en: "Notes", zh: "备注" }
    HtmlRepeatsNote { en: "Error bars: 95% confidence interval over {runs} repeats of each step.", zh: "误差线：每一步重复 {runs} 次得到的 95% 置信区间。" }
    HtmlNoCharts { en: "No step measured anything to draw.", zh: "没有可绘制的测量数据。" }
    HtmlChartThroughput { en: "Total throughput vs load", zh: "总吞吐量与负载" }
    HtmlChartPerConn { en: "Speed per connection vs load", zh: "单连接速度与负载" }
    HtmlChartLatency { en: "{metric} p50 / p90 / p99 vs load", zh: "{metric} p50 / p90 / p99 与负载" }
    HtmlChartCdf { en: "{metric} distribution of {test} (first, knee and last step)", zh: "{test} 的 {metric} 分布（首步、拐点与末步）" }
    HtmlChartThroughputPrompt { en: "Total throughput vs load: prompt tokens", zh: "总吞吐量与负载：输入 token" }
    HtmlChartThroughputOutput { en: "Total throughput vs load: output tokens", zh: "总吞吐量与负载：输出 token" }
    HtmlChartTtftP99 { en: "TTFT p99 vs load", zh: "TTFT p99 与负载" }
    HtmlChartE2eP99 { en: "E2E p99 vs load", zh: "E2E p99 与负载" }
    HtmlChartStressThroughput { en: "Throughput over time", zh: "吞吐量随时间变化" }
    HtmlChartStressTtft { en: "TTFT p99 over time", zh: "TTFT p99 随时间变化" }
    HtmlChartStressErrors { en: "Failed requests per interval", zh: "每个区间的失败请求数" }
    HtmlChartStressInFlight { en: "Requests in flight (highest so far)", zh: "进行中的请求数（至今最高）" }
    HtmlChartTimelineTokens { en: "Output tokens per second during the steps", zh: "各步进行中每秒的输出 token" }
    HtmlChartTimelineRequests { en: "Requests per second during the steps", zh: "各步进行中每秒的请求数" }
    HtmlAxisRequestsPerS { en: "requests per second", zh: "每秒请求数" }
    HtmlSeriesCompleted { en: "{test} completed", zh: "{test} 完成" }
    HtmlSeriesFailed { en: "{test} failed", zh: "{test} 失败" }
    HtmlChartCpu { en: "Client CPU over the run", zh: "客户端 CPU 使用率随时间变化" }
    HtmlChartTemperature { en: "Client CPU temperature over the run", zh: "客户端 CPU 温度随时间变化" }
    HtmlSeriesMachineCpu { en: "machine, % of all cores", zh: "整机，占全部核心的 %" }
    HtmlSeriesProcessCpu { en: "llm-bench, % of one core", zh: "llm-bench，占单核的 %" }
    HtmlSeriesTemperature { en: "hottest sensor", zh: "最高温度传感器" }
    HtmlAxisConcurrency { en: "concurrency (connections)", zh: "并发数（连接）" }
    HtmlAxisRate { en: "request rate (req/s)", zh: "请求速率（请求/秒）" }
    HtmlAxisTokensPerS { en: "throughput (tokens/s)", zh: "吞吐量（token/秒）" }
    HtmlAxisTokPerConn { en: "speed per connection (tokens/s)", zh: "单连接速度（token/秒）" }
    HtmlAxisMs { en: "{metric} (ms)", zh: "{metric}（毫秒）" }
    HtmlAxisTtftP99 { en: "TTFT p99 (ms)", zh: "TTFT p99（毫秒）" }
    HtmlAxisE2eP99 { en: "E2E p99 (ms)", zh: "E2E p99（毫秒）" }
    HtmlAxisPercentile { en: "percentile (%)", zh: "百分位（%）" }
    HtmlAxisTime { en: "time since the start (s)", zh: "自开始起的时间（秒）" }
    HtmlAxisErrors { en: "failed requests", zh: "失败请求数" }
    HtmlAxisInFlight { en: "requests in flight", zh: "进行中的请求数" }
    HtmlAxisCpu { en: "CPU (%)", zh: "CPU 使用率（%）" }
    HtmlAxisTemperature { en: "temperature (°C)", zh: "温度（°C）" }
    HtmlKnee { en: "knee", zh: "拐点" }
    HtmlBest { en: "best", zh: "最佳" }
    HtmlMinTpsLine { en: "--min-tps {tps} tok/s", zh: "--min-tps {tps} token/秒" }
    HtmlSloRule { en: "SLO {name} ≤ {limit} ms", zh: "SLO {name} ≤ {limit} 毫秒" }
    HtmlClientBoundBand { en: "client-bound step", zh: "受限于客户端的步" }
    HtmlStepsTable { en: "Steps", zh: "各步数据" }
    HtmlIntervalsTable { en: "Report intervals", zh: "报告区间" }
    HtmlColTest { en: "test", zh: "测试项" }
    HtmlColLoad { en: "load", zh: "负载" }
    HtmlColOk { en: "ok", zh: "成功" }
    HtmlColFailed { en: "failed", zh: "失败" }
    HtmlColOutputTps { en: "output tok/s", zh: "输出 token/秒" }
    HtmlColPromptTps { en: "prompt tok/s", zh: "输入 token/秒" }
    HtmlColRps { en: "req/s", zh: "请求/秒" }
    HtmlColPerConn { en: "tok/s per connection", zh: "单连接 token/秒" }
    HtmlColTtft { en: "TTFT p50 / p99 (ms)", zh: "TTFT p50 / p99（毫秒）" }
    HtmlColItl { en: "ITL p50 / p99 (ms)", zh: "ITL p50 / p99（毫秒）" }
    HtmlColTpot { en: "TPOT p50 (ms)", zh: "TPOT p50（毫秒）" }
    HtmlColE2e { en: "E2E p50 / p99 (ms)", zh: "E2E p50 / p99（毫秒）" }
    HtmlColSlo { en: "SLO attainment (%)", zh: "SLO 达成率（%）" }
    HtmlColClientBound { en: "client-bound", zh: "受限于客户端" }
    HtmlColInterval { en: "interval", zh: "区间" }
    HtmlColStep { en: "step", zh: "步" }
    HtmlColClass { en: "error class", zh: "错误类别" }
    HtmlColCount { en: "count", zh: "次数" }
    HtmlColMessage { en: "message (as the server sent it)", zh: "消息（服务器原文）" }
    HtmlYes { en: "yes", zh: "是" }
    HtmlNoErrors { en: "No request failed.", zh: "没有失败的请求。" }
    HtmlErrorSamples { en: "Error samples", zh: "错误示例" }
    HtmlCompareTitle { en: "llm-bench comparison", zh: "llm-bench 对比报告" }
    HtmlCompareRuns { en: "Runs", zh: "参与对比的运行" }
    HtmlCompareRun { en: "run", zh: "运行" }
    HtmlCompareLabel { en: "label", zh: "标签" }
    HtmlComparePath { en: "folder or file", zh: "目录或文件" }
    HtmlCompareBaseline { en: "baseline", zh: "基准" }
    HtmlCompareVerdicts { en: "Verdicts", zh: "判定" }
    HtmlCompareMethod { en: "Method", zh: "方法" }
    HtmlCompareRunLevel { en: "whole run", zh: "整体运行" }
    HtmlCompareNothingMatched { en: "No step is in every run.", zh: "没有在所有运行中都出现的步。" }
    HtmlCompareUnmatched { en: "Steps not in every run", zh: "未在所有运行中出现的步" }
    HtmlCompareNoUnmatched { en: "Every step is in every run.", zh: "所有步都出现在每次运行中。" }
    HtmlCompareBreaches { en: "--fail-if breaches", zh: "--fail-if 触发项" }
    HtmlCompareNoBreaches { en: "No --fail-if threshold was crossed.", zh: "没有触发任何 --fail-if 阈值。" }
    HtmlColFigure { en: "figure", zh: "指标" }
    HtmlColChange { en: "change (%)", zh: "变化（%）" }
    HtmlColChangeCi { en: "95% CI of the change (%)", zh: "变化的 95% 置信区间（%）" }
    HtmlColVerdict { en: "verdict", zh: "判定" }
    HtmlVerdictBetter { en: "better", zh: "更好" }
    HtmlVerdictWorse { en: "worse", zh: "更差" }
    HtmlVerdictWithinNoise { en: "within noise", zh: "在噪声范围内" }
    HtmlVerdictUnknown { en: "cannot tell (no records)", zh: "无法判断（无请求记录）" }

    // --- llm-bench compare (src/compare) ---
    CompareWithinNoise { en: "within noise", zh: "在噪声范围内" }

    // --- live view (src/report/live) ---
    LiveStep { en: "step {n}/{total}", zh: "第 {n}/{total} 步" }
}
