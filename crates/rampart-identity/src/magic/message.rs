//! The magic-link mail: where the link points, and the text around it.

use std::time::Duration;

use url::Url;

use super::MagicCode;
use crate::mail::{Mail, MailError};

/// The path of the page a link opens (`GET`, a form that posts the code).
pub const LINK_PATH: &str = "/auth/magic-link";

/// `{public_url}/auth/magic-link?code=<code>`.
pub fn link(public_url: &Url, code: &MagicCode) -> Url {
    let mut url = public_url.clone();
    url.set_path(LINK_PATH);
    url.set_query(None);
    url.set_fragment(None);
    url.query_pairs_mut()
        .append_pair("code", code.expose_secret());
    url
}

/// The mail for `to` carrying `link`.
pub fn mail(to: &str, link: &Url, ttl: Duration) -> Result<Mail, MailError> {
    let host = link.host_str().unwrap_or("Rampart");
    let minutes = ttl.as_secs().div_ceil(60);
    let text = format!(
        "Someone, hopefully you, asked to sign in to {host} with this email address.\n\
         \n\
         To sign in, open this link in the browser where you asked for it:\n\
         \n\
         {link}\n\
         \n\
         The link works once and expires in {minutes} minutes. If you did not ask for it,\n\
         ignore this message: the link does not work in any other browser.\n"
    );
    // No images, styles or other remote content: nothing for a mail client to fetch.
    let html = format!(
        "<!doctype html>\n<html><body>\n\
         <p>Someone, hopefully you, asked to sign in to {host} with this email address.</p>\n\
         <p><a href=\"{href}\">Sign in to {host}</a></p>\n\
         <p>Open the link in the browser where you asked for it. It works once and expires \
         in {minutes} minutes. If you did not ask for it, ignore this message: the link does \
         not work in any other browser.</p>\n\
         </body></html>\n",
        host = escape(host),
        href = escape(link.as_str()),
    );
    Ok(Mail::new(to, format!("Sign in to {host}"), text)?.with_html(html))
}

/// HTML-escapes text for element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn link_uses_the_public_origin() {
        let code = MagicCode::generate().unwrap();
        for base in ["https://auth.example.com", "https://auth.example.com/"] {
            let url = link(&Url::parse(base).unwrap(), &code);
            assert_eq!(
                url.as_str(),
                format!(
                    "https://auth.example.com/auth/magic-link?code={}",
                    code.expose_secret()
                )
            );
        }
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
