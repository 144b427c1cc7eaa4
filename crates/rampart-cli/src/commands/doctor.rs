//! `rampart doctor`: the hardening checklist against a configuration and its
//! deployment (F-DOCTOR). Exit code 0 when everything passes, 1 with warnings, 2 with
//! failures.

use std::process::ExitCode;

use rampart_config::{Check, Status};
use serde::Serialize;

use crate::cli::DoctorArgs;

use super::load_config;

/// Runs every check and prints the report.
pub fn run(args: &DoctorArgs) -> ExitCode {
    let (source, mode, checks) = match load_config(&args.config, None) {
        Ok(config) => {
            let mut checks = rampart_config::guardrails(&config);
            checks.extend(rampart_config::file_checks(&config));
            let source = config
                .source
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(defaults and environment)".to_owned());
            (source, format!("{:?}", config.mode).to_lowercase(), checks)
        }
        Err(error) => {
            let checks = error
                .problems()
                .iter()
                .map(|problem| Check {
                    id: "config.valid",
                    status: Status::Fail,
                    finding: problem.to_string(),
                    fix: problem.fix.clone(),
                })
                .collect();
            let source = args
                .config
                .config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "rampart.toml".to_owned());
            (source, "unknown".to_owned(), checks)
        }
    };
    let report = Report::new(&source, &mode, &checks);
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("cannot render the report: {error}"),
        }
    } else {
        print!("{}", report.render_text());
    }
    ExitCode::from(report.exit_code())
}

#[derive(Serialize)]
struct Report<'a> {
    config: &'a str,
    mode: &'a str,
    checks: Vec<ReportCheck<'a>>,
    summary: Summary,
}

#[derive(Serialize)]
struct ReportCheck<'a> {
    id: &'a str,
    status: &'static str,
    finding: &'a str,
    fix: &'a str,
}

#[derive(Serialize, Default)]
struct Summary {
    pass: usize,
    warn: usize,
    fail: usize,
}

impl<'a> Report<'a> {
    fn new(config: &'a str, mode: &'a str, checks: &'a [Check]) -> Self {
        let mut summary = Summary::default();
        let checks = checks
            .iter()
            .map(|check| {
                let status = match check.status {
                    Status::Pass => {
                        summary.pass += 1;
                        "pass"
                    }
                    Status::Warn => {
                        summary.warn += 1;
                        "warn"
                    }
                    Status::Fail => {
                        summary.fail += 1;
                        "fail"
                    }
                };
                ReportCheck {
                    id: check.id,
                    status,
                    finding: &check.finding,
                    fix: &check.fix,
                }
            })
            .collect();
        Self {
            config,
            mode,
            checks,
            summary,
        }
    }

    fn exit_code(&self) -> u8 {
        if self.summary.fail > 0 {
            2
        } else if self.summary.warn > 0 {
            1
        } else {
            0
        }
    }

    fn render_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "rampart doctor: {} (mode: {})", self.config, self.mode);
        for check in &self.checks {
            let label = match check.status {
                "pass" => "PASS",
                "warn" => "WARN",
                _ => "FAIL",
            };
            let _ = writeln!(out, "  {label}  {:<26} {}", check.id, check.finding);
            if check.status != "pass" && !check.fix.is_empty() {
                let _ = writeln!(out, "        {:<26} fix: {}", "", check.fix);
            }
        }
        let _ = writeln!(
            out,
            "{} passed, {} warnings, {} failures",
            self.summary.pass, self.summary.warn, self.summary.fail
        );
        out
    }
}
