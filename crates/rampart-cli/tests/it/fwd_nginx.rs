//! Forward-auth with a real nginx in front (F-FWDAUTH, F-PORTAL).
//!
//! nginx runs the shipped `deploy/nginx/rampart-forward-auth.conf` — the very file,
//! its `${…}` placeholders substituted — terminating TLS for `app.example.test` (the
//! protected application, a recording upstream) and `auth.example.test` (Rampart).
//! The client is a browser as far as the servers can tell: a cookie jar, both host
//! names resolved to nginx's loopback port, nginx's test certificate as its only
//! root, redirects followed by hand so every hop is checked.
//!
//! nginx is started as a child process (`nginx -p <dir> -c <dir>/nginx.conf -e
//! <dir>/error.log`, `daemon off`, `master_process off`: one process, its own pid
//! file, logs and temp paths in a temporary directory, as the current user) on a
//! free loopback port, waited for by connecting to that port (deadline 30 s), and
//! killed (SIGKILL, then reaped) when the test's handle is dropped.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_identity::accounts::NewAccount;
use rampart_testkit::client::install_crypto_provider;
use rampart_testkit::upstream::Upstream;
use reqwest::StatusCode;
use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION};

use crate::api_auth::{PASSWORD, user};
use crate::on_both_backends;
use crate::support::TestServer;

/// The shipped forward-auth configuration, loaded as is.
const FORWARD_AUTH: &str = include_str!("../../../../deploy/nginx/rampart-forward-auth.conf");
/// The shipped configuration for Rampart as the inline gateway behind nginx.
const INLINE: &str = include_str!("../../../../deploy/nginx/rampart-inline.conf");
/// The protected application's host.
pub const APP_HOST: &str = "app.example.test";
/// Rampart's public host (`public_url`).
pub const AUTH_HOST: &str = "auth.example.test";
/// How long nginx may take to start.
const DEADLINE: Duration = Duration::from_secs(30);

/// A running nginx, killed on drop.
pub struct Nginx {
    child: Child,
    /// Where it listens (127.0.0.1).
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with a shipped site file (`template`, its placeholders set from
    /// `values` plus `LISTEN`, `TLS_CERT`, `TLS_KEY`), serving `cert_pem`/`key_pem`,
    /// and waits until it listens.
    pub async fn start(
        template: &str,
        values: &[(&str, String)],
        cert_pem: &str,
        key_pem: &str,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("tls.crt");
        let key = dir.path().join("tls.key");
        std::fs::write(&cert, cert_pem).unwrap();
        crate::common::write(&key, key_pem, 0o600);
        let error_log = dir.path().join("error.log");
        // The port is found by binding and releasing it; should another process take it
        // in between, nginx fails to bind and the next attempt picks another.
        for _ in 0..3 {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut all = vec![
                ("LISTEN", addr.to_string()),
                ("TLS_CERT", cert.display().to_string()),
                ("TLS_KEY", key.display().to_string()),
            ];
            all.extend(values.iter().map(|(k, v)| (*k, v.clone())));
            let site = substitute(template, &all);
            std::fs::write(dir.path().join("rampart-site.conf"), site).unwrap();
            let main = main_config(dir.path());
            std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
            let mut child = Command::new(nginx_binary())
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                .arg("-e")
                .arg(&error_log)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
                .spawn()
                .expect("nginx (scripts/test installs it: apt-get install nginx)");
            match wait_until_listening(&mut child, addr).await {
                Ok(()) => {
                    // The shipped file must load cleanly, not merely load.
                    let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                    assert!(
                        !log.contains("[warn]") && !log.contains("[emerg]"),
                        "nginx warned about the shipped file:\n{log}"
                    );
                    return Self { child, addr, dir };
                }
                Err(reason) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                    let stderr =
                        std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
                    assert!(
                        log.contains("Address already in use"),
                        "nginx did not start ({reason}):\n{log}\n{stderr}"
                    );
                }
            }
        }
        panic!("nginx could not bind a free port in 3 attempts");
    }

    /// nginx's error log so far (for failure messages).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // `master_process off`: this is the only nginx process; nothing is orphaned.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `${NAME}` → value for each pair; every placeholder of the template must be given.
pub fn substitute(template: &str, values: &[(&str, String)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("${{{name}}}"), value);
    }
    let left: Vec<&str> = out
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
        })
        .collect();
    assert!(left.is_empty(), "placeholders not substituted: {left:?}");
    out
}

/// The test's own main context around the shipped file: its own pid, logs and temp
/// paths in `dir`, in the foreground, one process.
fn main_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\n\
         events {{ worker_connections 128; }}\n\
         http {{\n\
         access_log {d}/access.log;\n\
         client_body_temp_path {d}/client_body;\n\
         proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n\
         uwsgi_temp_path {d}/uwsgi;\n\
         scgi_temp_path {d}/scgi;\n\
         include {d}/rampart-site.conf;\n\
         }}\n"
    )
}

fn nginx_binary() -> PathBuf {
    let sbin = PathBuf::from("/usr/sbin/nginx");
    if sbin.exists() {
        sbin
    } else {
        PathBuf::from("nginx")
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits (bounded) until `addr` accepts connections; fails early if nginx exits.
async fn wait_until_listening(child: &mut Child, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(format!("exited with {status}"));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not listening after {DEADLINE:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Rampart, the application and nginx in front of both.
pub struct Site {
    /// Rampart (in-process, production mode).
    pub server: TestServer,
    /// The protected application.
    pub app: Upstream,
    /// nginx.
    pub nginx: Nginx,
    /// The user id of `alice`.
    pub alice: String,
    cert_pem: String,
}

/// How nginx and Rampart are put together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `rampart-forward-auth.conf`: nginx proxies the application and asks Rampart.
    ForwardAuth,
    /// `rampart-inline.conf`: nginx terminates TLS, Rampart proxies the application.
    Inline,
}

impl Site {
    /// Starts the three on `backend` in `layout`, with an admin `root` and the user
    /// `alice` (role `user`).
    pub async fn start(backend: rampart_store::Backend, layout: Layout) -> Self {
        let app = Upstream::start().await;
        let extra = format!(
            r#"
[session]
domain = "example.test"

[roles.admin]
permissions = ["*"]

[roles.user]
permissions = ["app:use"]

[upstreams.app]
url = "{app}"

[[routes]]
name = "app-admin"
host = "{APP_HOST}"
path_prefix = "/admin"
upstream = "app"
roles = ["admin"]

[[routes]]
name = "app"
host = "{APP_HOST}"
path_prefix = "/"
upstream = "app"
"#,
            app = app.url(),
        );
        let server = TestServer::with_config_env(
            backend,
            &extra,
            &[
                ("RAMPART_PUBLIC_URL", "https://auth.example.test"),
                // nginx, as Rampart sees it: only then are its X-Forwarded-* believed.
                ("RAMPART_SERVER_TRUSTED_PROXIES", "127.0.0.1/32"),
            ],
        )
        .await;
        server
            .running()
            .state()
            .accounts
            .create_admin_from_cli(
                NewAccount {
                    username: "root".to_owned(),
                    password: Some(PASSWORD.into()),
                    ..NewAccount::default()
                },
                false,
            )
            .await
            .unwrap();
        let alice = user(&server, "alice", &["user"]).await;
        let certified =
            rcgen::generate_simple_self_signed(vec![APP_HOST.to_owned(), AUTH_HOST.to_owned()])
                .unwrap();
        let cert_pem = certified.cert.pem();
        let (template, values) = match layout {
            Layout::ForwardAuth => (
                FORWARD_AUTH,
                vec![
                    ("APP_HOST", APP_HOST.to_owned()),
                    ("APP_ADDR", app.addr.to_string()),
                    ("AUTH_HOST", AUTH_HOST.to_owned()),
                    ("RAMPART_ADDR", server.addr.to_string()),
                ],
            ),
            Layout::Inline => (
                INLINE,
                vec![
                    ("SERVER_NAMES", format!("{AUTH_HOST} {APP_HOST}")),
                    ("RAMPART_ADDR", server.addr.to_string()),
                ],
            ),
        };
        let nginx = Nginx::start(
            template,
            &values,
            &cert_pem,
            &certified.signing_key.serialize_pem(),
        )
        .await;
        Self {
            server,
            app,
            nginx,
            alice,
            cert_pem,
        }
    }

    /// A browser: its own cookie jar, both hosts resolved to nginx, nginx's
    /// certificate trusted, no automatic redirects.
    pub fn browser(&self) -> (reqwest::Client, Arc<Jar>) {
        install_crypto_provider();
        let jar = Arc::new(Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(Arc::clone(&jar))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .resolve(APP_HOST, self.nginx.addr)
            .resolve(AUTH_HOST, self.nginx.addr)
            .tls_certs_only([reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).unwrap()])
            .build()
            .unwrap();
        (client, jar)
    }

    /// How many requests reached the application.
    pub fn app_requests(&self) -> usize {
        self.app.seen().len()
    }
}

/// A page request, as a browser sends it.
fn page(client: &reqwest::Client, url: &str) -> reqwest::RequestBuilder {
    client
        .get(url)
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
}

/// The sign-in form's post, as a browser on Rampart's page sends it.
fn post_form(
    client: &reqwest::Client,
    url: &str,
    fields: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", format!("https://{AUTH_HOST}"))
        .header("sec-fetch-site", "same-origin")
        .body(body)
}

/// The value of the hidden (or other) input `name` in `html`, unescaped.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// The `rd` query parameter of a sign-in URL.
fn rd_of(location: &str) -> String {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs()
        .find(|(k, _)| k == "rd")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no rd in {location}"))
}

fn location(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .unwrap_or_else(|| panic!("no Location on {}", response.status()))
        .to_str()
        .unwrap()
        .to_owned()
}

on_both_backends!(
    browser_signs_in_through_the_login_page_and_comes_back,
    |backend| {
        let site = Site::start(backend, Layout::ForwardAuth).await;
        let (browser, jar) = site.browser();
        let original = format!("https://{APP_HOST}/reports?year=2026&q=a%20b");

        // 1. Not signed in: nginx redirects the page request to Rampart's sign-in page,
        //    with the original URL as the (validated) return target.
        let response = page(&browser, &original).send().await.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "{}",
            site.nginx.error_log()
        );
        let signin = location(&response);
        assert!(
            signin.starts_with(&format!("https://{AUTH_HOST}/login?rd=")),
            "{signin}"
        );
        assert_eq!(rd_of(&signin), original);
        assert_eq!(site.app_requests(), 0, "nothing reached the application");

        // 2. The sign-in page, through nginx: a form, no script, a strict policy whose
        //    form-action allows the redirect back to the application.
        let response = page(&browser, &signin).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[CONTENT_SECURITY_POLICY],
            format!(
                "default-src 'none'; form-action 'self' https://{APP_HOST}; frame-ancestors 'none'; base-uri 'none'"
            )
        );
        let html = response.text().await.unwrap();
        assert!(!html.contains("<script"), "{html}");
        let rd = input_value(&html, "rd").unwrap();
        assert_eq!(rd, original);

        // 3. The form post: 303 back to the original URL, the session cookie set for the
        //    parent domain so the application's host gets it too.
        let response = post_form(
            &browser,
            &format!("https://{AUTH_HOST}/login"),
            &[("username", "alice"), ("password", PASSWORD), ("rd", &rd)],
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&response), original);
        let app_url: url::Url = original.parse().unwrap();
        let cookies = jar
            .cookies(&app_url)
            .expect("the session cookie reaches the app host");
        assert!(
            cookies
                .to_str()
                .unwrap()
                .contains("__Secure-rampart_session="),
            "{cookies:?}"
        );

        // 4. Back at the application: allowed, with the identity from Rampart — and
        //    never the identity a client claims, nor Rampart's session cookie.
        jar.add_cookie_str("theme=dark; Path=/", &app_url);
        let response = page(&browser, &original)
            .header("x-rampart-user", "root")
            .header("x-rampart-roles", "admin")
            .header("x-forwarded-for", "203.0.113.9")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{}",
            site.nginx.error_log()
        );
        site.app.wait_for_requests(1).await;
        let seen = site.app.last();
        assert_eq!(seen.uri, "/reports?year=2026&q=a%20b");
        assert_eq!(seen.header("x-rampart-user"), Some("alice"));
        assert_eq!(seen.header("x-rampart-roles"), Some("user"));
        assert_eq!(seen.header("x-rampart-auth-method"), Some("session"));
        assert_eq!(seen.header("x-rampart-mfa"), Some("false"));
        assert_eq!(seen.header("x-rampart-user-id"), Some(site.alice.as_str()));
        assert_eq!(
            seen.header("x-rampart-assertion")
                .unwrap()
                .split('.')
                .count(),
            3,
            "a signed JWT"
        );
        assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(seen.header("host"), Some(APP_HOST));
        let cookie = seen.header("cookie").unwrap_or_default();
        assert!(cookie.contains("theme=dark"), "{cookie}");
        assert!(!cookie.contains("rampart_session"), "{cookie}");
        site.server.stop().await;
    }
);

on_both_backends!(
    api_clients_forged_identities_and_malformed_requests_are_refused,
    |backend| {
        let site = Site::start(backend, Layout::ForwardAuth).await;
        let (client, jar) = site.browser();
        let app = format!("https://{APP_HOST}");

        // An API client without credentials: 401, no redirect.
        let response = client
            .get(format!("{app}/api/items"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().get(LOCATION).is_none());

        // A page request that is not a GET: no sign-in redirect either.
        let response = client
            .post(format!("{app}/reports"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

        // Claiming an identity by header: refused like no credential at all.
        let response = client
            .get(format!("{app}/reports"))
            .header("accept", "application/json")
            .header("x-rampart-user", "root")
            .header("x-rampart-roles", "admin")
            .header("x-rampart-assertion", "eyJ.forged.jwt")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

        // A malformed, forged or stale session cookie: no access. A browser is sent to
        // sign in with the dead cookie cleared (else it would present it forever); an
        // API client gets 401.
        for value in ["garbage", "%00%ff", &"A".repeat(43)] {
            let cookie = format!("__Secure-rampart_session={value}");
            let response = page(&client, &format!("{app}/reports"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FOUND, "{value:?}");
            assert!(location(&response).starts_with(&format!("https://{AUTH_HOST}/login?rd=")));
            let cleared = response
                .headers()
                .get("set-cookie")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            assert!(
                cleared.starts_with("__Secure-rampart_session=;") && cleared.contains("Max-Age=0"),
                "{value:?}: {cleared}"
            );
            let response = client
                .get(format!("{app}/reports"))
                .header("accept", "application/json")
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{value:?}");
            assert!(response.headers().get(LOCATION).is_none());
        }

        // Sign in (JSON API through nginx), then: the policy still decides per route.
        let response = client
            .post(format!("https://{AUTH_HOST}/api/v1/auth/login"))
            .header("origin", format!("https://{AUTH_HOST}"))
            .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(jar.cookies(&app.parse().unwrap()).is_some());
        let response = client
            .get(format!("{app}/admin/users"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::FORBIDDEN,
            "alice lacks the admin role"
        );
        // Describing another, permitted request in the other convention's headers
        // changes nothing: nginx clears them (and Rampart refuses two versions).
        let response = client
            .get(format!("{app}/admin/users"))
            .header("accept", "text/html")
            .header("x-forwarded-uri", "/reports")
            .header("x-forwarded-method", "GET")
            .header("x-original-uri", "/reports")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);

        // Forwarded URIs Rampart cannot judge unambiguously: refused (403), never passed.
        for path in [
            "/reports;jsessionid=1",
            "/a%2Fb",
            "/%252e%252e/admin",
            "/a%00b",
        ] {
            let response = client
                .get(format!("{app}{path}"))
                .header("accept", "text/html")
                .send()
                .await
                .unwrap();
            // nginx itself refuses an encoded NUL (400); Rampart refuses the rest (403).
            let expected = if path.contains("%00") {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::FORBIDDEN
            };
            assert_eq!(response.status(), expected, "{path}");
        }
        assert_eq!(
            site.app_requests(),
            0,
            "nothing above reached the application"
        );

        // The verify endpoint is not reachable from outside through nginx.
        let response = client
            .get(format!("{app}/.rampart/verify"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let response = client
            .get(format!("https://{AUTH_HOST}/auth/verify"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);

        // And an allowed request still works: the refusals above were the policy's.
        let response = client
            .get(format!("{app}/reports"))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        site.server.stop().await;
    }
);

on_both_backends!(open_redirects_fall_back_to_root, |backend| {
    let site = Site::start(backend, Layout::ForwardAuth).await;
    let (browser, _jar) = site.browser();

    // A forged X-Forwarded-Host does not reach Rampart: nginx sets it from the
    // server it matched, so the return URL stays on the application.
    let response = page(&browser, &format!("https://{APP_HOST}/x"))
        .header("x-forwarded-host", "evil.example")
        .header("x-original-uri", "https://evil.example/")
        .header("x-forwarded-uri", "//evil.example/")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(rd_of(&location(&response)), format!("https://{APP_HOST}/x"));

    // A Host nginx does not serve: the connection is closed (444), nothing answers.
    let refused = page(&browser, &format!("https://{APP_HOST}/x"))
        .header("host", "evil.example")
        .send()
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // Return targets a crafted sign-in link carries: the page and the post both use
    // `/` instead.
    let payloads = [
        "https://evil.example/",
        "//evil.example/",
        "///evil.example/",
        "/\\evil.example/",
        "https://app.example.test@evil.example/",
        "https://evil.example@app.example.test.evil.example/",
        "https://app.example.test.evil.example/",
        "http://app.example.test/",
        "javascript:alert(1)",
        "https:evil.example",
    ];
    for payload in payloads {
        let mut signin = url::Url::parse(&format!("https://{AUTH_HOST}/login")).unwrap();
        signin.query_pairs_mut().append_pair("rd", payload);
        let response = page(&browser, signin.as_str()).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let csp = response.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!csp.contains("evil"), "{payload}: {csp}");
        let html = response.text().await.unwrap();
        assert_eq!(input_value(&html, "rd").as_deref(), Some("/"), "{payload}");
    }
    // The post checks again: the hidden field is the browser's to edit.
    let (browser, _jar) = site.browser();
    let response = post_form(
        &browser,
        &format!("https://{AUTH_HOST}/login"),
        &[
            ("username", "alice"),
            ("password", PASSWORD),
            ("rd", "https://evil.example/"),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    site.server.stop().await;
});

on_both_backends!(inline_gateway_behind_tls_terminating_nginx, |backend| {
    let site = Site::start(backend, Layout::Inline).await;
    let (browser, _jar) = site.browser();

    // Rampart knows the client used HTTPS (X-Forwarded-Proto from a trusted proxy):
    // HSTS on its own answers.
    let response = browser
        .get(format!("https://{AUTH_HOST}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        site.nginx.error_log()
    );
    assert!(response.headers().contains_key("strict-transport-security"));

    // Not signed in: Rampart itself redirects the page request, to an https
    // return URL.
    let original = format!("https://{APP_HOST}/reports?q=1");
    let response = page(&browser, &original).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let signin = location(&response);
    assert_eq!(rd_of(&signin), original);

    // The sign-in page through nginx, and back.
    let html = page(&browser, &signin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let rd = input_value(&html, "rd").unwrap();
    let response = post_form(
        &browser,
        &format!("https://{AUTH_HOST}/login"),
        &[("username", "alice"), ("password", PASSWORD), ("rd", &rd)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), original);
    let response = page(&browser, &original)
        .header("x-rampart-user", "root")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-forwarded-proto", "http")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    site.app.wait_for_requests(1).await;
    let seen = site.app.last();
    assert_eq!(seen.uri, "/reports?q=1");
    assert_eq!(seen.header("x-rampart-user"), Some("alice"));
    // nginx replaced the client's claims; Rampart resolved the client through it.
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert!(
        !seen
            .header("cookie")
            .unwrap_or_default()
            .contains("rampart_session")
    );
    site.server.stop().await;
});
