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
    HeaderSlo { en: "SLO: {slo}{from}", zh: "SLO 目标：{slo}{from}" }
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
    StepResent { en: ", {n} resent", zh: "，重发 {n}" }
    StepCancelled { en: ", {n} cut at the drain time", zh: "，{n} 个在排空时限被截断" }
    StepInWindow { en: "in a {s} s window", zh: "，统计窗口 {s} 秒" }
    StepInTime { en: "in {s} s", zh: "，用时 {s} 秒" }
    StepLine { en: "[{test}] {point}: {ok} ok, {failed} failed{resent}{cancelled} {over} (max {max} in flight)", zh: "[{test}] {point}：成功 {ok}，失败 {failed}{resent}{cancelled}{over}（最多 {max} 个同时进行）" }
    StepAllFailed { en: "all {n} requests failed{cause}", zh: "全部 {n} 个请求失败{cause}" }
    StepTokensEstimated { en: " (token counts estimated: no usage from the server)", zh: "（token 数为估算值：服务器未返回用量）" }
    StepPrefillPerRequest { en: "{mean} tok/s per request (std {std})", zh: "每个请求 {mean} tok/s（标准差 {std}）" }
    StepPrefillLine { en: "prefill: {prefill} | total {total} prompt tok/s | {tokens} prompt tokens{est}", zh: "预填充：{prefill} | 总计 {total} prompt tok/s | 共 {tokens} 个 prompt token{est}" }
    StepSpread { en: "{mean} tok/s (std {std}, min {min}, max {max})", zh: "{mean} tok/s（标准差 {std}，最小 {min}，最大 {max}）" }
    StepPerConnectionLine { en: "per connection: {per_conn} | total {total} tok/s | {rps} req/s{est}", zh: "每连接：{per_conn} | 总计 {total} tok/s | {rps} req/s{est}" }
    StepItlPerToken { en: " | ITL per token ms p50 {p50} p99 {p99}", zh: " | 每 token ITL ms p50 {p50} p99 {p99}" }
    StepLatencyLine { en: "TTFT ms p50 {ttft_p50} p90 {ttft_p90} p99 {ttft_p99} | ITL (chunk gap) ms p50 {itl_p50} p99 {itl_p99}{per_token} | TPOT ms {tpot} | E2E ms p50 {e2e_p50} p99 {e2e_p99}", zh: "TTFT ms p50 {ttft_p50} p90 {ttft_p90} p99 {ttft_p99} | ITL（块间隔）ms p50 {itl_p50} p99 {itl_p99}{per_token} | TPOT ms {tpot} | E2E ms p50 {e2e_p50} p99 {e2e_p99}" }
    StepEfficiency { en: "efficiency {pct}", zh: "效率 {pct}" }
    StepErrors { en: "errors: {list}", zh: "错误：{list}" }
    StepImages { en: "images: {kb} KB per request sent (base64)", zh: "图片：每个请求发送 {kb} KB（base64）" }
    StepTurn { en: "turn {turn}: TTFT p50 {ttft} ms, prompt {tokens} tok", zh: "第 {turn} 轮：TTFT p50 {ttft} ms，prompt {tokens} tok" }
    StepSessions { en: "sessions: {turns}", zh: "会话：{turns}" }
    ReasoningPerRequest { en: " ({mean} per request)", zh: "（每个请求 {mean} 个）" }
    ReasoningEstimated { en: " (estimated: events with reasoning text)", zh: "（估算值：按含推理文本的事件计）" }
    ReasoningLine { en: "reasoning: TTFT reasoning ms p50 {reasoning_p50} p99 {reasoning_p99} | TTFT answer ms p50 {answer_p50} p99 {answer_p99} | {tokens} reasoning tokens{mean}{est}", zh: "推理：推理首 token ms p50 {reasoning_p50} p99 {reasoning_p99} | 回答首 token ms p50 {answer_p50} p99 {answer_p99} | 推理 token {tokens} 个{mean}{est}" }
    EmbeddingsLine { en: "embeddings: {inputs_s} inputs/s | {tokens_s} input tok/s | {rps} req/s | {inputs} inputs, {tokens} input tokens{est}", zh: "嵌入：{inputs_s} 条输入/s | {tokens_s} 输入 tok/s | {rps} req/s | 共 {inputs} 条输入，{tokens} 个输入 token{est}" }
    EmbeddingsLatency { en: "latency (E2E) ms p50 {p50} p90 {p90} p99 {p99} max {max}", zh: "延迟（E2E）ms p50 {p50} p90 {p90} p99 {p99} 最大 {max}" }
    RateLateness { en: " | send lateness ms p50 {p50} p99 {p99} max {max}", zh: " | 发送延后 ms p50 {p50} p99 {p99} 最大 {max}" }
    RateDue { en: ", due {rate} (the seeded schedule)", zh: "，计划 {rate}（按随机种子生成的时间表）" }
    RateLine { en: "rate: target {target} req/s{due}, sent {sent} req/s{late} | from the intended send: TTFT ms p50 {ttft_p50} p99 {ttft_p99}, E2E ms p50 {e2e_p50} p99 {e2e_p99}", zh: "速率：目标 {target} req/s{due}，实际发送 {sent} req/s{late} | 从计划发送时刻算起：TTFT ms p50 {ttft_p50} p99 {ttft_p99}，E2E ms p50 {e2e_p50} p99 {e2e_p99}" }
    SloGood { en: "{pct}% of requests good, goodput {rps} req/s, {tps} tok/s", zh: "{pct}% 的请求达标，有效吞吐 {rps} req/s、{tps} tok/s" }
    SloCheckOk { en: "ok", zh: "通过" }
    SloCheckFail { en: "FAIL", zh: "未通过" }
    SloMeets { en: "meets: ", zh: "满足：" }
    SloFails { en: "FAILS: ", zh: "不满足：" }
    SloLine { en: "SLO: {parts}", zh: "SLO 情况：{parts}" }
    ErrorsHeading { en: "Errors (distinct messages, with counts):", zh: "错误（按不同消息归并，附次数）：" }
    ErrorsMore { en: "… and {n} more distinct messages in summary.json (error_samples)", zh: "……另有 {n} 条不同的消息见 summary.json（error_samples）" }
    TableHeading { en: "{test} test", zh: "{test} 测试" }
    TableSaturated { en: "saturated: the backlog limit was reached and the step ended early", zh: "饱和：积压达到上限，该步提前结束" }
    TableClientBound { en: "client-bound: llm-bench, not the server, limited that step (see its CLIENT-BOUND line)", zh: "受限于客户端：限制该步的是 llm-bench 而不是服务器（见其 CLIENT-BOUND 行）" }
    TokensPerChunkAbout { en: " (about {mean})", zh: "（约 {mean} 个）" }
    TokensPerChunk { en: "several tokens per chunk{about}: per-token figures estimated from chunk counts; vLLM can report exact counts with --continuous-usage", zh: "每个数据块含多个 token{about}：按 token 计的数据由块数估算；vLLM 加 --continuous-usage 可报告精确数量" }
    PromptCacheStep { en: "the server reused a cached prompt prefix for {hits} of {ok} requests (its timings.prompt_n is under half the prompt): prefill and TTFT look better than for new prompts; for llama.cpp add --extra-body '{\"cache_prompt\": false}'", zh: "服务器对 {ok} 个请求中的 {hits} 个复用了缓存的 prompt 前缀（其 timings.prompt_n 不到 prompt 的一半）：预填充和 TTFT 看起来比新 prompt 好；llama.cpp 请加 --extra-body '{\"cache_prompt\": false}'" }
    ClientPerEvent { en: " ({us} µs per event)", zh: "（每个事件 {us} µs）" }
    ClientRss { en: ", peak RSS {mb} MB", zh: "，峰值 RSS {mb} MB" }
    ClientLineOneCore { en: "Client: llm-bench used {cpu} s of CPU for {events} events{per_event} on {cores} core{rss}", zh: "客户端：llm-bench 在 {cores} 个核上处理 {events} 个事件用了 {cpu} 秒 CPU{per_event}{rss}" }
    ClientLine { en: "Client: llm-bench used {cpu} s of CPU for {events} events{per_event} on {cores} cores{rss}", zh: "客户端：llm-bench 在 {cores} 个核上处理 {events} 个事件用了 {cpu} 秒 CPU{per_event}{rss}" }
    IntervalEmbeddingsLine { en: "[{elapsed}] {test}: {ok} ok, {failed} failed{errors}{resent} | {inputs_s} inputs/s, {tokens_s} input tok/s | E2E ms p50 {e2e_p50} p99 {e2e_p99}", zh: "[{elapsed}] {test}：成功 {ok}，失败 {failed}{errors}{resent} | {inputs_s} 条输入/s，{tokens_s} 输入 tok/s | E2E ms p50 {e2e_p50} p99 {e2e_p99}" }
    IntervalLine { en: "[{elapsed}] {test}: {ok} ok, {failed} failed{errors}{resent} | {rate} | TTFT ms p50 {ttft_p50} p99 {ttft_p99} | ITL ms p50 {itl_p50} p99 {itl_p99}", zh: "[{elapsed}] {test}：成功 {ok}，失败 {failed}{errors}{resent} | {rate} | TTFT ms p50 {ttft_p50} p99 {ttft_p99} | ITL ms p50 {itl_p50} p99 {itl_p99}" }
    SystemCpuUnknown { en: "CPU n/a", zh: "CPU 未知" }
    SystemOwnCpu { en: " (llm-bench {pct}% of a core)", zh: "（llm-bench 占一个核的 {pct}%）" }
    SystemTemp { en: "max temp {c} °C", zh: "最高温度 {c} °C" }
    SystemNoTemp { en: "temperature not available", zh: "无法读取温度" }
    ClientBoundLag { en: "its tasks ran up to {lag} ms late (scheduling lag p99, limit {limit} ms), so a stream's tokens can arrive before the previous one is read", zh: "它的任务最多延后 {lag} ms 才运行（调度延迟 p99，上限 {limit} ms），所以一个流的 token 可能在上一个被读取前就已到达" }
    ClientBoundCpuOneCore { en: "it used {share}% of the {cores} core it may use (limit {limit}%)", zh: "它用掉了可用的 {cores} 个核的 {share}%（上限 {limit}%）" }
    ClientBoundCpu { en: "it used {share}% of the {cores} cores it may use (limit {limit}%)", zh: "它用掉了可用的 {cores} 个核的 {share}%（上限 {limit}%）" }
    ClientBoundSendDelay { en: "it sent requests {delay} ms late on average, {share}% of a request's time (limit {limit}%), so fewer were in flight than asked", zh: "它发送请求平均延后 {delay} ms，占一个请求耗时的 {share}%（上限 {limit}%），所以同时进行的请求少于要求" }
    ClientBound { en: "CLIENT-BOUND: {reasons}. The numbers of this step describe llm-bench, not the server; give it more cores (--threads, fewer other programs) or spread the load over more machines.", zh: "CLIENT-BOUND（受限于客户端）：{reasons}。这一步的数据反映的是 llm-bench 而不是服务器；请给它更多核（--threads，减少其他程序），或把负载分散到更多机器上。" }
    DatasetSomeTimestamps { en: "Note: only {n} of the dataset's {rows} rows have a timestamp: it is not replayed", zh: "注意：数据集的 {rows} 行中只有 {n} 行带时间戳：不按时间回放" }
    DatasetNoTimestamps { en: "Note: the dataset has no timestamps: --trace-speed has nothing to replay", zh: "注意：数据集没有时间戳：--trace-speed 没有可回放的内容" }
    DatasetTimestampsIgnored { en: "Note: the dataset has timestamps, but the load flags given set the pace; they are not replayed", zh: "注意：数据集带有时间戳，但给出的负载选项决定了节奏；不按时间戳回放" }
    IslRaised { en: "Note: prompts are at least {floor} tokens (--isl-min): the server adds {overhead} around each, and 3 words keep them distinct", zh: "注意：prompt 至少 {floor} 个 token（--isl-min）：服务器在每个 prompt 周围添加 {overhead} 个，另需 3 个词使各 prompt 互不相同" }
    DatasetDetected { en: " (detected)", zh: "（自动识别）" }
    DatasetLine { en: "Dataset {path}: {format}{detected}, {rows} rows in {secs} s ({mbps} MB/s)", zh: "数据集 {path}：{format}{detected}，{rows} 行，用时 {secs} 秒（{mbps} MB/s）" }
    DatasetSkipped { en: "; {n} bad rows skipped, first: {first}", zh: "；跳过 {n} 个坏行，第一个：{first}" }
    DatasetFiltered { en: "; {n} rows outside the ISL filter", zh: "；{n} 行不在 ISL 过滤范围内" }
    DatasetCycled { en: "the run needed {asked} prompts and the dataset gave {rows}: its rows were sent again in the same order ({times} times over)", zh: "本次运行需要 {asked} 个 prompt，而数据集只有 {rows} 个：各行按相同顺序重复发送（共 {times} 遍）" }
    PromptLengthsAssumed { en: "Prompt lengths: not verified (the server sends no usage and has no /tokenize; give --tokenizer FILE): {words} words assumed one token each", zh: "Prompt 长度：未经验证（服务器不返回用量，也没有 /tokenize；请给出 --tokenizer FILE）：假定 {words} 个词每个都是一个 token" }
    PromptOverheadUnknown { en: "the tokens the server adds around them are not known (it sends no usage)", zh: "服务器在其周围添加的 token 数未知（它不返回用量）" }
    PromptOverhead { en: "the server adds {n} tokens", zh: "服务器添加 {n} 个 token" }
    PromptOverheadSystem { en: " ({n} with a system prompt)", zh: "（有系统提示词时 {n} 个）" }
    PromptWordsDropped { en: ", {n} words dropped as split", zh: "，{n} 个会被拆分的词已剔除" }
    PromptLengthsExactOneProbe { en: "Prompt lengths: token-exact via {method}: {words} words of one token each, {adds}{system} ({probes} probe{dropped})", zh: "Prompt 长度：经{method}精确到 token：{words} 个词每个一个 token，{adds}{system}（{probes} 次探测{dropped}）" }
    PromptLengthsExact { en: "Prompt lengths: token-exact via {method}: {words} words of one token each, {adds}{system} ({probes} probes{dropped})", zh: "Prompt 长度：经{method}精确到 token：{words} 个词每个一个 token，{adds}{system}（{probes} 次探测{dropped}）" }
    MethodTokenizerFile { en: "tokenizer file {path}", zh: "分词器文件 {path}" }
    MethodTokenizeEndpoint { en: "the server's tokenizer ({url})", zh: "服务器的分词器（{url}）" }
    MethodUsage { en: "calibration from the server's usage counts", zh: "服务器用量统计的校准" }
    MethodAssumed { en: "assumed one token per word (not verified: no usage, no tokenizer)", zh: "假定每个词一个 token（未验证：没有用量，也没有分词器）" }
    SourceFiller { en: "prompt {chars} chars", zh: "prompt {chars} 个字符" }
    SourceIsl { en: "ISL {isl} tokens", zh: "ISL {isl} 个 token" }
    SourcePrefixes { en: ", {n} shared prefixes of {tokens} tokens (ISL = prefix + suffix)", zh: "，{n} 个共享前缀，每个 {tokens} 个 token（ISL = 前缀 + 后缀）" }
    OrderTimestamp { en: "timestamp order", zh: "时间戳顺序" }
    OrderShuffled { en: "shuffled order", zh: "随机顺序" }
    OrderFile { en: "file order", zh: "文件顺序" }
    SourceDataset { en: "dataset {rows} rows ({format}), {sent} sent in {order}", zh: "数据集 {rows} 行（{format}），按{order}发送 {sent} 个" }
    ScheduleThreadFailed { en: "cannot start the open-loop schedule thread: {error}", zh: "无法启动开环调度线程：{error}" }
    IslOverridesPp { en: "--isl sets the prompt length in tokens; -pp {chars} (characters) is ignored", zh: "--isl 以 token 设定 prompt 长度；-pp {chars}（字符数）被忽略" }
    DatasetOverridesPp { en: "--dataset gives the prompts; -pp is ignored", zh: "prompt 来自 --dataset；-pp 被忽略" }
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
    CapacityOnShards { en: "a capacity search cannot run as shards: each shard would search alone, at its share of the load, and stop at its own answer; search on one machine, or run the rates it would try as a sharded sweep (--rate 2,4,8 --shard I/N) and read the answer from the merge", zh: "容量搜索不能分片运行：每个分片会各自以自己那一份负载搜索，并停在各自的答案上；请在一台机器上搜索，或把它要试的速率作为分片扫描运行（--rate 2,4,8 --shard I/N），再从合并结果中读出答案" }
    RepeatWithCapacity { en: "--repeat is for step sweeps: a capacity search chooses its own probes (and measures its answer twice); drop --repeat", zh: "--repeat 只用于分步测试：容量搜索自行选择探测点（并对结果复测一次）；请去掉 --repeat" }
    // llm-bench report DIR, requests.csv, --export (src/run/rebuild.rs, src/report/csv.rs, src/report/export.rs)
    ReportNoRecords { en: "{dir} has no requests.jsonl; give a results folder of llm-bench", zh: "{dir} 中没有 requests.jsonl；请给出 llm-bench 的结果文件夹" }
    ReportRebuilt { en: "rebuilt from {n} records of requests.jsonl", zh: "根据 requests.jsonl 中的 {n} 条记录重建" }
    ReportRebuiltSkipped { en: "rebuilt from {n} records of requests.jsonl ({bad} unreadable lines skipped)", zh: "根据 requests.jsonl 中的 {n} 条记录重建（跳过了 {bad} 行无法读取的内容）" }
    ReportNote { en: "note: {note}", zh: "注：{note}" }
    RequestsCsvWritten { en: "requests.csv: {rows} rows, one per request in requests.jsonl", zh: "requests.csv：{rows} 行，requests.jsonl 中每个请求一行" }
    ExportWritten { en: "{format} export: {file} ({n} results, one JSON object a line)", zh: "{format} 格式导出：{file}（{n} 条结果，每行一个 JSON 对象）" }
    ExportUnknownFormat { en: "--export: unknown format {format}; give one of: {formats} (e.g. --export vllm results.jsonl)", zh: "--export：未知格式 {format}；可用的格式：{formats}（例如 --export vllm results.jsonl）" }
    ExportNoFolder { en: "--export {file}: the folder {dir} does not exist; create it or choose another file", zh: "--export {file}：文件夹 {dir} 不存在；请先创建它，或另选一个文件" }
    ExportNotSaved { en: "The {format} export was not saved: {problem}", zh: "{format} 格式导出未能保存：{problem}" }
    RequestsCsvNotSaved { en: "requests.csv was not saved: {problem}", zh: "requests.csv 未能保存：{problem}" }

    // --- recommendations and sentences (src/metrics) ---
    NothingSucceeded { en: "[{test}] No request succeeded, so there is nothing to recommend.", zh: "[{test}] 没有一个请求成功，无法给出建议。" }
    CapacityLowestFails { en: "Even the lowest load fails {slo}: at {point} {why}. Lower --min, or check the server.", zh: "即使最低负载也不满足 {slo}：{point} 时，{why}。请调低 --min，或检查服务器。" }
    CapacityStoppedBeforeProbe { en: "The search was stopped before any probe finished.", zh: "搜索在任何一次探测完成前就被停止了。" }
    CapacityGoodput { en: " (goodput {rps} req/s, {tps} output tok/s)", zh: "（有效吞吐 {rps} req/s，输出 {tps} tok/s）" }
    CapacityMeets { en: "Meets {slo} up to {point}{goodput}.", zh: "在{point} 及以下满足 {slo}{goodput}。" }
    CapacityFailsAt { en: " At {point} {why}.", zh: "{point} 时，{why}。" }
    CapacityStoppedBeforeFail { en: " The search was stopped before a load failed it.", zh: "搜索在找到不满足的负载前就被停止了。" }
    CapacityReachedMax { en: " That is --max: the limit is higher; raise --max to find it.", zh: "这已是 --max：极限更高；请调高 --max 来找到它。" }
    CapacityNoisy { en: " A second measurement at {point} did not meet it: the server is noisy near its limit, so treat the answer as approximate.", zh: "在{point} 的第二次测量未满足：服务器在极限附近波动较大，此结果只能作为近似值。" }
    TestAtPoint { en: "{test} at {point}", zh: "{test} 在{point}" }
    AdviceClientBound { en: "llm-bench itself was the bottleneck ({steps}): those figures describe the client, not the server; rerun them with more client cores (--threads) or spread over more machines.", zh: "瓶颈是 llm-bench 自己（{steps}）：这些数据反映的是客户端而不是服务器；请用更多客户端核（--threads）或更多机器重新测试。" }
    AdviceErrorsStart { en: "Errors start at {point}: {failed} of {total} requests failed (mostly {class}, {count}).", zh: "从{point} 开始出现错误：{total} 个请求中有 {failed} 个失败（主要是 {class}，{count} 个）。" }
    AdviceCache { en: "The server reused cached prompts for {cached} of {ok} requests, so prefill and TTFT are flattered; rerun with --extra-body '{\"cache_prompt\": false}' (llama.cpp) to measure new prompts.", zh: "服务器对 {ok} 个请求中的 {cached} 个复用了缓存的 prompt，预填充和 TTFT 因此偏好；要测量新 prompt，请加 --extra-body '{\"cache_prompt\": false}'（llama.cpp）重新运行。" }
    AdviceSaturated { en: "The server saturated at {point}: requests piled up until the backlog limit ({limit}) ended the step; it cannot sustain that rate.", zh: "服务器在{point} 时饱和：请求不断积压，直到积压上限（{limit}）结束了该步；它撑不住这个速率。" }
    AdviceOverload { en: "At {point} the server completed {done} req/s of the {sent} sent: past its capacity, requests queue and latency from the intended send grows.", zh: "在{point} 时，服务器只完成了发送的 {sent} req/s 中的 {done} req/s：超出其容量后，请求排队，从计划发送时刻算起的延迟不断增长。" }
    AdviceBestPrefill { en: ", each request prefilled at {tps} tok/s", zh: "，每个请求的预填充速度 {tps} tok/s" }
    AdviceBestConnection { en: ", each connection at {tps} tok/s", zh: "，每个连接 {tps} tok/s" }
    AdviceBest { en: "Best throughput: {tps} {unit} at {point}{speed}.", zh: "最高吞吐：{point} 时 {tps} {unit}{speed}。" }
    AdviceMoreConcurrency { en: "More concurrency", zh: "更高的并发" }
    AdviceHigherRate { en: "A higher rate", zh: "更高的速率" }
    KneeLowers { en: "lowers it by {pct}%", zh: "反而下降 {pct}%" }
    KneeChanges { en: "changes it by {pct}% (within {margin}%)", zh: "变化 {pct}%（在 {margin}% 以内）" }
    KneeAddsOnly { en: "adds only {pct}% (less than {margin}%)", zh: "只增加 {pct}%（不到 {margin}%）" }
    AdviceKnee { en: "Throughput stops growing at {point} ({tps} {unit}): going to {next} {change}. {more} beyond {knee} mostly adds waiting.", zh: "吞吐在{point} 时不再增长（{tps} {unit}）：升到 {next} 时{change}。超过 {knee} 后，{more}主要只会增加等待。" }
    AdviceGrowsAtCapacity { en: "Throughput still grows at the last step ({point}, {tps} {unit}), but the server completed only {done} of the {sent} req/s sent there: it is at its capacity, and higher rates only queue.", zh: "吞吐在最后一步仍在增长（{point}，{tps} {unit}），但服务器在那里只完成了发送的 {sent} req/s 中的 {done}：它已达到容量，更高的速率只会排队。" }
    AdviceStillGrows { en: "Throughput still grows at the last step ({point}, {tps} {unit}): continue raising the load to find the limit.", zh: "吞吐在最后一步仍在增长（{point}，{tps} {unit}）：请继续提高负载以找到极限。" }
    SloWhySaturated { en: "the server saturated (the backlog limit was reached)", zh: "服务器饱和（达到了积压上限）" }
    SloWhyNothing { en: "no request succeeded", zh: "没有一个请求成功" }
    SloWhyErrors { en: "{pct}% of the requests failed", zh: "{pct}% 的请求失败" }
    SloWhyCut { en: "{cut} of {sent} requests were still unfinished at the drain time (--drain-timeout) and were cut", zh: "{sent} 个请求中有 {cut} 个在排空时限（--drain-timeout）到达时仍未完成，被截断" }
    SloNotMeasured { en: "not measured", zh: "未测到" }
    SloWhyObjective { en: "{metric} was {actual} (limit {limit})", zh: "{metric} 为 {actual}（上限 {limit}）" }
    SloWhyAttainment { en: "only {pct}% of the requests met every threshold (needed {needed}%)", zh: "只有 {pct}% 的请求满足全部阈值（要求 {needed}%）" }
    AdviceAttainment { en: ", {pct}% of requests good, goodput {rps} req/s", zh: "，{pct}% 的请求达标，有效吞吐 {rps} req/s" }
    AdviceSloBreaks { en: "The highest tested load that meets {slo} is {point}{attainment}; at {bad} {why} — that breaks first.", zh: "满足 {slo} 的最高测试负载是{point}{attainment}；到{bad} 时，{why}——这是最先被打破的。" }
    AdviceSloHighestMeets { en: "The highest tested load, {point}, meets {slo}{attainment}: raise the load to find the limit.", zh: "测试的最高负载（{point}）满足 {slo}{attainment}：请提高负载以找到极限。" }
    AdviceSloNone { en: "No step meets {slo}: already at {bad} {why}.", zh: "没有一步满足 {slo}：在{bad} 时就已不满足，{why}。" }
    AdviceMinTpsFalls { en: "Per-connection speed falls below --min-tps {target} at {bad} ({bad_tps} tok/s). The highest load that meets it is {point} ({tps} tok/s per connection, {total} tok/s in total).", zh: "在{bad} 时，每连接速度低于 --min-tps {target}（{bad_tps} tok/s）。满足它的最高负载是{point}（每连接 {tps} tok/s，总计 {total} tok/s）。" }
    AdviceMinTpsAll { en: "Every step meets --min-tps {target}; the highest tested load, {point}, gives {tps} tok/s per connection.", zh: "每一步都满足 --min-tps {target}；测试的最高负载（{point}）每连接 {tps} tok/s。" }
    AdviceMinTpsNone { en: "No step meets --min-tps {target}: even {point} gives {tps} tok/s per connection.", zh: "没有一步满足 --min-tps {target}：即使在{point} 时每连接也只有 {tps} tok/s。" }
    AdviceSpread { en: "Connections run at very different speeds at {points}: contention in the server, or network jitter.", zh: "在 {points} 时各连接速度差异很大：服务器内部存在争用，或网络抖动。" }
    AdviceLowEfficiency { en: "Efficiency is below 80% at {points}: time to first token or queueing takes a large share of each step, so scaling is limited.", zh: "在 {points} 时效率低于 80%：首 token 时间或排队占了每步的很大一部分，扩展性因此受限。" }
    AdviceScalesWell { en: "Efficiency is at least 95% at every step: the server scales well over this range.", zh: "每一步的效率都不低于 95%：服务器在这个范围内扩展良好。" }
    DriftSpan { en: "the first {k} and the last {k} intervals", zh: "前 {k} 个和最后 {k} 个区间之间" }
    DriftStable { en: "stable", zh: "稳定" }
    DriftWorse { en: "worse", zh: "变差" }
    DriftBetter { en: "better", zh: "变好" }
    DriftThroughput { en: "throughput", zh: "吞吐" }
    DriftLine { en: "{name} {verdict}: {a} → {b} {unit} ({change}%) between {span}.", zh: "{name} {verdict}：{span}从 {a} 变为 {b} {unit}（{change}%）。" }
    DriftErrors { en: "error rate: {a}% → {b}% between {span}.", zh: "错误率：{span}从 {a}% 变为 {b}%。" }
    LengthProof { en: "{kind} asked {asked}, got {mean} ({min}–{max}): {within_1}% within ±1 token, {within_2}% within ±2% ({n} requests)", zh: "{kind} 要求 {asked}，实际 {mean}（{min}–{max}）：{within_1}% 在 ±1 token 内，{within_2}% 在 ±2% 内（{n} 个请求）" }
    IslMoreTokens { en: "the server adds more tokens around the prompt than measured before the run (a chat template that grew, a system prompt, images); give --tokenizer or check the template", zh: "服务器在 prompt 周围添加的 token 比运行前测得的多（聊天模板变长、系统提示词、图片）；请给出 --tokenizer 或检查模板" }
    IslFewerTokens { en: "the server counted fewer tokens than built: it truncated the prompts (context limit) or splits words differently; give --tokenizer", zh: "服务器统计的 token 比构造的少：它截断了 prompt（上下文限制），或分词方式不同；请给出 --tokenizer" }
    IslWarning { en: "ISL: prompts were {mean} tokens on average as the server counted them, {asked} were asked ({dev}%): {why}", zh: "ISL：按服务器的统计，prompt 平均 {mean} 个 token，要求的是 {asked}（{dev}%）：{why}" }
    OslMoreThanMax { en: "the server generated more than max_tokens", zh: "服务器生成的 token 超过了 max_tokens" }
    OslStoppedAtEos { en: "{pct}% of answers stopped at end-of-sequence (finish_reason stop); add --ignore-eos to ask for exact lengths", zh: "{pct}% 的回答在序列结束符处停止（finish_reason stop）；要得到精确长度，请加 --ignore-eos" }
    OslIgnoresIgnoreEos { en: "answers stopped at end-of-sequence although --ignore-eos was sent: the server ignores ignore_eos/min_tokens", zh: "虽然发送了 --ignore-eos，回答仍在序列结束符处停止：服务器忽略了 ignore_eos/min_tokens" }
    OslCapped { en: "the server capped max_tokens (finish_reason length with fewer tokens): its context or output limit is below what was asked", zh: "服务器限制了 max_tokens（finish_reason 为 length 但 token 更少）：它的上下文或输出上限低于要求" }
    OslNoReason { en: "the server did not say why (no finish_reason)", zh: "服务器没有说明原因（没有 finish_reason）" }
    OslWarning { en: "OSL: outputs were {mean} tokens on average, {asked} were asked ({dev}%): {why}", zh: "OSL：输出平均 {mean} 个 token，要求的是 {asked}（{dev}%）：{why}" }
    PrefixShared { en: " although prompts share a {n}-token prefix", zh: "（尽管 prompt 共享 {n} 个 token 的前缀）" }
    PrefixNoReuse { en: "Prefix-cache reuse 0%{shared}: TTFT {later} ms for later requests vs {first} ms for the first in each group. Is prefix caching enabled on the server?", zh: "前缀缓存复用率 0%{shared}：后续请求的 TTFT 为 {later} ms，每组第一个请求为 {first} ms。服务器开启前缀缓存了吗？" }
    PrefixReused { en: "Shared prefixes: the server reused {pct}% of later requests' prompt tokens from its cache; their TTFT {later} ms vs {first} ms for the first in each group", zh: "共享前缀：服务器从缓存中复用了后续请求 {pct}% 的 prompt token；它们的 TTFT 为 {later} ms，每组第一个请求为 {first} ms" }
    PrefixUnknown { en: "Shared prefixes: TTFT {later} ms for later requests vs {first} ms for the first in each group (the server does not say what it reused)", zh: "共享前缀：后续请求的 TTFT 为 {later} ms，每组第一个请求为 {first} ms（服务器没有说明复用了多少）" }
    PacingSaturated { en: "SATURATED: {waiting} requests were waiting at once, in the client's queue or at the server without a first token (the limit, --max-backlog {limit}): the server cannot sustain {rate} req/s, so the step ended after {after} s and {dropped} waiting requests were dropped.", zh: "SATURATED（饱和）：同时有 {waiting} 个请求在等待，在客户端队列中或在服务器上尚无首 token（上限 --max-backlog {limit}）：服务器撑不住 {rate} req/s，所以该步在 {after} 秒后结束，丢弃了 {dropped} 个等待中的请求。" }
    PacingWhat { en: "{sent} req/s sent of {due} due (target {target}), send lateness p50 {p50} ms, p99 {p99} ms", zh: "计划 {due} req/s，实际发送 {sent} req/s（目标 {target}），发送延后 p50 {p50} ms、p99 {p99} ms" }
    PacingClientBound { en: "the client could not keep up (see the CLIENT-BOUND line): rerun with more client cores or machines", zh: "客户端跟不上（见 CLIENT-BOUND 行）：请用更多客户端核或机器重新运行" }
    PacingCapHeld { en: "the --max-concurrency {n} cap held requests back: all {n} connections were busy, so requests waited in the client's queue (p99 {queue} ms) — the server is slower than the rate needs at that cap", zh: "--max-concurrency {n} 的上限拖住了请求：{n} 个连接全忙，请求在客户端队列中等待（p99 {queue} ms）——在这个上限下服务器慢于该速率的要求" }
    PacingServerHeld { en: "the server held requests back: requests waited {queue} ms (p99) for new connections to open", zh: "服务器拖住了请求：请求等待新连接建立用了 {queue} ms（p99）" }
    PacingClientLate { en: "the client could not keep up: it sent requests late although its CPU and scheduling looked healthy (a timer or the machine's load)", zh: "客户端跟不上：虽然其 CPU 和调度看起来正常，请求仍发送延后（计时器或机器负载所致）" }
    PacingNotAsAsked { en: "LOAD NOT AS ASKED: {what}; {cause}.", zh: "LOAD NOT AS ASKED（负载未达要求）：{what}；{cause}。" }
    SloAnd { en: "{rest} and {last}", zh: "{rest} 和 {last}" }
    SloNoData { en: "no data", zh: "无数据" }
    SloCheck { en: "{metric} {actual} (limit {limit})", zh: "{metric} {actual}（上限 {limit}）" }

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
    IslWithSystem { en: " with its system prompt (--isl is the unique part)", zh: "（含系统提示词；--isl 指不重复的部分）" }
    IslTooShort { en: "{flag} {n} is too short: the server adds {overhead} tokens around each prompt{system}, and 3 words keep prompts distinct; ask for at least {floor}", zh: "{flag} {n} 太短：服务器在每个 prompt 周围添加 {overhead} 个 token{system}，另需 3 个词使各 prompt 互不相同；请至少设为 {floor}" }
    DatasetLoadFailed { en: "loading the dataset failed: {error}", zh: "加载数据集失败：{error}" }
    DatasetRowError { en: "dataset row {row}: {error}", zh: "数据集第 {row} 行：{error}" }
    NoTokenizeEndpoint { en: "--length-probe tokenize: {url} does not answer token counts; use --length-probe usage or --tokenizer FILE", zh: "--length-probe tokenize：{url} 不返回 token 数；请用 --length-probe usage 或 --tokenizer FILE" }
    NoTokenExactPrompts { en: "cannot make token-exact prompts: {error}; give --tokenizer FILE", zh: "无法生成精确到 token 的 prompt：{error}；请给出 --tokenizer FILE" }
    TooFewOneTokenWords { en: "only {n} of llm-bench's prompt words are one token for this server; give --tokenizer FILE or use -pp", zh: "对这个服务器来说，llm-bench 的 prompt 词中只有 {n} 个是单个 token；请给出 --tokenizer FILE 或使用 -pp" }
    LengthProbeFailed { en: "a probe request failed ({class}: {message})", zh: "一个探测请求失败（{class}：{message}）" }
    NoUsageCounts { en: "the server sends no usage counts", zh: "服务器不返回用量统计" }
    TokenizeStatus { en: "/tokenize answered HTTP {status}", zh: "/tokenize 返回 HTTP {status}" }
    TokenizeNotAList { en: "/tokenize answered something else than a token list", zh: "/tokenize 返回的不是 token 列表" }
    OutIsFile { en: "results folder {dir} is a file; give a folder with --out", zh: "结果文件夹 {dir} 是一个文件；请用 --out 指定文件夹" }
    OutUncreatable { en: "cannot create results folder {dir}: {error}; choose another with --out", zh: "无法创建结果文件夹 {dir}：{error}；请用 --out 另选一个" }
    OutUnwritable { en: "{error}; choose another results folder with --out", zh: "{error}；请用 --out 另选结果文件夹" }
    SummaryUnserialisable { en: "cannot serialise the summary: {error}", zh: "无法序列化汇总：{error}" }
    CannotWrite { en: "cannot write {path}: {error}", zh: "无法写入 {path}：{error}" }
    CannotWriteAnyMore { en: "cannot write {path} any more ({error})", zh: "已无法继续写入 {path}（{error}）" }
    RemovedDuringRun { en: "{path} was removed during the run", zh: "{path} 在运行期间被删除" }
    CannotRead { en: "cannot read {path}: {error}", zh: "无法读取 {path}：{error}" }
    EmbedBatchNeedsEmbeddings { en: "--embed-batch is for --endpoint embeddings", zh: "--embed-batch 只用于 --endpoint embeddings" }
    EmbeddingsNoTurns { en: "--turns makes conversations; embeddings requests have none: drop --turns", zh: "--turns 用于多轮对话；嵌入请求没有对话：请去掉 --turns" }
    EmbeddingsNoMultimodal { en: "--endpoint embeddings has no multimodal test; drop -mm (the text tests send embeddings requests)", zh: "--endpoint embeddings 没有多模态测试；请去掉 -mm（文本测试发送的是嵌入请求）" }
    EmbeddingsOneTest { en: "with --endpoint embeddings -i and -o send the same embeddings request; give one of them", zh: "使用 --endpoint embeddings 时 -i 和 -o 发送相同的嵌入请求；请只给其中一个" }
    EmbeddingsSloE2eOnly { en: "--endpoint embeddings has no TTFT, TPOT or ITL: its --slo can bound only e2e, e.g. --slo e2e_p99=500ms", zh: "--endpoint embeddings 没有 TTFT、TPOT 或 ITL：其 --slo 只能限制 e2e，例如 --slo e2e_p99=500ms" }
    DurationTwice { en: "give either -d/--duration-hours or --duration, not both", zh: "请只给 -d/--duration-hours 或 --duration 中的一个，不要同时给" }
    StepDurationStepOnly { en: "--step-duration is for step mode; a stress run (-d/--duration) already runs back to back", zh: "--step-duration 只用于阶梯模式；压力测试（-d/--duration）本来就连续运行" }
    RequestsStepOnly { en: "--requests is for step mode; a stress run (-d/--duration) runs for its duration", zh: "--requests 只用于阶梯模式；压力测试（-d/--duration）按其时长运行" }
    StressOneRate { en: "a stress run takes one --rate; give a list for a step sweep instead", zh: "压力测试只接受一个 --rate；要做阶梯扫描，请给出一个列表" }
    RequestsOrDurationWhy { en: "give either --requests or --step-duration, not both: a step ends after a number of requests or after a time", zh: "请只给 --requests 或 --step-duration 中的一个，不要同时给：一步要么在一定数量的请求后结束，要么在一段时间后结束" }
    RateStepNeedsLength { en: "a --rate step needs a length: add --step-duration (e.g. 30s) or --requests (e.g. 200)", zh: "--rate 的每一步需要长度：请加 --step-duration（例如 30s）或 --requests（例如 200）" }
    WarmupNeedsLength { en: "--warmup needs --step-duration or --requests (or a stress run): a one-request-per-connection step has no time to warm up", zh: "--warmup 需要 --step-duration 或 --requests（或压力测试）：每个连接一个请求的步没有预热时间" }
    RampUpNeedsLength { en: "--ramp-up needs --step-duration or --requests (or a stress run): a one-request-per-connection step has nothing to ramp", zh: "--ramp-up 需要 --step-duration 或 --requests（或压力测试）：每个连接一个请求的步没有可以逐步加压的内容" }
    MonitorIntervalTooShort { en: "--monitor-interval must be at least 200ms (CPU use is measured between two samples)", zh: "--monitor-interval 至少为 200ms（CPU 使用率在两次采样之间测量）" }
    ReportIntervalTooShort { en: "--report-interval must be at least 1s", zh: "--report-interval 至少为 1s" }
    ModelEmpty { en: "--model is empty; give a model name or leave it out to ask the server", zh: "--model 为空；请给出模型名，或不写它让服务器决定" }
    CapacityOwnPoints { en: "capacity chooses its own load points: drop --rate and -d/--duration (use --by, --min and --max)", zh: "容量搜索自己选择负载点：请去掉 --rate 和 -d/--duration（使用 --by、--min 和 --max）" }
    CapacityNeedsSlo { en: "capacity needs --slo, e.g. --slo ttft_p99=500ms,tpot_p99=50ms: the search looks for the highest load that meets it", zh: "容量搜索需要 --slo，例如 --slo ttft_p99=500ms,tpot_p99=50ms：搜索的是满足它的最高负载" }
    CapacityOneTest { en: "capacity searches with one test: give one of -i, -o or -mm", zh: "容量搜索只用一个测试：请给出 -i、-o 或 -mm 中的一个" }
    CapacityMaxConcurrencyByRate { en: "--max-concurrency is for a search by rate; with --by concurrency the probes are concurrencies", zh: "--max-concurrency 只用于按速率搜索；使用 --by concurrency 时探测的就是并发数" }
    RequestsOrDuration { en: "give either --requests or --step-duration, not both", zh: "请只给 --requests 或 --step-duration 中的一个，不要同时给" }
    MultimodalNeedsChat { en: "the multimodal test needs the chat endpoint; drop --endpoint completions or -mm", zh: "多模态测试需要 chat 端点；请去掉 --endpoint completions 或 -mm" }
    ImageSizeNeedsMultimodal { en: "--image-size makes the multimodal test's images: add -mm", zh: "--image-size 用于生成多模态测试的图片：请加 -mm" }
    WarmupTooLong { en: "--warmup ({warmup}) must be shorter than {what} ({length})", zh: "--warmup（{warmup}）必须短于{what}（{length}）" }
    WhatStressRun { en: "the stress run", zh: "压力测试" }
    WhatEachProbe { en: "each probe (--step-duration)", zh: "每次探测（--step-duration）" }
    EndBelowStart { en: "-et/--end-threads ({end}) is smaller than -st/--start-threads ({start}); the last step must be at least the first", zh: "-et/--end-threads（{end}）小于 -st/--start-threads（{start}）；最后一步必须不小于第一步" }
    OpenLoopFlag { en: "{flag} is for open-loop runs: add --rate (requests per second); a closed loop's concurrency is -st", zh: "{flag} 用于开环运行：请加 --rate（每秒请求数）；闭环的并发由 -st 指定" }
    HeaderFormat { en: "-H expects `Name: value`, got `{got}`", zh: "-H 需要 `Name: value` 的形式，收到的是 `{got}`" }
    OpenLoopFlagNoTimestamps { en: "{flag} is for open-loop runs, and the dataset has no timestamps to replay: add --rate, or drop {flag}", zh: "{flag} 用于开环运行，而数据集没有可回放的时间戳：请加 --rate，或去掉 {flag}" }
    MaxBelowMin { en: "--max ({max}) is below --min ({min})", zh: "--max（{max}）小于 --min（{min}）" }
    SloEmpty { en: "no objectives given; write NAME=VALUE items like ttft=500ms,tpot_p99=50ms", zh: "没有给出任何目标；请写成 NAME=VALUE 的形式，例如 ttft=500ms,tpot_p99=50ms" }
    SloEmptyItem { en: "item {n} of `{spec}` is empty; separate items with one comma, like ttft=500ms,tpot=50ms", zh: "`{spec}` 的第 {n} 项为空；各项之间用一个逗号分隔，例如 ttft=500ms,tpot=50ms" }
    SloTwice { en: "`{name}` is given twice (`{first}` and `{second}`); keep one", zh: "`{name}` 给了两次（`{first}` 和 `{second}`）；请只保留一个" }
    SloNoEquals { en: "`{it}` has no value; write NAME=VALUE, like ttft=500ms", zh: "`{it}` 没有值；请写成 NAME=VALUE，例如 ttft=500ms" }
    SloTwoEquals { en: "`{it}` has more than one `=`; write one NAME=VALUE per item, separated by commas", zh: "`{it}` 中有多个 `=`；每项写一个 NAME=VALUE，用逗号分隔" }
    SloNoName { en: "`{it}` has no metric name; write NAME=VALUE, like ttft=500ms", zh: "`{it}` 没有指标名；请写成 NAME=VALUE，例如 ttft=500ms" }
    SloNoValue { en: "`{it}` has no value; write a time with a unit, like {name}=500ms", zh: "`{it}` 没有值；请写一个带单位的时间，例如 {name}=500ms" }
    SloUnknownMetric { en: "unknown metric `{name}` in `{it}`; use ttft, tpot, itl or e2e, optionally with _pNN like ttft_p99", zh: "`{it}` 中的指标 `{name}` 未知；请用 ttft、tpot、itl 或 e2e，可加 _pNN，例如 ttft_p99" }
    SloBadSuffix { en: "bad percentile suffix `_{suffix}` in `{it}`; write _pNN with NN above 0 and at most 100, like {base}_p99 or {base}_p99.9", zh: "`{it}` 中的百分位后缀 `_{suffix}` 无效；请写 _pNN，NN 大于 0 且不超过 100，例如 {base}_p99 或 {base}_p99.9" }
    SloBadPercentile { en: "bad percentile `p{digits}` in `{it}`; write _pNN with NN above 0 and at most 100, like {base}_p99 or {base}_p99.9", zh: "`{it}` 中的百分位 `p{digits}` 无效；请写 _pNN，NN 大于 0 且不超过 100，例如 {base}_p99 或 {base}_p99.9" }
    SloNotFinite { en: "`{v}` in `{it}` is not a finite time; write a number with a unit, like 500ms or 0.5s", zh: "`{it}` 中的 `{v}` 不是有限的时间；请写一个带单位的数，例如 500ms 或 0.5s" }
    SloNegative { en: "`{v}` in `{it}` is negative; a limit must be above zero, like 500ms", zh: "`{it}` 中的 `{v}` 是负数；上限必须大于零，例如 500ms" }
    SloNotATime { en: "`{v}` in `{it}` is not a time; write a number with a unit, like 500ms or 0.5s", zh: "`{it}` 中的 `{v}` 不是时间；请写一个带单位的数，例如 500ms 或 0.5s" }
    SloBadNumber { en: "bad number `{number}` in `{it}`; write a number with a unit, like 500ms or 0.5s", zh: "`{it}` 中的数 `{number}` 无效；请写一个带单位的数，例如 500ms 或 0.5s" }
    SloNoUnit { en: "`{it}` has no unit; write it with a unit, like 500ms or 2s", zh: "`{it}` 没有单位；请带上单位，例如 500ms 或 2s" }
    SloUnknownUnit { en: "unknown unit `{unit}` in `{it}`; use us (µs), ms or s, like 500ms or 2s", zh: "`{it}` 中的单位 `{unit}` 未知；请用 us（µs）、ms 或 s，例如 500ms 或 2s" }
    SloTooLarge { en: "`{v}` in `{it}` is too large; write a number with a unit, like 500ms or 0.5s", zh: "`{it}` 中的 `{v}` 太大；请写一个带单位的数，例如 500ms 或 0.5s" }
    SloZero { en: "`{v}` in `{it}` is zero; a limit must be above zero, like 500ms", zh: "`{it}` 中的 `{v}` 为零；上限必须大于零，例如 500ms" }
    LengthBeyondMax { en: "--{name} {v} is beyond the {max} tokens llm-bench builds", zh: "--{name} {v} 超出了 llm-bench 能构造的 {max} 个 token" }
    LengthSpreadNeedsMean { en: "--{name}-std/-min/-max need --{name}", zh: "--{name}-std/-min/-max 需要 --{name}" }
    LengthMinAboveMean { en: "--{name}-min {min} is above --{name} {mean}: lower it, or give --{name}-std for a spread", zh: "--{name}-min {min} 大于 --{name} {mean}：请调低它，或用 --{name}-std 给出分布" }
    LengthMinAboveMax { en: "--{name}-min {min} is above --{name}-max {max}", zh: "--{name}-min {min} 大于 --{name}-max {max}" }
    LengthOutside { en: "--{name} {mean} is outside [--{name}-min, --{name}-max]", zh: "--{name} {mean} 不在 [--{name}-min, --{name}-max] 范围内" }
    PrefixBeyondMax { en: "--prefix-groups {groups} × --prefix-tokens {tokens} is beyond the {max} prefix tokens llm-bench builds", zh: "--prefix-groups {groups} × --prefix-tokens {tokens} 超出了 llm-bench 能构造的 {max} 个前缀 token" }
    PrefixNeedsIsl { en: "--prefix-groups needs --isl for the unique part of each prompt", zh: "--prefix-groups 需要 --isl 来指定每个 prompt 不重复的部分" }
    TokenizerNeedsIsl { en: "--tokenizer is for token-exact prompts: add --isl N (or a Mooncake --dataset)", zh: "--tokenizer 用于精确到 token 的 prompt：请加 --isl N（或 Mooncake 格式的 --dataset）" }
    TraceSpeedNeedsDataset { en: "--trace-speed replays a dataset's timestamps: add --dataset FILE", zh: "--trace-speed 按数据集的时间戳回放：请加 --dataset FILE" }
    DatasetExcludesIsl { en: "--dataset sets the prompts: drop --isl/--prefix-groups", zh: "prompt 由 --dataset 决定：请去掉 --isl/--prefix-groups" }
    DatasetIslRange { en: "--dataset-min-isl {lo} is above --dataset-max-isl {hi}", zh: "--dataset-min-isl {lo} 大于 --dataset-max-isl {hi}" }
    ThinkTimeNeedsTurns { en: "--think-time needs --turns", zh: "--think-time 需要 --turns" }
    UnknownImageFormat { en: "unknown --image-format `{other}`; use png or jpeg", zh: "未知的 --image-format `{other}`；请用 png 或 jpeg" }
    ImagesNeedSize { en: "--images-per-request needs --image-size (the pictures llm-bench makes)", zh: "--images-per-request 需要 --image-size（llm-bench 生成的图片）" }
    UnknownLengthProbe { en: "unknown --length-probe `{other}`; use auto, tokenize or usage", zh: "未知的 --length-probe `{other}`；请用 auto、tokenize 或 usage" }

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
    HtmlChartInFlight { en: "Requests in flight over the run", zh: "进行中的请求数随时间变化" }
    HtmlSeriesInFlight { en: "in flight", zh: "进行中" }
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
    HtmlChartServerQueue { en: "Server requests running and waiting over the run", zh: "服务器运行中与排队的请求数随时间变化" }
    HtmlChartServerKv { en: "Server KV-cache use over the run", zh: "服务器 KV 缓存占用随时间变化" }
    HtmlAxisServerRequests { en: "requests (server)", zh: "请求数（服务器）" }
    HtmlAxisKvCache { en: "KV cache used (%)", zh: "KV 缓存占用（%）" }
    HtmlSeriesRunning { en: "running", zh: "运行中" }
    HtmlSeriesWaiting { en: "waiting", zh: "排队中" }
    HtmlSeriesKvCache { en: "KV cache", zh: "KV 缓存" }
    HtmlChartGpuPower { en: "GPU power over the run", zh: "GPU 功耗随时间变化" }
    HtmlChartGpuTemperature { en: "GPU temperature over the run", zh: "GPU 温度随时间变化" }
    HtmlChartGpuUtilization { en: "GPU utilisation over the run", zh: "GPU 利用率随时间变化" }
    HtmlAxisGpuPower { en: "power (W)", zh: "功耗（W）" }
    HtmlAxisGpuUtilization { en: "utilisation (%)", zh: "利用率（%）" }
    HtmlSeriesGpuSum { en: "all GPUs together", zh: "所有 GPU 合计" }
    HtmlSeriesGpuHottest { en: "hottest GPU", zh: "温度最高的 GPU" }
    HtmlSeriesGpuMean { en: "mean over the GPUs", zh: "各 GPU 平均" }
    HtmlThrottledBand { en: "a GPU slowed for power or heat", zh: "有 GPU 因功耗或温度降频" }
    HtmlColServerQueueMax { en: "server queue max", zh: "服务器排队最多" }
    HtmlColKvMax { en: "KV cache max (%)", zh: "KV 缓存最高（%）" }
    HtmlColPrefixHits { en: "prefix-cache hits (%)", zh: "前缀缓存命中（%）" }
    HtmlColServerTtft { en: "server TTFT p50 (ms)", zh: "服务器 TTFT p50（毫秒）" }
    HtmlColTokenCheck { en: "server token count", zh: "服务器 token 计数" }
    HtmlColEnergy { en: "GPU energy (kJ)", zh: "GPU 能耗（kJ）" }
    HtmlColTokPerJoule { en: "tok/J", zh: "token/焦耳" }
    HtmlColJoulePerRequest { en: "J/request", zh: "焦耳/请求" }
    HtmlTokenCheckOk { en: "✓ agrees", zh: "✓ 一致" }
    HtmlTokenCheckMismatch { en: "✗ differs: {diffs}", zh: "✗ 不一致：{diffs}" }
    HtmlTokenDiffPrompt { en: "prompt {pct}%", zh: "输入 {pct}%" }
    HtmlTokenDiffGenerated { en: "generated {pct}%", zh: "生成 {pct}%" }
    HtmlSourcesTitle { en: "Telemetry sources", zh: "遥测来源" }
    HtmlColSource { en: "source", zh: "来源" }
    HtmlColSourceKind { en: "kind", zh: "类型" }
    HtmlColSourceAbout { en: "what it reads", zh: "读取对象" }
    HtmlColSkipReason { en: "why samples were skipped", zh: "跳过采样的原因" }
    HtmlColSourceInterval { en: "every (s)", zh: "间隔（秒）" }
    HtmlColSamples { en: "samples", zh: "采样数" }
    HtmlColSkipped { en: "skipped", zh: "跳过" }

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

    // --- telemetry: server metrics, GPUs, energy (src/monitor, src/run/telemetry.rs) ---
    MetricsUrlInvalid { en: "{flag}: {error}", zh: "{flag} 的地址无效：{error}" }
    MetricsIntervalTooShort { en: "--metrics-interval must be at least 100ms", zh: "--metrics-interval 至少为 100ms" }
    ServerMetricsOn { en: "Server metrics: {url} ({engine} families), every {interval}", zh: "服务器指标：{url}（{engine} 指标族），每 {interval} 采样一次" }
    ServerMetricsUnknownEngine { en: "no known engine's", zh: "未识别引擎的" }
    ServerMetricsNone { en: "Server metrics: none at {url} ({why}); --server-metrics URL names another", zh: "服务器指标：{url} 没有（{why}）；可用 --server-metrics URL 指定其他地址" }
    ServerMetricsAskedFailing { en: "Server metrics: no usable answer from {url} at pre-flight ({why}); trying again every {interval}", zh: "服务器指标：预检时 {url} 没有可用的应答（{why}）；之后每 {interval} 重试" }
    GpuNvmlOn { en: "GPU telemetry: {n} GPU(s) through NVML ({names}), every {interval}", zh: "GPU 遥测：通过 NVML 读取 {n} 块 GPU（{names}），每 {interval} 采样一次" }
    GpuNotAvailable { en: "GPU telemetry is not available: {why}", zh: "GPU 遥测不可用：{why}" }
    GpuRemoteServer { en: "GPU telemetry: the server is not on this machine; --gpu-metrics URL reads its DCGM exporter", zh: "GPU 遥测：服务器不在本机；可用 --gpu-metrics URL 读取其 DCGM exporter" }
    GpuDcgmOn { en: "GPU telemetry: {n} GPU(s) from the DCGM exporter at {url}, every {interval}", zh: "GPU 遥测：从 {url} 的 DCGM exporter 读取 {n} 块 GPU，每 {interval} 采样一次" }
    GpuDcgmFailing { en: "GPU telemetry: no usable answer from {url} at pre-flight ({why}); trying again every {interval}", zh: "GPU 遥测：预检时 {url} 没有可用的应答（{why}）；之后每 {interval} 重试" }
    TelemetryFileUnwritable { en: "telemetry files could not be created in {dir}: {error}; samples are kept in summary.json only", zh: "无法在 {dir} 创建遥测文件：{error}；采样只保存在 summary.json 中" }
    TelemetrySkipped { en: "{source}: {n} sample(s) skipped ({why})", zh: "{source}：跳过了 {n} 次采样（{why}）" }
    TelemetryServer { en: "server: {items}", zh: "服务器：{items}" }
    TelemetryRunning { en: "{mean} running (max {max})", zh: "运行中 {mean}（最多 {max}）" }
    TelemetryWaiting { en: "{mean} waiting (max {max})", zh: "排队 {mean}（最多 {max}）" }
    TelemetryKv { en: "KV cache {mean}% (max {max}%)", zh: "KV 缓存 {mean}%（最高 {max}%）" }
    TelemetryPrefixHits { en: "prefix-cache hits {pct}%", zh: "前缀缓存命中 {pct}%" }
    TelemetryPreemptions { en: "{n} preempted", zh: "抢占 {n} 次" }
    TelemetryGpus { en: "GPUs ({n}): {items}", zh: "GPU（{n} 块）：{items}" }
    TelemetryGpuBusy { en: "{pct}% busy", zh: "利用率 {pct}%" }
    TokensGenerated { en: "generated tokens", zh: "生成 token" }
    TokensPrompt { en: "prompt tokens", zh: "提示 token" }
    TokenMismatch { en: "The server counted {server} {what} at {point}, llm-bench {ours} ({diff}%): other traffic on the server, or a counting difference.", zh: "{point} 时服务器统计的{what}为 {server}，llm-bench 为 {ours}（相差 {diff}%）：服务器上有其他流量，或计数方式不同。" }
    AtPoint { en: "At {point}", zh: "在{point}时" }
    PastPoint { en: "Past {point}", zh: "超过{point}后" }
    ServerMemoryBound { en: "{when} the server queued up to {waiting} requests and its KV cache was {kv}% full: it is memory-bound; more concurrency only adds waiting.", zh: "{when}，服务器最多有 {waiting} 个请求排队，KV 缓存占用 {kv}%：受显存限制；再增加并发只会增加等待。" }
    ServerBatchBound { en: "{when} the server queued up to {waiting} requests while running at most {running}: its batch (slots) is full; more concurrency only adds waiting.", zh: "{when}，服务器最多有 {waiting} 个请求排队，同时最多运行 {running} 个：批处理（槽位）已满；再增加并发只会增加等待。" }
    ServerPreempted { en: "The server preempted {n} requests at {point}: its KV cache is too small for this load, and preempted requests are computed again.", zh: "{point} 时服务器抢占了 {n} 个请求：KV 缓存对这个负载太小，被抢占的请求会重新计算。" }
    ServerPrefixOff { en: "Prefix-cache hit rate {pct}% although prompts share a {tokens}-token prefix: is prefix caching enabled?", zh: "提示共享 {tokens} 个 token 的前缀，但前缀缓存命中率为 {pct}%：前缀缓存是否已开启？" }
    ServerTtftOutside { en: "At {point} our TTFT p50 was {ours} ms, the engine's own {engine} ms: {outside} ms went to the network, HTTP and queueing in front of the engine.", zh: "{point} 时我们测得的 TTFT p50 为 {ours} ms，引擎自己的为 {engine} ms：有 {outside} ms 花在网络、HTTP 和引擎前的排队上。" }
    EnergyPerRequest { en: ", {j} J per request", zh: "，每个请求 {j} J" }
    EnergyBest { en: "Most output tokens per joule at {point}: {tpj} tok/J ({kj} kJ over the step{per_request}; idle power included).", zh: "{point} 时每焦耳输出 token 最多：{tpj} tok/J（本步共 {kj} kJ{per_request}；含空闲功耗）。" }
    GpuThrottledAt { en: "GPU {gpu} was slowed {why} {pct}% of the time at {point}.", zh: "{point} 时 GPU {gpu} 有 {pct}% 的时间{why}降频。" }
    ThrottleForPower { en: "for power", zh: "因功耗" }
    ThrottleForHeat { en: "for heat", zh: "因温度" }
    DriftThroughputFell { en: "Throughput fell {pct}% between the first and the last {k} interval(s)", zh: "吞吐量在前 {k} 个和最后 {k} 个区间之间下降了 {pct}%" }
    DriftThroughputRose { en: "Throughput rose {pct}% between the first and the last {k} interval(s)", zh: "吞吐量在前 {k} 个和最后 {k} 个区间之间上升了 {pct}%" }
    DriftThroughputHeld { en: "Throughput held within {pct}% between the first and the last {k} interval(s)", zh: "吞吐量在前 {k} 个和最后 {k} 个区间之间的变化在 {pct}% 以内" }
    DriftGpuTemperature { en: " and its temperature went from {from} to {to} °C", zh: "，温度从 {from} °C 变为 {to} °C" }
    DriftGpuThrottled { en: " while GPU {gpu} was slowed {why} {pct}% of the time{heat}.", zh: "，同时 GPU {gpu} 有 {pct}% 的时间{why}降频{heat}。" }
    DriftGpuNotThrottled { en: " while GPU {gpu} was never slowed for power or heat{heat}.", zh: "，GPU {gpu} 从未因功耗或温度降频{heat}。" }

    // --- distributed runs: shards, run id, synchronised start (src/cli/distributed.rs, src/run) ---
    ShardInvalid { en: "--shard: {error}", zh: "--shard 参数无效：{error}" }
    ShardNotIN { en: "`{text}` is not I/N (e.g. 0/4)", zh: "`{text}` 不是 I/N 的形式（例如 0/4）" }
    ShardNotNumber { en: "`{text}`: I and N must be whole numbers", zh: "`{text}`：I 和 N 必须是整数" }
    ShardCountZero { en: "the number of shards must be at least 1", zh: "分片数至少为 1" }
    ShardIndexTooHigh { en: "shard index {index} is not below the number of shards {count} (indexes start at 0)", zh: "分片序号 {index} 必须小于分片数 {count}（序号从 0 开始）" }
    ShardsNeedIndex { en: "--shards N needs {env} (set by a Kubernetes Indexed Job) or --shard I/N", zh: "--shards N 需要环境变量 {env}（由 Kubernetes Indexed Job 设置）或 --shard I/N" }
    ShardIndexNotNumber { en: "{env}={value} is not a shard index (a whole number)", zh: "{env}={value} 不是分片序号（应为整数）" }
    StartAtInvalid { en: "--start-at {value} is not an RFC 3339 time; write it like 2026-12-01T12:00:00Z", zh: "--start-at {value} 不是 RFC 3339 时间；请写成 2026-12-01T12:00:00Z 这样" }
    RunIdInvalid { en: "--run-id {value}: use 1–63 letters, digits, '-', '_' or '.'", zh: "--run-id {value}：请使用 1–63 个字母、数字、'-'、'_' 或 '.'" }
    ShardHeader { en: "Shard {shard} of run {run_id}: {share}", zh: "运行 {run_id} 的分片 {shard}：{share}" }
    ShardShare { en: "{share} of {point} (first step)", zh: "{point} 中的 {share}（第一步）" }
    StartWaiting { en: "Ready; the first step starts at {at} (in {wait})", zh: "已就绪；第一步于 {at} 开始（还有 {wait}）" }
    StartLate { en: "Ready {late} after the start time {at}: this shard starts late, by that much", zh: "在开始时间 {at} 之后 {late} 才就绪：本分片晚开始了这么久" }
    StepWokenLate { en: "{point} started {late} after its scheduled time, its connections ready: this machine was slow to wake it (a busy core)", zh: "{point} 比计划时间晚 {late} 开始（连接早已就绪）：本机未能及时唤醒它（CPU 繁忙）" }
    ClockOffset { en: "Clock: the server's is {offset} ms {side} this machine's (± {plusminus} ms, {probes} probes of its Date header)", zh: "时钟：服务器时钟{side}本机 {offset} ms（± {plusminus} ms，探测其 Date 头 {probes} 次）" }
    ClockAhead { en: "ahead of", zh: "快于" }
    ClockBehind { en: "behind", zh: "慢于" }
    ClockUnavailable { en: "Clock: no offset estimate ({why}); the merge cannot say how far the shards' clocks disagree", zh: "时钟：无法估计偏差（{why}）；合并时无法说明各分片时钟相差多少" }
    ClockNoDate { en: "the server's answers carry no Date header", zh: "服务器的响应没有 Date 头" }
    ClockInconsistent { en: "a clock stepped while probing", zh: "探测期间时钟发生了跳变" }
    StepsNotAligned { en: "{point} and the steps after it start when the step before them ends, on each shard separately (not on the --start-at schedule): a step that ends by a request count (one request per connection, --requests) has no length known ahead; give --step-duration to keep every step aligned across shards", zh: "{point} 及其后的各步在上一步结束时开始，各分片各自开始（不按 --start-at 的时间表）：按请求数结束的步（每个连接一个请求，或 --requests）事先不知道时长；请给出 --step-duration，让每一步在各分片间对齐" }
    StepLate { en: "{point} started {late} after its scheduled time (the previous step ran past its slot)", zh: "{point} 比计划时间晚 {late} 开始（上一步超出了它的时段）" }

    // --- llm-bench merge (src/run/merge.rs) ---
    MergeNoSummary { en: "{dir} has no summary.json; give each shard's results folder", zh: "{dir} 中没有 summary.json；请给出每个分片的结果文件夹" }
    MergeNoRecords { en: "{dir} has no requests.jsonl; give each shard's results folder", zh: "{dir} 中没有 requests.jsonl；请给出每个分片的结果文件夹" }
    MergeUnreadable { en: "{dir}/summary.json cannot be read: {error}", zh: "无法读取 {dir}/summary.json：{error}" }
    MergeNotShard { en: "{dir} is not a shard of a distributed run (its summary.json has no run_id or shard); run it with --shard I/N", zh: "{dir} 不是分布式运行的分片（其 summary.json 没有 run_id 或 shard）；请用 --shard I/N 运行" }
    MergeRunId { en: "{dir} belongs to run {id}, {first_dir} to run {first}: merge the shards of one run", zh: "{dir} 属于运行 {id}，{first_dir} 属于运行 {first}：请合并同一次运行的分片" }
    MergeShardCount { en: "{dir} is one of {count} shards, {first_dir} one of {first}: the shards of one run share --shard I/N's N", zh: "{dir} 是 {count} 个分片之一，{first_dir} 是 {first} 个分片之一：同一次运行的分片的 --shard I/N 中 N 相同" }
    MergeShardTwice { en: "shard {index} is given twice: {first_dir} and {dir}", zh: "分片 {index} 出现了两次：{first_dir} 和 {dir}" }
    MergeShardMissing { en: "shard {missing} of {count} of run {run_id} is missing (have {have}); --allow-partial merges what is there", zh: "运行 {run_id} 的 {count} 个分片中缺少分片 {missing}（已有 {have}）；--allow-partial 会合并现有的分片" }
    MergeConfigDiffers { en: "{dir} was run with another configuration than {first_dir}: `{key}` differs", zh: "{dir} 的配置与 {first_dir} 不同：`{key}` 不一致" }
    MergeStepsDiffer { en: "{dir} ran other steps than {first_dir}: step {n} is {theirs} there, {ours} in {first_dir}", zh: "{dir} 运行的步骤与 {first_dir} 不同：第 {n} 步在那里是 {theirs}，在 {first_dir} 中是 {ours}" }
    MergeNoStep { en: "none", zh: "无" }
    MergePartial { en: "partial merge: shard {missing} of {count} missing; the figures are those of the shards present", zh: "部分合并：{count} 个分片中缺少分片 {missing}；各项数据只来自现有的分片" }
    MergeMerged { en: "merged {shards} shards of run {run_id} from {n} records", zh: "根据 {n} 条记录合并了运行 {run_id} 的 {shards} 个分片" }
    MergeSkipped { en: "merged {shards} shards of run {run_id} from {n} records ({bad} unreadable lines skipped)", zh: "根据 {n} 条记录合并了运行 {run_id} 的 {shards} 个分片（跳过了 {bad} 行无法读取的内容）" }
    MergeWritten { en: "merged results: {dir}", zh: "合并结果：{dir}" }
    MergeIntervalsLeftOut { en: "stress intervals {from} to {to} are not merged: shard {shards} ended with only {n}; every request still counts in the totals", zh: "压力测试区间 {from} 到 {to} 未合并：分片 {shards} 结束时只有 {n} 个区间；所有请求仍计入总计" }
    MergeIntervalsLate { en: "shard {shards} closed some stress intervals late, off its report-interval grid or two or more report intervals as one (its process was starved): the merged intervals take each shard's share of them from its grid", zh: "分片 {shards} 有些压力测试区间关闭得晚，偏离了它的报告间隔网格，或把两个及以上报告间隔合成了一个（其进程得不到 CPU）：合并区间按各分片自己的网格取它的那一份" }
    MergeLateRecords { en: "records out of order: {n} came in their shard's requests.jsonl more than a report interval after records that ended later, when their stress interval had closed; they count in the totals, not in that interval", zh: "乱序记录：有 {n} 条记录在其分片的 requests.jsonl 中比更晚结束的记录晚出现超过一个报告间隔，此时所属的压力测试区间已经关闭；它们计入总计，但不计入该区间" }
    MergeClocksDisagree { en: "the shards' clocks disagree by {spread} ms (each estimate within ± {within} ms, from the server's Date header): their steps started that much apart, whatever their start lateness says; synchronise the nodes' clocks (NTP)", zh: "各分片时钟相差 {spread} ms（每个估计误差 ± {within} ms，来自服务器的 Date 头）：无论其启动延迟如何记录，各步实际上相差这么久开始；请同步各节点时钟（NTP）" }
    MergeOutIsAShard { en: "--out {dir} is one of the shards' folders; give a new folder for the merge", zh: "--out {dir} 是某个分片的文件夹；请为合并结果指定一个新文件夹" }
    MergeSpreads { en: "Start spread between the shards: {start} ms; their clocks: {clock} ms apart (each ± {within} ms); merged in {secs} s", zh: "分片之间的启动差：{start} ms；时钟相差：{clock} ms（各 ± {within} ms）；合并用时 {secs} s" }
    MergeCannotCreate { en: "cannot create {dir}: {error}", zh: "无法创建 {dir}：{error}" }
    MergeStep { en: "{test} at {load}", zh: "{load} 时的 {test}" }
    MergeStepRepeat { en: "{test} at {load} (repetition {r})", zh: "{load} 时的 {test}（第 {r} 次重复）" }
    // --- k8s-job (src/k8s) ---
    K8sHeader { en: "llm-bench k8s-job: run {id}, {shards} shard(s) of the image {image}", zh: "llm-bench k8s-job：运行 {id}，镜像 {image}，共 {shards} 个分片" }
    K8sHeaderRunId { en: "run id: {id}", zh: "运行 ID：{id}" }
    K8sHeaderStartAt { en: "start at: {at} (now + {start_in}); apply this file before then: every shard waits for that time, and one that starts later records how late", zh: "开始时间：{at}（当前时间 + {start_in}）；请在此之前应用本文件：每个分片都等到这个时间才开始，晚开始的分片会记录晚了多久" }
    K8sHeaderClaim { en: "results: the claim {claim}, mounted at /results in every pod, gets {dir}/shard-0 … shard-{last} and {dir}/merged; it must be ReadWriteMany when the pods land on several nodes", zh: "结果：每个 Pod 都把存储卷声明 {claim} 挂载在 /results，分片写入 {dir}/shard-0 … shard-{last}，合并结果写入 {dir}/merged；Pod 分布在多个节点上时，它必须是 ReadWriteMany" }
    K8sHeaderSteps { en: "Steps (docs/distributed.md has them in full):", zh: "步骤（完整说明见 docs/distributed.md）：" }
    K8sStepApply { en: "1. create both Jobs: {command}", zh: "1. 创建两个 Job：{command}" }
    K8sStepWait { en: "2. wait until every shard has finished (the timeout longer than the run): {command}", zh: "2. 等待所有分片完成（超时要长于整个运行）：{command}" }
    K8sStepMerge { en: "3. start the merge Job, which waits suspended until then: {command}", zh: "3. 启动合并 Job（在此之前它处于暂停状态）：{command}" }
    K8sStepMergeWait { en: "4. wait for the merge: {command}", zh: "4. 等待合并完成：{command}" }
    K8sStepCopy { en: "5. copy {dir} out with kubectl cp from a pod that mounts the claim (docs/distributed.md, \"Copy the results out\"), then open its report.html", zh: "5. 用 kubectl cp 从挂载该存储卷声明的 Pod 中把 {dir} 复制出来（见 docs/distributed.md 的“Copy the results out”），然后打开其中的 report.html" }
    K8sShardJobNote { en: "The shards: one pod per shard index; a failed shard fails the Job and is not run again", zh: "分片：每个分片序号一个 Pod；任何一个分片失败，整个 Job 即失败，不会重跑" }
    K8sMergeJobNote { en: "The merge: created suspended; resume it (step 3) once the shards' Job is complete", zh: "合并：创建时处于暂停状态；分片的 Job 完成后再恢复它（第 3 步）" }
    K8sNoUrl { en: "the run arguments (after --) have no --url: in a pod the default {url} is the pod itself; give the server's address, e.g. -- -u http://my-server.my-namespace.svc:8000/v1 …", zh: "运行参数（-- 之后）没有 --url：在 Pod 里默认地址 {url} 指向 Pod 自己；请给出服务器地址，例如 -- -u http://my-server.my-namespace.svc:8000/v1 …" }
    K8sInlineKey { en: "the run arguments carry an API key ({what}): the Job would keep it in plain text; put it in a Secret and give --api-key-secret NAME[:KEY] instead", zh: "运行参数中带有 API 密钥（{what}）：Job 会以明文保存它；请把它放进 Secret，改用 --api-key-secret NAME[:KEY]" }
    K8sInlineHeader { en: "the header {name} in the run arguments looks like a credential: the Job would keep it in plain text; put it in a Secret and give --api-key-secret NAME[:KEY] (sent as Authorization: Bearer), or write the header's value as $(LLM_BENCH_API_KEY), which Kubernetes fills in from that Secret", zh: "运行参数中的请求头 {name} 看起来是凭据：Job 会以明文保存它；请把它放进 Secret 并使用 --api-key-secret NAME[:KEY]（以 Authorization: Bearer 发送），或把该请求头的值写成 $(LLM_BENCH_API_KEY)，由 Kubernetes 从该 Secret 填入" }
    K8sSetByManifest { en: "{flag} is set by the manifest for each shard: leave it out of the run arguments", zh: "{flag} 由清单为每个分片设置：请不要写在运行参数里" }
    K8sRunArgsInvalid { en: "the run arguments (after --): {error}", zh: "运行参数（-- 之后）有误：{error}" }
    K8sRunArgsCommand { en: "the run arguments (after --) are the flags of a run; {name} is a command of its own", zh: "运行参数（-- 之后）应当是一次运行的参数；{name} 是另一个命令" }
    K8sBadName { en: "--name {value}: it names the Jobs, their pods and the run: use 1 to {max} lowercase letters, digits and '-', a letter first and no '-' last", zh: "--name {value}：它用作 Job、Pod 和运行的名字：请使用 1 到 {max} 个小写字母、数字和 '-'，以字母开头，不以 '-' 结尾" }
    K8sBadNamespace { en: "--namespace {value}: a namespace is 1 to 63 lowercase letters, digits and '-', beginning and ending with a letter or digit", zh: "--namespace {value}：命名空间由 1 到 63 个小写字母、数字和 '-' 组成，首尾须为字母或数字" }
    K8sBadClaim { en: "--pvc {value}: a claim's name is lowercase letters, digits, '-' and '.', each part beginning and ending with a letter or digit", zh: "--pvc {value}：存储卷声明的名字由小写字母、数字、'-' 和 '.' 组成，每一段首尾须为字母或数字" }
    K8sBadSecret { en: "--api-key-secret {value}: give NAME or NAME:KEY, NAME a Secret's name (lowercase letters, digits, '-' and '.') and KEY one of its keys (letters, digits, '-', '_' and '.')", zh: "--api-key-secret {value}：请写成 NAME 或 NAME:KEY，NAME 是 Secret 的名字（小写字母、数字、'-' 和 '.'），KEY 是其中的一个键（字母、数字、'-'、'_' 和 '.'）" }
    K8sBadQuantity { en: "{flag} {value} is not a Kubernetes quantity: write it like 500m or 2 (CPU), 512Mi or 2Gi (memory)", zh: "{flag} {value} 不是 Kubernetes 的数量写法：请写成 500m 或 2（CPU）、512Mi 或 2Gi（内存）这样" }
    K8sBadImage { en: "--image {value}: give an image reference without spaces, e.g. registry.example.com/llm-bench:0.1.0", zh: "--image {value}：请给出不含空格的镜像地址，例如 registry.example.com/llm-bench:0.1.0" }
    K8sCannotWrite { en: "cannot write the manifest: {error}", zh: "无法输出清单：{error}" }
}
