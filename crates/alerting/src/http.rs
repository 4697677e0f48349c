//! What the two HTTP channels (Slack and Alertmanager) share: the client and how an
//! answer that is not a success becomes a delivery attempt.

use recops_core::error_chain;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};

use crate::retry::{Attempt, secs};

/// Characters of an error answer's body kept in the delivery reason.
const BODY_SHOWN: usize = 200;

/// An HTTP client with the channel's timeout and recops' user agent.
pub(crate) fn client(timeout_secs: f64) -> Result<Client, String> {
    recops_core::tls::install_crypto_provider();
    Client::builder()
        .timeout(secs(timeout_secs))
        .user_agent(concat!("recops/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            format!(
                "cannot create the HTTP client: {}",
                error_chain(&e.without_url())
            )
        })
}

/// The attempt an answer with a status that is not a success makes: "`who` answered
/// HTTP `status`: `body`" with the body's first 200 characters on one line, passed
/// through `scrub`. 5xx and 429 are worth another try; any other status is final.
pub(crate) fn refusal<T>(
    who: &str,
    resp: Response,
    scrub: impl Fn(String) -> String,
) -> Attempt<T> {
    let status = resp.status();
    let body = resp.text().unwrap_or_default();
    let reason = scrub(format!(
        "{who} answered HTTP {status}: {}",
        one_line(&body, BODY_SHOWN)
    ));
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Attempt::Transient(reason)
    } else {
        Attempt::Permanent(reason)
    }
}

/// The first `max` characters of `text`, line breaks as spaces, trimmed.
fn one_line(text: &str, max: usize) -> String {
    let head: String = text.chars().take(max).collect();
    head.replace(['\n', '\r'], " ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_keeps_the_head_on_one_line() {
        assert_eq!(one_line("  bad\r\nrequest \n", 200), "bad  request");
        assert_eq!(one_line(&"é".repeat(300), 200).chars().count(), 200);
        assert_eq!(one_line("", 200), "");
    }
}
