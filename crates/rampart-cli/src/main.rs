//! The `rampart` binary.

use std::process::ExitCode;

use clap::Parser as _;
use rampart_cli::cli::{
    AdminCommand, AuditCommand, Cli, Command, KeysCommand, SecretsCommand, TokensCommand,
    UsersCommand,
};
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
        Command::Users(UsersCommand::List(args)) => {
            runtime()?.block_on(commands::users::list(&args))
        }
        Command::Users(UsersCommand::Disable(args)) => {
            runtime()?.block_on(commands::users::disable(&args))
        }
        Command::Users(UsersCommand::Enable(args)) => {
            runtime()?.block_on(commands::users::enable(&args))
        }
        Command::Users(UsersCommand::Unlock(args)) => {
            runtime()?.block_on(commands::users::unlock(&args))
        }
        Command::Tokens(TokensCommand::Create(args)) => {
            runtime()?.block_on(commands::tokens::create(&args))
        }
        Command::Tokens(TokensCommand::List(args)) => {
            runtime()?.block_on(commands::tokens::list(&args))
        }
        Command::Tokens(TokensCommand::Revoke(args)) => {
            runtime()?.block_on(commands::tokens::revoke(&args))
        }
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
        Command::Admin(AdminCommand::Create(args)) => {
            runtime()?.block_on(commands::admin::create(&args))
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}
