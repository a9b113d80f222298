//! The `chatpulse` binary: parse arguments, load the config, call the library,
//! turn the outcome into an exit code (README, "Commands"). Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use chatpulse::config::Config;

#[derive(Parser)]
#[command(
    name = "chatpulse",
    version,
    about = "Outage monitor for messaging platforms: BGP, DNS and HTTP, with root causes"
)]
struct Cli {
    /// Config file.
    #[arg(long, global = true, env = "CHATPULSE_CONFIG", default_value = "./config.toml")]
    config: PathBuf,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Less log output (repeat for less).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    quiet: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Schedule every probe, serve HTTP, keep history, send alerts.
    Run,
    /// Run one round of probes and print the results.
    Check {
        /// Only this service's probes.
        #[arg(long)]
        service: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the config and print what would be monitored.
    Validate,
    /// Uptime per service from the history store.
    Uptime {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// How far back (humantime: 30d, 24h).
        #[arg(long, default_value = "30d")]
        window: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Incidents from the history store.
    Incidents {
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// How far back (humantime: 30d, 24h).
        #[arg(long, default_value = "30d")]
        since: String,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Alerts waiting for delivery; `outbox drop ID` gives one up.
    Outbox {
        /// Only this channel's (`email`, `webhook-1`, …).
        #[arg(long)]
        channel: Option<String>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Replay MRT files through the BGP engine: visibility timeline and alerts.
    Replay {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// MRT files (RIB dumps, update files; .gz, .bz2 or plain), in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Give one waiting message up, recorded as failed.
    Drop {
        /// Its id, as `chatpulse outbox` lists it.
        id: i64,
    },
}

fn init_logging(cli: &Cli) {
    let level = match i16::from(cli.verbose) - i16::from(cli.quiet) {
        i16::MIN..=-2 => "error",
        -1 => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("CHATPULSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("warn,chatpulse={level}")));
    let colors = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colors);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn parse_cli() -> Result<Cli, ExitCode> {
    Cli::try_parse().map_err(|e| {
        use clap::error::ErrorKind;
        match e.kind() {
            ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
                let _ = e.print();
                if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                }
            }
            _ => {
                // One sentence, not clap's usage block, but with everything
                // clap said before it: the missing argument's name, the
                // "similar argument" tip.
                let rendered = e.render().to_string();
                let said = rendered.split("\nUsage:").next().unwrap_or_default();
                let mut sentence = String::new();
                for line in said.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let line = line.trim_start_matches("error: ");
                    if !sentence.is_empty() {
                        sentence.push_str(if line.starts_with("tip:") { "; " } else { " " });
                    }
                    sentence.push_str(line);
                }
                if sentence.is_empty() {
                    sentence.push_str("invalid arguments");
                }
                eprintln!("chatpulse: {sentence} (see chatpulse --help)");
                ExitCode::from(2)
            }
        }
    })
}

fn load(cli: &Cli) -> Result<Config, ExitCode> {
    Config::load(&cli.config).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

/// One thread runs every probe, the verdict and the API: probes are I/O
/// waits, and keeping them on one thread avoids a cross-thread wake-up per
/// run (which cost more CPU than the probes themselves). Blocking work
/// (SQLite, MRT parsing) runs on its own threads.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    init_logging(&cli);
    // A panic is a bug, never a user's fault: log it as one line without a
    // backtrace (RUST_BACKTRACE=1 is common on servers, and resolving one
    // costs a hundred megabytes). The HTTP server answers such a request 500.
    std::panic::set_hook(Box::new(|info| {
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        tracing::error!("internal error (a bug in chatpulse, please report it): {what}{at}");
    }));
    // One process-wide rustls provider, so no TLS client (reqwest, lettre,
    // the websocket, the tls probe) has to choose between two at run time.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            // Our errors carry their causes in their one sentence; the
            // alternate form would repeat them.
            eprintln!("chatpulse: {e}");
            ExitCode::from(2)
        }
    }
}

fn history_result(result: Result<(), chatpulse::cmd::uptime::HistoryError>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("chatpulse: {e}");
            Ok(ExitCode::from(2))
        }
    }
}

/// A reader that went away (`chatpulse check | head`) is not an error: the
/// rest of the output is simply not wanted.
fn quiet_on_broken_pipe(printed: std::io::Result<()>) -> std::io::Result<()> {
    match printed {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<ExitCode> {
    let config = match load(cli) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    if matches!(cli.command, Command::Validate | Command::Run)
        && let Err(e) = config.check_secrets()
    {
        eprintln!("{e}");
        return Ok(ExitCode::from(2));
    }
    match &cli.command {
        Command::Validate => {
            if let Err(e) = chatpulse::store::check_directory(&config.storage.path) {
                eprintln!("chatpulse: {}: {e}", config.storage.path.display());
                return Ok(ExitCode::from(2));
            }
            quiet_on_broken_pipe(chatpulse::cmd::validate::print_plan(&config, &mut std::io::stdout().lock()))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { service, json } => {
            let rows = runtime()?.block_on(chatpulse::cmd::check::round(&config, service.as_deref()))?;
            let verdicts = chatpulse::cmd::check::verdicts(&config, &rows);
            quiet_on_broken_pipe(chatpulse::cmd::check::print(&rows, &verdicts, *json, &mut std::io::stdout().lock()))?;
            Ok(if chatpulse::cmd::check::offline(&rows) {
                ExitCode::from(3)
            } else if chatpulse::cmd::check::all_passed(&rows) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Uptime { service, window, json } => history_result(chatpulse::cmd::uptime::uptime(
            &config,
            service.as_deref(),
            window,
            *json,
            &mut std::io::stdout().lock(),
        )),
        Command::Incidents { service, since, json } => history_result(chatpulse::cmd::uptime::incidents(
            &config,
            service.as_deref(),
            since,
            *json,
            &mut std::io::stdout().lock(),
        )),
        Command::Outbox { channel, json, action } => {
            use chatpulse::cmd::outbox;
            let out = &mut std::io::stdout().lock();
            let result = match action {
                Some(OutboxAction::Drop { id }) => outbox::drop(&config, *id, out),
                None => outbox::list(&config, channel.as_deref(), *json, out),
            };
            match result {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(outbox::OutboxError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("chatpulse: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Replay { json, files } => {
            use chatpulse::cmd::replay;
            if let Err(e) = replay::check_readable(files) {
                eprintln!("chatpulse: {e}");
                return Ok(ExitCode::from(2));
            }
            let result = replay::replay(&config, files, *json, &mut std::io::stdout().lock(), &mut std::io::stderr());
            match result {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("chatpulse: {e}");
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Run => {
            runtime()?.block_on(chatpulse::cmd::run::run(&cli.config, config))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
