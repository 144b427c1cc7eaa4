//! The `rampart` binary.

use std::process::ExitCode;

use clap::Parser as _;
use rampart_cli::cli::{AuditCommand, Cli, Command, KeysCommand, SecretsCommand};
use rampart_cli::commands::{self, exit, unavailable};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => runtime()?.block_on(commands::serve::run(&args)),
        Command::Demo(args) => runtime()?.block_on(rampart_cli::demo::run(&args)),
        Command::Init(args) => runtime()?.block_on(commands::init::run(&args)),
        Command::Doctor(args) => Ok(commands::doctor::run(&args)),
        Command::Migrate(args) => runtime()?.block_on(commands::migrate::run(&args)),
        Command::Backup(_) => Ok(unavailable::run("backup", "F-BACKUP")),
        Command::Restore(_) => Ok(unavailable::run("restore", "F-BACKUP")),
        Command::Keys(KeysCommand::List(args)) => runtime()?.block_on(commands::keys::list(&args)),
        Command::Keys(KeysCommand::Rotate(args)) => {
            runtime()?.block_on(commands::keys::rotate(&args))
        }
        Command::Users(_) => Ok(unavailable::run("users", "F-USERS (identity)")),
        Command::Tokens(_) => Ok(unavailable::run("tokens", "F-APITOKEN (identity)")),
        Command::Secrets(SecretsCommand::Set(args)) => {
            runtime()?.block_on(commands::secrets::set(&args))
        }
        Command::Secrets(SecretsCommand::List(args)) => {
            runtime()?.block_on(commands::secrets::list(&args))
        }
        Command::Secrets(SecretsCommand::Rm(args)) => {
            runtime()?.block_on(commands::secrets::remove(&args))
        }
        Command::Audit(AuditCommand::Verify(args)) => {
            runtime()?.block_on(commands::audit::verify(&args))
        }
        Command::Audit(AuditCommand::Export(args)) => {
            runtime()?.block_on(commands::audit::export(&args))
        }
        Command::Admin(_) => Ok(unavailable::run("admin", "F-INIT first admin (identity)")),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
