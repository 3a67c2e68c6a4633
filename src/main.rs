fn main() -> std::process::ExitCode {
    llm_bench::app::main_with_args(std::env::args_os().collect())
}
