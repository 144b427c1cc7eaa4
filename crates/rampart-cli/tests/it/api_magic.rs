//! F-MAGIC end to end: a production-mode Rampart mails a sign-in link over real SMTP
//! (aiosmtpd on loopback, see `smtp_sink.rs`); the test reads it from the Maildir,
//! opens the page, posts the form with the binding cookie and is signed in. Every
//! failure mode answers the same.
//!
//! The server runs in production mode, so its cookies are `Secure` (`__Host-`
//! prefixed) and a cookie store would not send them back over `http://`: cookies are
//! read from `Set-Cookie` and sent in `Cookie` by hand.

use std::collections::BTreeMap;
use std::time::Duration;

use rampart_identity::accounts::{Actor, NewAccount};
use rampart_testkit::client::install_crypto_provider;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::json;

use crate::on_both_backends;
use crate::smtp_sink::{SmtpSink, magic_link};
use crate::support::TestServer;

/// `public_url` of the test servers. Links point here; the test sends them to the
/// server's real address, with this as `Origin` (what a browser on the link page
/// would send).
const PUBLIC: &str = "https://auth.example.test";
const BINDING: &str = "__Host-rampart_magic";
const SESSION: &str = "__Host-rampart_session";
const ALICE: &str = "alice@example.test";
const BOB: &str = "bob@example.test";

/// A client without a cookie store: every cookie is explicit.
fn http() -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// A server mailing through `sink`, with `extra` TOML.
async fn server(backend: rampart_store::Backend, sink: &SmtpSink, extra: &str) -> TestServer {
    let toml = format!("{}\n{extra}", sink.email_toml());
    let server =
        TestServer::with_config_env(backend, &toml, &[("RAMPART_PUBLIC_URL", PUBLIC)]).await;
    let accounts = &server.running().state().accounts;
    // The first admin initializes the instance; users can be created after that.
    accounts
        .create_admin_from_cli(
            NewAccount {
                username: "root".to_owned(),
                password: Some("a long admin passphrase 42".into()),
                ..NewAccount::default()
            },
            false,
        )
        .await
        .unwrap();
    for (username, email) in [("alice", ALICE), ("bob", BOB)] {
        accounts
            .create_user(
                &Actor::cli(),
                NewAccount {
                    username: username.to_owned(),
                    email: Some(email.to_owned()),
                    roles: vec!["user".to_owned()],
                    ..NewAccount::default()
                },
            )
            .await
            .unwrap();
    }
    server
}

/// The value of cookie `name` in the response's `Set-Cookie` headers, with the full
/// header line.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|line| {
            let (pair, _) = line.split_once(';').unwrap_or((line, ""));
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name).then(|| (value.trim().to_owned(), line.to_owned()))
        })
}

/// The answer to a link request.
struct Answer {
    status: u16,
    body: String,
    /// The binding cookie's value.
    binding: String,
    /// Its whole `Set-Cookie` line.
    cookie_line: String,
    headers: HeaderMap,
}

/// Asks for a link for `email`, presenting `binding` if given.
async fn request(server: &TestServer, email: &str, binding: Option<&str>) -> Answer {
    let mut call = http()
        .post(server.url("/api/v1/auth/magic-link"))
        .json(&json!({ "email": email }));
    if let Some(binding) = binding {
        call = call.header("cookie", format!("{BINDING}={binding}"));
    }
    let response = call.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    let (binding, cookie_line) = set_cookie(&headers, BINDING).expect("binding cookie set");
    Answer {
        status,
        body,
        binding,
        cookie_line,
        headers,
    }
}

/// The link in the `n`-th delivered message (0-based), after waiting for it; checks
/// the envelope of the message.
async fn link_in(sink: &SmtpSink, n: usize, to: &str) -> String {
    let messages = sink.wait_for(n + 1).await;
    let message = &messages[n];
    assert!(message.contains(&format!("To: {to}")), "{message}");
    assert!(
        message.contains("From: Rampart <rampart@example.test>"),
        "{message}"
    );
    assert!(
        message.contains("Subject: Sign in to auth.example.test"),
        "{message}"
    );
    assert!(message.contains("multipart/alternative"), "{message}");
    let link = magic_link(message).expect("a magic link in the message");
    assert!(
        link.starts_with(&format!("{PUBLIC}/auth/magic-link?code=")),
        "{link}"
    );
    link
}

/// The code from a link.
fn code_of(link: &str) -> String {
    link.rsplit_once("code=").unwrap().1.to_owned()
}

/// Posts the code as the link page's form would, with `binding` as the cookie and
/// `origin` as `Origin`.
async fn consume_form(
    server: &TestServer,
    code: &str,
    binding: Option<&str>,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut call = http()
        .post(server.url("/api/v1/auth/magic-link/consume"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("code={code}"));
    if let Some(binding) = binding {
        call = call.header("cookie", format!("{BINDING}={binding}"));
    }
    if let Some(origin) = origin {
        call = call.header("origin", origin);
    }
    call.send().await.unwrap()
}

/// Posts `{code}` as an API client.
async fn consume_json(server: &TestServer, code: &str, binding: &str) -> reqwest::Response {
    http()
        .post(server.url("/api/v1/auth/magic-link/consume"))
        .header("cookie", format!("{BINDING}={binding}"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_link(response: reqwest::Response) {
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_link", "{body}");
}

/// `GET /api/v1/me` with the session cookie.
async fn me(server: &TestServer, session: &str) -> reqwest::Response {
    http()
        .get(server.url("/api/v1/me"))
        .header("cookie", format!("{SESSION}={session}"))
        .send()
        .await
        .unwrap()
}

on_both_backends!(link_over_smtp_signs_in_once, |backend| {
    let sink = SmtpSink::start().await;
    let server = server(backend, &sink, "").await;

    let Answer {
        status,
        body,
        binding,
        cookie_line: line,
        ..
    } = request(&server, ALICE, None).await;
    assert_eq!(status, 202);
    assert_eq!(body, r#"{"status":"accepted"}"#);
    for attribute in [
        "Path=/",
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Max-Age=900",
    ] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Domain"), "{line}");

    let link = link_in(&sink, 0, ALICE).await;
    let path = link.strip_prefix(PUBLIC).unwrap();

    // The page: a form that posts the code, nothing that runs or loads.
    let page = http().get(server.url(path)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(page.headers()["referrer-policy"], "same-origin");
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("action=\"/api/v1/auth/magic-link/consume\""),
        "{html}"
    );
    let code = code_of(&link);
    assert!(html.contains(&format!("value=\"{code}\"")), "{html}");
    // Opening the page again (a mail scanner's prefetch) consumes nothing.
    assert_eq!(
        http().get(server.url(path)).send().await.unwrap().status(),
        200
    );

    let signed_in = consume_form(&server, &code, Some(&binding), Some(PUBLIC)).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/");
    let (session, session_line) =
        set_cookie(signed_in.headers(), SESSION).expect("session cookie set");
    assert!(session_line.contains("HttpOnly") && session_line.contains("Secure"));
    let (cleared, cleared_line) = set_cookie(signed_in.headers(), BINDING).unwrap();
    assert!(
        cleared.is_empty() && cleared_line.contains("Max-Age=0"),
        "{cleared_line}"
    );

    let profile = me(&server, &session).await;
    assert_eq!(profile.status(), 200);
    let profile: serde_json::Value = profile.json().await.unwrap();
    assert_eq!(profile["user"]["username"], "alice", "{profile}");
    assert_eq!(profile["auth"]["method"], "session", "{profile}");
    // A link is one factor: the session has not passed MFA.
    assert_eq!(profile["auth"]["mfa"], false, "{profile}");
    let sessions = http()
        .get(server.url("/api/v1/me/sessions"))
        .header("cookie", format!("{SESSION}={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(sessions.status(), 200);
    let sessions: serde_json::Value = sessions.json().await.unwrap();
    assert_eq!(
        sessions["sessions"].as_array().map(Vec::len),
        Some(1),
        "{sessions}"
    );

    // Second use: refused, as everything else.
    assert_invalid_link(consume_form(&server, &code, Some(&binding), Some(PUBLIC)).await).await;

    // Audited: the request (mailed), the sign-in, the refused second use — and no
    // record holds the code, the binding or the address.
    let records = wait_for_audit(
        &server,
        &[
            ("auth.magic_link.requested", "success"),
            ("auth.login.succeeded", "success"),
            ("auth.login.failed", "failure"),
        ],
    )
    .await;
    for record in &records {
        assert!(!record.contains(&code), "{record}");
        assert!(!record.contains(&binding), "{record}");
        assert!(!record.contains("alice@"), "{record}");
    }
    let failed = records
        .iter()
        .find(|r| r.contains("auth.login.failed"))
        .unwrap();
    assert!(failed.contains("magic_link"), "{failed}");
    server.stop().await;
});

/// kind, outcome, actor, target, reason, details.
type AuditRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

/// Waits (polling, bounded: the audit writer batches) until the audit table holds a
/// record of each `(kind, outcome)`; returns every record as text.
async fn wait_for_audit(server: &TestServer, wanted: &[(&str, &str)]) -> Vec<String> {
    let pool = server.db().raw_pool().await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT kind, outcome, actor, target, reason, details FROM audit_records \
                 ORDER BY seq",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        let found = wanted
            .iter()
            .all(|(k, o)| rows.iter().any(|r| r.0 == *k && r.1 == *o));
        if found {
            return rows.iter().map(|r| format!("{r:?}")).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "audit records {wanted:?} missing from {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_backends!(
    unknown_address_gets_the_same_answer_and_no_mail,
    |backend| {
        let sink = SmtpSink::start().await;
        let server = server(backend, &sink, "").await;

        let unknown = request(&server, "nobody@example.test", None).await;
        let known = request(&server, ALICE, None).await;
        assert_same_answer(&unknown, &known);

        // The worker takes requests in order: once the known address's message (the
        // control, asked for second) is delivered, the unknown address's request is done.
        link_in(&sink, 0, ALICE).await;
        let messages = sink.messages();
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert!(!messages[0].contains("nobody@"), "{}", messages[0]);
        server.stop().await;
    }
);

on_both_backends!(
    disabled_account_gets_the_same_answer_and_no_mail,
    |backend| {
        let sink = SmtpSink::start().await;
        let server = server(backend, &sink, "").await;
        let accounts = &server.running().state().accounts;
        let bob = accounts.find_by_email(BOB).await.unwrap().unwrap();
        accounts
            .set_disabled(&Actor::cli(), &bob, true)
            .await
            .unwrap();

        let disabled = request(&server, BOB, None).await;
        let known = request(&server, ALICE, None).await;
        assert_same_answer(&disabled, &known);
        link_in(&sink, 0, ALICE).await;
        assert_eq!(sink.messages().len(), 1);
        server.stop().await;
    }
);

on_both_backends!(accounts_with_a_second_factor_get_no_link, |backend| {
    // A link proves only the mailbox: it must not let its reader skip the TOTP the
    // user enrolled. Same answer, no mail; a link mailed before enrolment stops
    // working.
    let sink = SmtpSink::start().await;
    let server = server(backend, &sink, "").await;
    let binding = request(&server, BOB, None).await.binding;
    let early = code_of(&link_in(&sink, 0, BOB).await);
    crate::api_auth::enrol_totp(&server, "bob").await;

    let enrolled = request(&server, BOB, None).await;
    let known = request(&server, ALICE, None).await;
    assert_same_answer(&enrolled, &known);
    link_in(&sink, 1, ALICE).await;
    assert_eq!(sink.messages().len(), 2);

    assert_invalid_link(consume_json(&server, &early, &binding).await).await;
    server.stop().await;
});

on_both_backends!(only_the_requesting_browser_can_use_the_link, |backend| {
    let sink = SmtpSink::start().await;
    let server = server(backend, &sink, "").await;
    let binding = request(&server, ALICE, None).await.binding;
    let code = code_of(&link_in(&sink, 0, ALICE).await);

    // Another browser (its own binding cookie), no cookie, a garbage cookie.
    let other = request(&server, "nobody@example.test", None).await.binding;
    assert_ne!(other, binding);
    for cookie in [Some(other.as_str()), None, Some("garbage")] {
        assert_invalid_link(consume_form(&server, &code, cookie, Some(PUBLIC)).await).await;
    }
    // A malformed or unknown code.
    assert_invalid_link(consume_form(&server, "x", Some(&binding), Some(PUBLIC)).await).await;
    let unknown = "A".repeat(43);
    assert_invalid_link(consume_form(&server, &unknown, Some(&binding), Some(PUBLIC)).await).await;

    // A form posted from another origin, or with no origin information at all.
    for origin in [Some("https://evil.example"), Some("null"), None] {
        let refused = consume_form(&server, &code, Some(&binding), origin).await;
        assert_eq!(refused.status(), 403);
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "csrf_failed");
    }

    // The requesting browser still can, once.
    let ok = consume_form(&server, &code, Some(&binding), Some(PUBLIC)).await;
    assert_eq!(ok.status(), 303);
    server.stop().await;
});

on_both_backends!(api_clients_consume_with_json, |backend| {
    let sink = SmtpSink::start().await;
    let server = server(backend, &sink, "").await;
    let binding = request(&server, ALICE, None).await.binding;
    let code = code_of(&link_in(&sink, 0, ALICE).await);

    // Two clients race with the same link: exactly one wins.
    let (a, b) = tokio::join!(
        consume_json(&server, &code, &binding),
        consume_json(&server, &code, &binding)
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 400]);
    let winner = if a.status() == 200 { a } else { b };
    let session = set_cookie(winner.headers(), SESSION).unwrap().0;
    let body: serde_json::Value = winner.json().await.unwrap();
    assert_eq!(body, json!({"status": "authenticated"}));
    assert_eq!(me(&server, &session).await.status(), 200);
    server.stop().await;
});

on_both_backends!(
    links_expire_and_a_reused_binding_keeps_older_links,
    |backend| {
        let sink = SmtpSink::start().await;
        let server = server(backend, &sink, "").await;
        let binding = request(&server, ALICE, None).await.binding;
        let first = code_of(&link_in(&sink, 0, ALICE).await);
        // Asking again from the same browser keeps its binding, so both links work there.
        let again = request(&server, ALICE, Some(&binding)).await.binding;
        assert_eq!(again, binding);
        let second = code_of(&link_in(&sink, 1, ALICE).await);
        assert_ne!(first, second);

        server.clock.advance(Duration::from_secs(15 * 60));
        assert_invalid_link(consume_json(&server, &first, &binding).await).await;
        assert_invalid_link(consume_json(&server, &second, &binding).await).await;
        server.stop().await;
    }
);

on_both_backends!(
    disabled_magic_links_answer_the_same_and_send_nothing,
    |backend| {
        let sink = SmtpSink::start().await;
        let server = server(backend, &sink, "[magic_link]\nenabled = false\n").await;
        let Answer {
            status,
            body,
            cookie_line: line,
            ..
        } = request(&server, ALICE, None).await;
        assert_eq!(status, 202);
        assert_eq!(body, r#"{"status":"accepted"}"#);
        assert!(line.starts_with(&format!("{BINDING}=")));
        // With magic links off the request is not even queued, so there is nothing to
        // wait for: no mail can follow.
        assert!(sink.messages().is_empty());
        let code = "A".repeat(43);
        let binding = "B".repeat(42) + "A";
        assert_invalid_link(consume_json(&server, &code, &binding).await).await;
        server.stop().await;
    }
);

on_both_backends!(starttls_is_required_not_opportunistic, |backend| {
    // The sink offers no STARTTLS. With `tls = "starttls"` Rampart must not fall back
    // to plain text: no mail, and the failure is audited.
    let sink = SmtpSink::start().await;
    let plain = sink.email_toml();
    let toml = plain.replace("tls = \"none\"", "tls = \"starttls\"");
    assert_ne!(toml, plain);
    let server =
        TestServer::with_config_env(backend, &toml, &[("RAMPART_PUBLIC_URL", PUBLIC)]).await;
    let accounts = &server.running().state().accounts;
    accounts
        .create_admin_from_cli(
            NewAccount {
                username: "root".to_owned(),
                password: Some("a long admin passphrase 42".into()),
                email: Some(ALICE.to_owned()),
                ..NewAccount::default()
            },
            false,
        )
        .await
        .unwrap();
    let status = request(&server, ALICE, None).await.status;
    assert_eq!(status, 202);
    let records = wait_for_audit(&server, &[("auth.magic_link.requested", "failure")]).await;
    let failure = records
        .iter()
        .find(|r| r.contains("auth.magic_link.requested"))
        .unwrap();
    assert!(failure.contains("SMTP delivery failed"), "{failure}");
    assert!(sink.messages().is_empty());
    server.stop().await;
});

on_both_backends!(openapi_documents_the_magic_link_endpoints, |backend| {
    let sink = SmtpSink::start().await;
    let server = server(backend, &sink, "").await;
    let document: serde_json::Value = http()
        .get(server.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/api/v1/auth/magic-link",
        "/api/v1/auth/magic-link/consume",
        "/auth/magic-link",
    ] {
        assert!(document["paths"][path].is_object(), "{path} missing");
    }
    server.stop().await;
});

/// Two request answers are the same: status, body, header names and values, and the
/// binding cookie's attributes (its value is random).
fn assert_same_answer(a: &Answer, b: &Answer) {
    assert_eq!(a.status, b.status);
    assert_eq!(a.body, b.body);
    let attributes = |line: &str| line.split_once(';').map(|(_, rest)| rest.to_owned());
    assert_eq!(attributes(&a.cookie_line), attributes(&b.cookie_line));
    assert_eq!(a.binding.len(), b.binding.len());
    let names = |h: &HeaderMap| {
        h.keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k != "date")
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&a.headers), names(&b.headers));
    let values = |h: &HeaderMap| {
        h.iter()
            // The rate-limit budget counts every request alike, whatever the address;
            // it differs between two requests by construction, not by existence.
            .filter(|(k, _)| {
                !matches!(
                    k.as_str(),
                    "date" | "x-request-id" | "set-cookie" | "ratelimit-remaining"
                )
            })
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(values(&a.headers), values(&b.headers));
}
