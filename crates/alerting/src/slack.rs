//! The Slack channel: an incoming-webhook POST with reqwest.

use recops_core::error_chain;
use reqwest::blocking::Client;
use serde_json::json;

use crate::config::SlackConfig;
use crate::model::redact;
use crate::notice::Notice;
use crate::report::Delivery;
use crate::retry::{Attempt, RetryPolicy, Sleeper, with_retries};

/// The HTTP client of the Slack channel (timeout from `slack.timeout_secs`).
pub(crate) fn build_client(cfg: &SlackConfig) -> Result<Client, String> {
    crate::http::client(cfg.timeout_secs)
}

/// Posts `notice` to the webhook, retrying timeouts, connection errors, 429 and 5xx.
pub(crate) fn send(
    cfg: &SlackConfig,
    client: Result<&Client, &String>,
    notice: &Notice,
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
) -> Delivery {
    if !cfg.enabled {
        return Delivery::Disabled;
    }
    if cfg.webhook_url.is_empty() {
        return Delivery::NotConfigured {
            reason: "slack.webhook_url is empty (set SLACK_WEBHOOK_URL)".to_owned(),
        };
    }
    let client = match client {
        Ok(c) => c,
        Err(reason) => {
            return Delivery::Failed {
                attempts: 0,
                reason: reason.clone(),
            };
        }
    };
    let payload = json!({
        "text": notice.slack_text(),
        "channel": cfg.channel,
    });
    let scrub = |s: String| redact(&s, &[&cfg.webhook_url]);
    let timeout = cfg.timeout_secs;
    let (result, attempts) = with_retries(policy, sleeper, |_| {
        match client
            .post(cfg.webhook_url.expose().trim())
            .json(&payload)
            .send()
        {
            Ok(resp) if resp.status().is_success() => Attempt::Ok(()),
            Ok(resp) => crate::http::refusal("Slack webhook", resp, scrub),
            Err(e) => {
                let e = e.without_url();
                if e.is_builder() {
                    Attempt::Permanent(scrub(format!(
                        "slack.webhook_url is not a valid URL: {}",
                        error_chain(&e)
                    )))
                } else if e.is_timeout() {
                    Attempt::Transient(format!("Slack webhook timed out after {timeout} s"))
                } else {
                    Attempt::Transient(scrub(format!(
                        "Slack webhook unreachable: {}",
                        error_chain(&e)
                    )))
                }
            }
        }
    });
    match result {
        Ok(()) => Delivery::Sent {
            attempts,
            to: cfg.channel.clone(),
        },
        Err(reason) => Delivery::Failed { attempts, reason },
    }
}
