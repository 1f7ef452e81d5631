//! `trunkline`, the reference PBX: reads one TOML file (or runs on the
//! built-in defaults), wires the SIP, registrar and CDR crates together,
//! serves the HTTP API (trunkline-api), and shuts down gracefully on
//! SIGTERM or Ctrl-C.
//!
//! ```text
//! trunkline                        run on the built-in configuration
//! trunkline --config FILE          run on FILE
//! trunkline check-config FILE      check FILE: exit 0 if valid, 1 with its faults
//! trunkline default-config         print the built-in configuration
//! ```
//!
//! Logs go to standard error (`RUST_LOG` filters them, `info` by
//! default); standard output carries what an operator reads: the demo
//! passwords and a `ready` line once every listener is up.

#![forbid(unsafe_code)]

mod calls;
mod config;
mod console;
mod hooks;
mod http;
mod pbx;

use config::{Config, ConfigError};
use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

const USAGE: &str = "\
usage: trunkline [--config FILE]
       trunkline check-config FILE
       trunkline default-config
       trunkline --help | --version";

/// What the command line asks for.
enum Command {
    Run(Option<String>),
    Check(String),
    PrintDefault,
    Help,
    Version,
}

fn command(args: &[String]) -> Option<Command> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Some(match args.as_slice() {
        [] => Command::Run(None),
        ["--config", file] => Command::Run(Some((*file).to_owned())),
        [flag] if flag.starts_with("--config=") => {
            Command::Run(Some(flag["--config=".len()..].to_owned()))
        }
        ["check-config", file] => Command::Check((*file).to_owned()),
        ["default-config"] => Command::PrintDefault,
        ["--help" | "-h" | "help"] => Command::Help,
        ["--version" | "-V"] => Command::Version,
        _ => return None,
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = command(&args) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match command {
        Command::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("trunkline {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Command::PrintDefault => {
            print!("{}", config::DEFAULT);
            ExitCode::SUCCESS
        }
        Command::Check(file) => match load(&file) {
            Ok(_) => {
                println!("{file}: ok");
                ExitCode::SUCCESS
            }
            Err(()) => ExitCode::FAILURE,
        },
        Command::Run(file) => {
            let config = match &file {
                Some(file) => load(file),
                None => {
                    Config::parse(config::DEFAULT).map_err(|errors| report("built-in", &errors))
                }
            };
            match config {
                Ok(config) => run(config, file.map(Into::into)),
                Err(()) => ExitCode::FAILURE,
            }
        }
    }
}

/// Reads and checks `file`; its faults go to standard error.
fn load(file: &str) -> Result<Config, ()> {
    let text = std::fs::read_to_string(Path::new(file)).map_err(|e| {
        eprintln!("{file}: cannot read: {e}");
    })?;
    Config::parse(&text).map_err(|errors| report(file, &errors))
}

fn report(file: &str, errors: &[ConfigError]) {
    for error in errors {
        eprintln!("{error}");
    }
    let s = if errors.len() == 1 { "" } else { "s" };
    eprintln!("{file}: {} error{s} in the configuration", errors.len());
}

fn run(config: Config, file: Option<std::path::PathBuf>) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(pbx::run(config, file));
    // Whatever a task still holds is dropped now; none should take long.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::FAILURE
        }
    }
}
