//! The files a run writes when it ends, on request, besides summary.json: `requests.csv`
//! (`--csv-requests`) and another tool's result file (`--export FORMAT FILE`).
//!
//! requests.csv is made from the finished requests.jsonl in one streaming pass rather than
//! beside it during the load: it then has exactly the rows requests.jsonl has (never one more
//! or one fewer after a full disk or a crash between two flushes), and writing it costs the
//! client nothing while it measures. After a crash, `llm-bench report DIR --csv-requests`
//! makes it from what requests.jsonl kept.

use super::{Outcome, RunContext};
use crate::i18n::{tr, Msg};

/// Writes the files asked for; a file that cannot be written is warned about, and a complete
/// run then ends as `ResultsNotSaved`.
pub(crate) fn write_end_of_run_files(ctx: &mut RunContext, mut outcome: Outcome) -> Outcome {
    let mut failed = false;
    if ctx.config.csv_requests {
        if let Some(problem) = ctx.writer.flush() {
            ctx.reporter.warn_results_lost(&problem);
        }
        match crate::report::csv::requests_csv_from_jsonl(&ctx.config.out_dir) {
            Ok(rows) => ctx
                .reporter
                .line(&tr(Msg::RequestsCsvWritten, &[("rows", &rows.to_string())])),
            Err(problem) => {
                ctx.reporter
                    .warn(&tr(Msg::RequestsCsvNotSaved, &[("problem", &problem)]));
                failed = true;
            }
        }
    }
    if let Some(export) = &ctx.config.export {
        match export.write(&ctx.summary) {
            Ok(n) => ctx.reporter.line(&super::rebuild::export_line(export, n)),
            Err(problem) => {
                ctx.reporter.warn(&tr(
                    Msg::ExportNotSaved,
                    &[("format", &export.format.name()), ("problem", &problem)],
                ));
                failed = true;
            }
        }
    }
    if failed && outcome == Outcome::Complete {
        outcome = Outcome::ResultsNotSaved;
    }
    outcome
}
