//! Every subcommand has help; commands whose feature has not landed say so and exit
//! non-zero instead of doing nothing.

use rampart_testkit::process::run;

use crate::common::{bin, env};

const COMMANDS: &[&str] = &[
    "serve", "init", "doctor", "migrate", "backup", "restore", "keys", "users", "tokens",
    "secrets", "audit", "admin", "demo",
];

#[tokio::test]
async fn top_level_help_lists_every_command() {
    let (code, stdout, _) = run(&bin(), &["--help"], &env(&[])).await;
    assert_eq!(code, 0);
    for command in COMMANDS {
        assert!(
            stdout.lines().any(|l| l.trim_start().starts_with(command)),
            "{command} missing from --help:\n{stdout}"
        );
    }
}

#[tokio::test]
async fn every_command_has_its_own_help() {
    for command in COMMANDS {
        let (code, stdout, stderr) = run(&bin(), &[command, "--help"], &env(&[])).await;
        assert_eq!(code, 0, "{command} --help failed: {stderr}");
        assert!(stdout.contains("Usage: rampart"), "{command}: {stdout}");
    }
}

#[tokio::test]
async fn unavailable_commands_say_so_and_fail() {
    for args in [
        &["backup", "--out", "/tmp/x"][..],
        &["restore", "--from", "/tmp/x"][..],
    ] {
        let (code, _, stderr) = run(&bin(), args, &env(&[])).await;
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert!(stderr.contains("not available in this build"), "{stderr}");
    }
}
