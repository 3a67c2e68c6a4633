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

    // --- llm-bench compare (src/compare) ---
    CompareWithinNoise { en: "within noise", zh: "在噪声范围内" }

    // --- live view (src/report/live) ---
    LiveStep { en: "step {n}/{total}", zh: "第 {n}/{total} 步" }
}
