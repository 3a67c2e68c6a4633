//! The catalogue: every user-facing sentence in English and Chinese. Keep a section per part
//! of the program; a message's name says what it is about.

use super::catalogue;

catalogue! {
    // --- run: header, steps, end of run (src/run) ---
    RunHeader { en: "llm-bench {version} → {url} | results in {dir}", zh: "llm-bench {version} → {url} | 结果保存在 {dir}" }
    ErrorLine { en: "error: {error}", zh: "错误：{error}" }
    WarningLine { en: "warning: {text}", zh: "警告：{text}" }
    WarnInsecure { en: "--insecure: TLS certificates are not verified", zh: "--insecure：不验证 TLS 证书" }
    WarnInsecurePlainHttp { en: "--insecure and --ca-cert apply to https:// URLs only; this run is plain http", zh: "--insecure 和 --ca-cert 只对 https:// 地址有效；本次运行用的是明文 http" }
    ProxyTunnel { en: "a CONNECT tunnel", zh: "经 CONNECT 隧道" }
    ProxyForwarded { en: "requests forwarded", zh: "由代理转发请求" }
    ProxyLine { en: "Proxy: {proxy} (from {source}), {how}; list {host} in NO_PROXY to connect directly", zh: "代理：{proxy}（来自 {source}），{how}；要直接连接，请把 {host} 加入 NO_PROXY" }
    NoTemperature { en: "CPU temperature: not available on this machine", zh: "CPU 温度：本机无法读取" }
    HeaderEmbeddingsOne { en: "embeddings: {n} input a request", zh: "嵌入：每个请求 {n} 条输入" }
    HeaderEmbeddingsMany { en: "embeddings: {n} inputs a request", zh: "嵌入：每个请求 {n} 条输入" }
    HeaderImages { en: "{n} {width}x{height} {format} image(s) per multimodal request, made for each", zh: "每个多模态请求 {n} 张 {width}x{height} {format} 图片，每次新生成" }
    HeaderModel { en: "Model {model} | tests: {tests} | {workload}{max_tokens}{images} | {mode}", zh: "模型 {model} | 测试：{tests} | {workload}{max_tokens}{images} | {mode}" }
    HeaderSloFromSend { en: " (latencies from the actual send)", zh: "（延迟从实际发送时刻算起）" }
    HeaderSlo { en: "SLO: {slo}{from}", zh: "SLO：{slo}{from}" }
    ModeCap { en: ", at most {n} in flight", zh: "，最多 {n} 个请求同时进行" }
    ModeTrace { en: "trace replay: {n} requests at their recorded times over {span} s (mean {rate} req/s{cap})", zh: "轨迹回放：{n} 个请求按记录的时间发送，历时 {span} 秒（平均 {rate} req/s{cap}）" }
    ModeArrivals { en: "{arrival} arrivals", zh: "{arrival} 到达" }
    ModeOpenShape { en: " ({open}, seed {seed}{cap})", zh: "（{open}，随机种子 {seed}{cap}）" }
    ModeRampUp { en: ", ramp-up {ramp}", zh: "，逐步加压 {ramp}" }
    ModeConcurrencyRange { en: "concurrency {first}..={last} by {step}", zh: "并发 {first}..={last}，步长 {step}" }
    ModeForPerStep { en: ", {duration} per step", zh: "，每步 {duration}" }
    ModeRequestsPerStep { en: ", {n} requests per step", zh: "，每步 {n} 个请求" }
    ModeOnePerConnection { en: ", one request per connection", zh: "，每个连接一个请求" }
    ModeStep { en: "step mode: {list}{each}{shape}{ramp}", zh: "阶梯模式：{list}{each}{shape}{ramp}" }
    ModeStress { en: "stress mode: {point} for {duration}{shape}{ramp}", zh: "压力模式：{point}，持续 {duration}{shape}{ramp}" }
    ModeForPerProbe { en: "{duration} per probe", zh: "每次探测 {duration}" }
    ModeRequestsPerProbe { en: "{n} requests per probe", zh: "每次探测 {n} 个请求" }
    ModeCapacity { en: "capacity search, {each}{ramp}", zh: "容量搜索，{each}{ramp}" }
    PointConcurrency { en: "concurrency {n}", zh: "并发 {n}" }
    PointRate { en: "{rate} req/s", zh: "速率 {rate} req/s" }
    RunInterrupted { en: "Interrupted: sending no new requests; waiting up to {drain} for {in_flight} in flight (Ctrl-C again to stop now)", zh: "已中断：不再发送新请求；最多等待 {drain}，让进行中的 {in_flight} 个请求完成（再按一次 Ctrl-C 立即停止）" }
    RunStoppingNow { en: "Stopping now; writing the summary of what finished.", zh: "立即停止；正在写入已完成部分的汇总。" }
    NoteLine { en: "Note: {note}", zh: "注意：{note}" }
    NoteRecordsIncomplete { en: "requests.jsonl is incomplete: {problem}", zh: "requests.jsonl 不完整：{problem}" }
    RecommendationsHeading { en: "Recommendations:", zh: "建议：" }
    ClientAlsoSimulator { en: " (this process also ran the simulator, so this is not the client's cost alone)", zh: "（本进程同时运行了模拟器，所以这不只是客户端的开销）" }
    ResultsSaved { en: "Results: {summary} ({n} requests in requests.jsonl)", zh: "结果：{summary}（requests.jsonl 中有 {n} 个请求）" }
    ResultsRecordsIncomplete { en: "Results: {summary}; requests.jsonl is incomplete (it could not be written to the end)", zh: "结果：{summary}；requests.jsonl 不完整（未能写到最后）" }
    ResultsNotSaved { en: "Results could not be saved in {dir}: the report above is all that is left of this run.", zh: "结果无法保存到 {dir}：上面的报告就是本次运行留下的全部内容。" }
    RunWasInterrupted { en: "The run was interrupted; the summary covers what finished.", zh: "运行被中断；汇总只包含已完成的部分。" }
    RunNothingSucceeded { en: "No request succeeded; see the errors above.", zh: "没有一个请求成功；请查看上面的错误。" }
    LogWriteFailed { en: "cannot write the log file any more: {error}", zh: "日志文件已无法继续写入：{error}" }
    WarnResultsLost { en: "{problem}; the run goes on, and its figures stay on the console and in the log", zh: "{problem}；运行继续，数据仍会显示在控制台并写入日志" }
    StepLabel { en: "step {n}/{total} [{test}] {point}", zh: "第 {n}/{total} 步 [{test}] {point}" }
    ProgressLine { en: "{label}: {done} done, {in_flight} in flight, {failed} failed, {elapsed} s", zh: "{label}：完成 {done}，进行中 {in_flight}，失败 {failed}，{elapsed} 秒" }
    StopWhenSaturated { en: "--stop-when-saturated: {point} saturated the server; no higher load point is run.", zh: "--stop-when-saturated：{point} 已使服务器饱和；不再运行更高的负载点。" }
    StopErrorBudget { en: "Stopping: {pct}% of the requests at {point} failed, over --max-error-rate {max}%.", zh: "停止：{point} 下有 {pct}% 的请求失败，超过了 --max-error-rate {max}%。" }
    StressLabel { en: "stress, {point}", zh: "压力测试，{point}" }
    IntervalMissing { en: "{n} requests sent before this interval's end were still in flight one interval later; their figures are not in it", zh: "本区间结束前发出的 {n} 个请求在下一个区间结束时仍未完成；它们的数据不计入本区间" }
    StressSummaryHeading { en: "Stress run summary:", zh: "压力测试汇总：" }
    ProbeLabel { en: "probe {n} [{test}] {point}", zh: "探测 {n} [{test}] {point}" }
    ProbeMeets { en: "meets the SLO", zh: "满足 SLO" }
    ProbeFails { en: "fails the SLO: {why}", zh: "不满足 SLO：{why}" }
    ProbeAt { en: "probe at {point}: {result}", zh: "{point} 的探测：{result}" }
    AxisRate { en: "rate", zh: "速率" }
    AxisConcurrency { en: "concurrency", zh: "并发" }
    CapacityHeader { en: "Capacity search by {by}: {min} .. {max}, precision {precision}%, SLO {slo}", zh: "按{by}搜索容量：{min} .. {max}，精度 {precision}%，SLO {slo}" }
    RebuiltSkipped { en: " ({n} unreadable lines skipped)", zh: "（跳过 {n} 行无法读取的内容）" }
    RebuiltNote { en: "rebuilt from {n} records of requests.jsonl{skipped}", zh: "由 requests.jsonl 的 {n} 条记录重建{skipped}" }
    DemoLine { en: "Demo: built-in simulator at {url} (batch of 16 sequences; expect a knee near concurrency 16)", zh: "演示：内置模拟器位于 {url}（批大小 16 个序列；拐点应在并发 16 附近）" }
    SimListening { en: "llm-bench simulator listening on {url}", zh: "llm-bench 模拟器正在监听 {url}" }
    ModelOnly { en: "Model: {model} (the only model the server lists)", zh: "模型：{model}（服务器列出的唯一模型）" }
    ModelFirst { en: "Model: {model} (the first of {n} the server lists: {list}; choose another with --model)", zh: "模型：{model}（服务器列出的 {n} 个模型中的第一个：{list}；可用 --model 选择其他模型）" }
    ListMore { en: "{list}, … ({n} more)", zh: "{list}，…（另有 {n} 个）" }
    ProbeRequestFailed { en: "the test request for the {test} test failed ({class}: {message}); starting anyway", zh: "{test} 测试的试探请求失败（{class}：{message}）；仍然开始运行" }
    NoUsageEmbeddings { en: "Note: the server sent no token usage; input tokens are estimated as characters / 4, and marked estimated", zh: "注意：服务器没有返回 token 用量；输入 token 按字符数 / 4 估算，并标记为估算值" }
    NoUsageOutput { en: "Note: the server sent no token usage; output tokens are counted as chunks with text, and marked estimated", zh: "注意：服务器没有返回 token 用量；输出 token 按含文本的数据块计数，并标记为估算值" }
    RunResultsIn { en: "Results in {dir}", zh: "结果保存在 {dir}" }

    // --- recommendations and sentences (src/metrics) ---
    NothingSucceeded { en: "[{test}] No request succeeded, so there is nothing to recommend.", zh: "[{test}] 没有一个请求成功，无法给出建议。" }
    CapacityLowestFails { en: "Even the lowest load fails {slo}: at {point} {why}. Lower --min, or check the server.", zh: "即使最低负载也不满足 {slo}：{point} 时，{why}。请调低 --min，或检查服务器。" }
    CapacityStoppedBeforeProbe { en: "The search was stopped before any probe finished.", zh: "搜索在任何一次探测完成前就被停止了。" }
    CapacityGoodput { en: " (goodput {rps} req/s, {tps} output tok/s)", zh: "（有效吞吐 {rps} req/s，输出 {tps} tok/s）" }
    CapacityMeets { en: "Meets {slo} up to {point}{goodput}.", zh: "在 {point} 及以下满足 {slo}{goodput}。" }
    CapacityFailsAt { en: " At {point} {why}.", zh: "{point} 时，{why}。" }
    CapacityStoppedBeforeFail { en: " The search was stopped before a load failed it.", zh: "搜索在找到不满足的负载前就被停止了。" }
    CapacityReachedMax { en: " That is --max: the limit is higher; raise --max to find it.", zh: "这已是 --max：极限更高；请调高 --max 来找到它。" }
    CapacityNoisy { en: " A second measurement at {point} did not meet it: the server is noisy near its limit, so treat the answer as approximate.", zh: "在 {point} 的第二次测量未满足：服务器在极限附近波动较大，此结果只能作为近似值。" }

    // --- errors users cause (src/cli, src/run/preflight.rs, src/report/console.rs) ---
    RuntimeFailed { en: "cannot start the async runtime: {error}", zh: "无法启动异步运行时：{error}" }
    LogFolderUncreatable { en: "cannot create the folder of log file {path}: {error}", zh: "无法创建日志文件 {path} 所在的文件夹：{error}" }
    LogIsDirectory { en: "log file {path} is a directory; give a file path with -l", zh: "日志文件 {path} 是一个文件夹；请用 -l 指定文件路径" }
    LogUnwritable { en: "cannot write log file {path}: {error}", zh: "无法写入日志文件 {path}：{error}" }
    RebuildNoRecords { en: "{dir} has no requests.jsonl; give a results folder of llm-bench", zh: "{dir} 中没有 requests.jsonl；请给出 llm-bench 的结果文件夹" }
    OpenFilesTooFew { en: "concurrency {peak} needs about {needed} open files but this process may open only {soft} (hard limit {hard}); raise it (e.g. `ulimit -n {needed}` as root, or LimitNOFILE= for a service) or lower the concurrency", zh: "并发 {peak} 需要约 {needed} 个打开的文件，但本进程最多只能打开 {soft} 个（硬上限 {hard}）；请调高上限（例如以 root 运行 `ulimit -n {needed}`，服务则设置 LimitNOFILE=），或降低并发" }
    ModelsRefused { en: "the server at {url} refused the request (HTTP {status}): check the API key (--api-key, OPENAI_API_KEY or LLM_BENCH_API_KEY)", zh: "{url} 的服务器拒绝了请求（HTTP {status}）：请检查 API 密钥（--api-key、OPENAI_API_KEY 或 LLM_BENCH_API_KEY）" }
    Models404 { en: "GET {url}/models answered 404: check --url; it should be the API base, usually ending in /v1 (or pass --model to skip the model list)", zh: "GET {url}/models 返回 404：请检查 --url；它应是 API 的根地址，通常以 /v1 结尾（或用 --model 跳过模型列表）" }
    Unreachable { en: "cannot reach the server: {error}; start it or pass --url", zh: "无法连接服务器：{error}；请启动服务器或用 --url 指定地址" }
    ModelsFailed { en: "{error}; pass --model to skip the model list", zh: "{error}；可用 --model 跳过模型列表" }
    ProxyWants407 { en: "proxy {proxy} (from {source}) refused the request (HTTP 407 Proxy Authentication Required); put credentials in {source} (http://user:password@host:port), or add {host} to NO_PROXY", zh: "代理 {proxy}（来自 {source}）拒绝了请求（HTTP 407 Proxy Authentication Required）；请在 {source} 中写入凭据（http://user:password@host:port），或把 {host} 加入 NO_PROXY" }
    Server407 { en: "the server answered HTTP 407 Proxy Authentication Required: is --url a proxy rather than the API?", zh: "服务器返回 HTTP 407 Proxy Authentication Required：--url 指向的是代理而不是 API 吗？" }
    NoModels { en: "the server at {url} lists no models; pass --model", zh: "{url} 的服务器没有列出任何模型；请用 --model 指定" }
    ProbeRefused { en: "the server refused the request ({message}): check the API key (--api-key, OPENAI_API_KEY or LLM_BENCH_API_KEY)", zh: "服务器拒绝了请求（{message}）：请检查 API 密钥（--api-key、OPENAI_API_KEY 或 LLM_BENCH_API_KEY）" }
    ServerHasModels { en: "; the server has: {list}", zh: "；服务器上有：{list}" }
    ModelNotFound { en: "model `{model}` not found ({message}){known}; pass one of them with --model", zh: "找不到模型 `{model}`（{message}）{known}；请用 --model 指定其中一个" }
    Post404 { en: "POST {url} answered {message}: check --url; it should be the API base, usually ending in /v1", zh: "POST {url} 返回 {message}：请检查 --url；它应是 API 的根地址，通常以 /v1 结尾" }
    NoImageInput { en: "the server rejects image input ({message}); use a vision model (for llama.cpp, start it with --mmproj) or run without -mm", zh: "服务器不接受图片输入（{message}）；请使用视觉模型（llama.cpp 需加 --mmproj 启动），或去掉 -mm 运行" }
    InvalidContinuousUsage { en: "the server rejected the test request as invalid ({message}); it may not know per-chunk usage: run without --continuous-usage (vLLM and SGLang support it)", zh: "服务器认为测试请求无效并拒绝（{message}）；它可能不支持逐块用量统计：请去掉 --continuous-usage 运行（vLLM 和 SGLang 支持该选项）" }
    InvalidRequest { en: "the server rejected the test request as invalid ({message}); check --model, --endpoint and the flags that shape the request", zh: "服务器认为测试请求无效并拒绝（{message}）；请检查 --model、--endpoint 以及决定请求内容的选项" }
    NotEventStream { en: "the server at {url} did not answer with an event stream ({message}); is it an OpenAI-compatible API?", zh: "{url} 的服务器没有以事件流应答（{message}）；它是 OpenAI 兼容的 API 吗？" }

    // --- report.html and compare.html (src/report/html) ---
    HtmlTitle { en: "llm-bench report", zh: "llm-bench 测试报告" }

    // --- llm-bench compare (src/compare) ---
    CompareWithinNoise { en: "within noise", zh: "在噪声范围内" }

    // --- live view (src/report/live) ---
    LiveStep { en: "step {n}/{total}", zh: "第 {n}/{total} 步" }
}
