//! `imfed`: see `imfed --help`.

use std::process::ExitCode;

use clap::Parser;
use imfed::cli::Cli;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("IMFED_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("imfed: cannot start the runtime: {error}");
            return ExitCode::from(imfed::exit_code::USAGE);
        }
    };
    let code = runtime.block_on(async {
        let cancel = CancellationToken::new();
        let signals = cancel.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            eprintln!(
                "imfed: stopping; reports of a run cover what ran (signal again to exit at once)"
            );
            signals.cancel();
            wait_for_signal().await;
            std::process::exit(i32::from(imfed::exit_code::INTERRUPTED));
        });
        imfed::cli::main(cli, cancel).await
    });
    // Background tasks (servers stopped already) must not hold the process.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    ExitCode::from(code)
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
