//! Commands whose feature is not part of this build yet. They say so and exit
//! non-zero: a command that silently does nothing would be a lie.

use std::process::ExitCode;

use super::exit;

/// Prints why `command` is unavailable and which feature brings it.
pub fn run(command: &str, feature: &str) -> ExitCode {
    eprintln!(
        "rampart {command}: not available in this build; it arrives with {feature}. See `rampart {command} --help` and docs/ for the plan."
    );
    ExitCode::from(exit::UNAVAILABLE)
}
