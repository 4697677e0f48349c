//! The e-mail channel: lettre over SMTP (STARTTLS by default).

use std::time::{Duration, SystemTime};

use lettre::message::{Mailbox, Message, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use recops_core::Home;

use crate::config::{EmailConfig, SmtpSecurity};
use crate::model::redact;
use crate::notice::Notice;
use crate::report::Delivery;
use crate::retry::{Attempt, RetryPolicy, Sleeper, secs, with_retries};

/// Sends `notice` to the configured recipients, retrying transient failures.
pub(crate) fn send(
    cfg: &EmailConfig,
    home: &Home,
    notice: &Notice,
    policy: &RetryPolicy,
    sleeper: &dyn Sleeper,
) -> Delivery {
    if !cfg.enabled {
        return Delivery::Disabled;
    }
    if let Some(reason) = cfg.not_configured_reason() {
        return Delivery::NotConfigured { reason };
    }
    let scrub = |s: String| redact(&s, &[&cfg.password]);
    let message = match build_message(cfg, notice) {
        Ok(m) => m,
        Err(reason) => {
            return Delivery::Failed {
                attempts: 0,
                reason: scrub(reason),
            };
        }
    };
    let transport = match build_transport(cfg, home) {
        Ok(t) => t,
        Err(reason) => {
            return Delivery::Failed {
                attempts: 0,
                reason: scrub(reason),
            };
        }
    };
    let server = format!("SMTP {}:{}", cfg.smtp_server.trim(), cfg.smtp_port);
    let (result, attempts) = with_retries(policy, sleeper, |_| match transport.send(&message) {
        Ok(_) => Attempt::Ok(()),
        Err(e) => {
            let reason = scrub(format!("{server}: {}", describe(&e)));
            if e.is_permanent() || e.is_tls() || e.is_client() {
                Attempt::Permanent(reason)
            } else {
                Attempt::Transient(reason)
            }
        }
    });
    match result {
        Ok(()) => Delivery::Sent {
            attempts,
            to: cfg
                .recipients
                .iter()
                .map(|r| r.trim())
                .collect::<Vec<_>>()
                .join(", "),
        },
        Err(reason) => Delivery::Failed { attempts, reason },
    }
}

fn describe(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    if e.is_timeout() {
        format!("timed out ({text})")
    } else if e.is_permanent()
        && e.status()
            .is_some_and(|c| c.to_string().starts_with("535") || c.to_string().starts_with("534"))
    {
        format!("login refused ({text})")
    } else {
        text
    }
}

fn build_message(cfg: &EmailConfig, notice: &Notice) -> Result<Message, String> {
    let from: Mailbox = cfg
        .sender
        .trim()
        .parse()
        .map_err(|e| format!("email.sender is not an e-mail address: {e}"))?;
    let mut builder = Message::builder()
        .from(from)
        .subject(notice.subject())
        .date(SystemTime::from(notice.at));
    for (i, r) in cfg.recipients.iter().enumerate() {
        let to: Mailbox = r
            .trim()
            .parse()
            .map_err(|e| format!("email.recipients[{i}] is not an e-mail address: {e}"))?;
        builder = builder.to(to);
    }
    builder
        .multipart(MultiPart::alternative_plain_html(
            notice.email_text(),
            notice.email_html(),
        ))
        .map_err(|e| format!("cannot build the e-mail: {e}"))
}

fn build_transport(cfg: &EmailConfig, home: &Home) -> Result<SmtpTransport, String> {
    let host = cfg.smtp_server.trim();
    let mut builder = SmtpTransport::builder_dangerous(host)
        .port(cfg.smtp_port)
        .timeout(Some(secs(cfg.timeout_secs).max(Duration::from_millis(1))));
    if cfg.security != SmtpSecurity::None {
        let mut tls = TlsParameters::builder(host.to_owned());
        if let Some(path) = &cfg.ca_cert_path {
            let path = home.root().join(path);
            let pem = std::fs::read(&path)
                .map_err(|e| format!("cannot read email.ca_cert_path {}: {e}", path.display()))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                format!(
                    "email.ca_cert_path {} is not a PEM certificate: {e}",
                    path.display()
                )
            })?;
            tls = tls.add_root_certificate(cert);
        }
        let params = tls
            .build_rustls()
            .map_err(|e| format!("cannot set up TLS for {host}: {e}"))?;
        builder = builder.tls(match cfg.security {
            SmtpSecurity::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if !cfg.password.is_empty() {
        builder = builder.credentials(Credentials::new(
            cfg.login().to_owned(),
            cfg.password.expose().to_owned(),
        ));
    }
    Ok(builder.build())
}
