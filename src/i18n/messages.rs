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
    // llm-bench report DIR, requests.csv, --export (src/run/rebuild.rs, src/report/csv.rs, src/report/export.rs)
    ReportNoRecords { en: "{dir} has no requests.jsonl; give a results folder of llm-bench", zh: "{dir} 中没有 requests.jsonl；请给出 llm-bench 的结果文件夹" }
    ReportRebuilt { en: "rebuilt from {n} records of requests.jsonl", zh: "根据 requests.jsonl 中的 {n} 条记录重建" }
    ReportRebuiltSkipped { en: "rebuilt from {n} records of requests.jsonl ({bad} unreadable lines skipped)", zh: "根据 requests.jsonl 中的 {n} 条记录重建（跳过了 {bad} 行无法读取的内容）" }
    ReportNote { en: "note: {note}", zh: "注：{note}" }
    RequestsCsvWritten { en: "requests.csv: {rows} rows, one per request in requests.jsonl", zh: "requests.csv：{rows} 行，requests.jsonl 中每个请求一行" }
    ExportWritten { en: "{format} export: {file} ({n} results, one JSON object a line)", zh: "{format} 格式导出：{file}（{n} 条结果，每行一个 JSON 对象）" }
    CannotWrite { en: "cannot write {path}: {error}", zh: "无法写入 {path}：{error}" }
    ExportUnknownFormat { en: "--export: unknown format {format}; give one of: {formats} (e.g. --export vllm results.jsonl)", zh: "--export：未知格式 {format}；可用的格式：{formats}（例如 --export vllm results.jsonl）" }
    ExportNoFolder { en: "--export {file}: the folder {dir} does not exist; create it or choose another file", zh: "--export {file}：文件夹 {dir} 不存在；请先创建它，或另选一个文件" }
    ExportNotSaved { en: "The {format} export was not saved: {problem}", zh: "{format} 格式导出未能保存：{problem}" }
    RequestsCsvNotSaved { en: "requests.csv was not saved: {problem}", zh: "requests.csv 未能保存：{problem}" }

    // --- recommendations and sentences (src/metrics) ---
    NothingSucceeded { en: "[{test}] No request succeeded, so there is nothing to recommend.", zh: "[{test}] 没有一个请求成功，无法给出建议。" }

    // --- report.html and compare.html (src/report/html) ---
    HtmlTitle { en: "llm-bench report", zh: "llm-bench 测试报告" }

    // --- llm-bench compare (src/compare) ---
    CompareWithinNoise { en: "within noise", zh: "在噪声范围内" }

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
