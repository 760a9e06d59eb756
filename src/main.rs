//! The `slicewise` command line: a thin wrapper over [`slicewise::cli`].

fn main() -> std::process::ExitCode {
    slicewise::cli::main()
}
