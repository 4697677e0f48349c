//! The e-mail channel over a real SMTP conversation.

use std::time::Duration;

use recops_alerting::{Channel, Delivery, Severity};

use crate::support::{
    SmtpOptions, SmtpServer, TestHome, closed_port, fixtures, lines_with, tls_config,
};

const PASSWORD: &str = "pw-S3cret-xyz";

fn config(port: u16, security: &str, extra: &str) -> String {
    format!(
        "email:
  smtp_server: 127.0.0.1
  smtp_port: {port}
  security: {security}
  sender: recops@example.com
  password: {PASSWORD}
  recipients: [team@example.com, oncall@example.com]
  timeout_secs: 5
{extra}
notifications:
  max_attempts: 3
  initial_backoff_secs: 2
  max_backoff_secs: 30
"
    )
}

#[test]
fn a_real_smtp_conversation_delivers_subject_recipients_and_html_body() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let home = TestHome::new(&config(smtp.port(), "none", ""));
    let alerts = home.manager();
    let report = alerts.send_alert(
        "high_latency",
        "avg_latency_ms=215.3 > 200 on <recommender>",
        Severity::Warning,
        Some(&[Channel::Log, Channel::Email]),
    );
    assert!(report.all_sent(), "{report}");
    assert_eq!(
        report.success_map().into_iter().collect::<Vec<_>>(),
        vec![(Channel::Email, true), (Channel::Log, true)]
    );

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m.mail_from, "recops@example.com");
    assert_eq!(m.rcpt_to, vec!["team@example.com", "oncall@example.com"]);
    assert_eq!(m.header("Subject").unwrap(), "[WARNING] high_latency");
    assert_eq!(m.header("From").unwrap(), "recops@example.com");
    assert_eq!(
        m.header("To").unwrap(),
        "team@example.com, oncall@example.com"
    );
    assert_eq!(
        m.auth,
        Some(("recops@example.com".to_owned(), PASSWORD.to_owned()))
    );
    let html = m.part("text/html").unwrap();
    assert!(
        html.contains("avg_latency_ms=215.3 &gt; 200 on &lt;recommender&gt;"),
        "{html}"
    );
    assert!(html.contains("[WARNING] high_latency"), "{html}");
    let text = m.part("text/plain").unwrap();
    assert!(
        text.contains("avg_latency_ms=215.3 > 200 on <recommender>"),
        "{text}"
    );

    let log = home.alerts_log();
    assert_eq!(
        lines_with(
            &log,
            "| WARNING | alerting | high_latency: avg_latency_ms=215.3 > 200"
        )
        .len(),
        1,
        "{log}"
    );
    assert_eq!(
        lines_with(
            &log,
            "| INFO | alerting | Email sent to team@example.com, oncall@example.com"
        )
        .len(),
        1,
        "{log}"
    );
    assert!(!log.contains(PASSWORD));
}

#[test]
fn vietnamese_text_survives_the_mail_encoding() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let home = TestHome::new(&config(smtp.port(), "none", ""));
    let msg = "Tỷ lệ lỗi cao: sản phẩm dưỡng da không có gợi ý";
    let report = home.manager().send_alert(
        "high_error_rate",
        msg,
        Severity::Critical,
        Some(&[Channel::Email]),
    );
    assert!(report.all_sent(), "{report}");
    let m = &smtp.mails()[0];
    assert!(m.part("text/plain").unwrap().contains(msg));
    assert!(m.part("text/html").unwrap().contains(msg));
}

#[test]
fn starttls_upgrades_the_connection_before_the_login() {
    let smtp = SmtpServer::start(SmtpOptions {
        tls: Some(tls_config()),
        ..Default::default()
    });
    let ca = fixtures().join("ca.crt");
    let home = TestHome::new(&config(
        smtp.port(),
        "starttls",
        &format!("  ca_cert_path: {}", ca.display()),
    ));
    let report = home.manager().send_alert(
        "critical_latency",
        "avg_latency_ms=612 > 500",
        Severity::Critical,
        Some(&[Channel::Email]),
    );
    assert!(report.all_sent(), "{report}");
    let m = &smtp.mails()[0];
    assert!(m.encrypted, "the message was sent before STARTTLS");
    assert_eq!(m.auth.as_ref().unwrap().1, PASSWORD);
    assert_eq!(m.header("Subject").unwrap(), "[CRITICAL] critical_latency");
}

#[test]
fn starttls_is_required_so_a_server_without_it_gets_no_password() {
    // The server offers no STARTTLS: the default security must refuse to go on in
    // plain text rather than send the password unencrypted.
    let smtp = SmtpServer::start(SmtpOptions::default());
    let home = TestHome::new(&config(smtp.port(), "starttls", ""));
    let report = home.manager().send_alert(
        "high_latency",
        "x",
        Severity::Warning,
        Some(&[Channel::Email]),
    );
    assert!(!report.sent(Channel::Email), "{report}");
    assert!(smtp.logins().is_empty(), "password sent without TLS");
    assert!(smtp.mails().is_empty());
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Email] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 1, "a missing STARTTLS is not worth retrying");
    assert!(reason.contains("STARTTLS"), "{reason}");
}

#[test]
fn a_refused_login_fails_the_channel_once_and_the_log_says_why_without_the_password() {
    let smtp = SmtpServer::start(SmtpOptions {
        refuse_login: true,
        ..Default::default()
    });
    let home = TestHome::new(&config(smtp.port(), "none", ""));
    let report = home.manager().send_alert(
        "high_error_rate",
        "error_rate=0.08 > 0.05",
        Severity::Critical,
        Some(&[Channel::Log, Channel::Email]),
    );
    assert!(!report.success_map()[&Channel::Email]);
    assert!(report.success_map()[&Channel::Log]);
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Email] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 1, "535 is permanent: no retry");
    assert!(reason.contains("535"), "{reason}");
    assert!(reason.contains("login refused"), "{reason}");
    assert_eq!(smtp.logins().len(), 1);
    assert!(smtp.mails().is_empty());
    let log = home.alerts_log();
    let failed = lines_with(
        &log,
        "| ERROR | alerting | Email failed for high_error_rate",
    );
    assert_eq!(failed.len(), 1, "{log}");
    assert!(failed[0].contains("535"), "{log}");
    // The alert itself is on record.
    assert_eq!(
        lines_with(
            &log,
            "| CRITICAL | alerting | high_error_rate: error_rate=0.08"
        )
        .len(),
        1
    );
    assert!(!log.contains(PASSWORD), "{log}");
    assert!(!format!("{report:?}").contains(PASSWORD));
    assert!(!serde_json::to_string(&report).unwrap().contains(PASSWORD));
    assert!(!format!("{:?}", home.manager()).contains(PASSWORD));
}

#[test]
fn a_transient_failure_is_retried_with_backoff_and_then_delivered() {
    let smtp = SmtpServer::start(SmtpOptions {
        fail_first_data: 1,
        ..Default::default()
    });
    let home = TestHome::new(&config(smtp.port(), "none", ""));
    let report = home.manager().send_alert(
        "high_latency",
        "x",
        Severity::Warning,
        Some(&[Channel::Email]),
    );
    assert_eq!(
        report.channels[&Channel::Email],
        Delivery::Sent {
            attempts: 2,
            to: "team@example.com, oncall@example.com".into()
        }
    );
    assert_eq!(smtp.mails().len(), 1);
    assert_eq!(home.sleeper.waits(), vec![Duration::from_secs(2)]);
    assert_eq!(
        lines_with(
            &home.alerts_log(),
            "Email sent to team@example.com, oncall@example.com (after 2 tries)"
        )
        .len(),
        1
    );
}

#[test]
fn an_unreachable_server_is_tried_three_times_and_the_caller_keeps_going() {
    let port = closed_port();
    let home = TestHome::new(&config(port, "none", ""));
    let report = home.manager().send_alert(
        "high_latency",
        "x",
        Severity::Warning,
        Some(&[Channel::Email, Channel::Log]),
    );
    let Delivery::Failed { attempts, reason } = &report.channels[&Channel::Email] else {
        panic!("{report}");
    };
    assert_eq!(*attempts, 3);
    assert!(reason.contains(&format!("127.0.0.1:{port}")), "{reason}");
    assert_eq!(
        home.sleeper.waits(),
        vec![Duration::from_secs(2), Duration::from_secs(4)]
    );
    assert!(report.sent(Channel::Log));
    let log = home.alerts_log();
    assert_eq!(
        lines_with(&log, "Email failed for high_latency (after 3 tries)").len(),
        1,
        "{log}"
    );
}

#[test]
fn plain_smtp_without_a_password_sends_no_login() {
    let smtp = SmtpServer::start(SmtpOptions::default());
    let yaml = config(smtp.port(), "none", "").replace(&format!("  password: {PASSWORD}\n"), "");
    let home = TestHome::new(&yaml);
    let report = home
        .manager()
        .send_alert("x", "y", Severity::Info, Some(&[Channel::Email]));
    assert!(report.all_sent(), "{report}");
    assert!(smtp.logins().is_empty());
    assert_eq!(smtp.mails()[0].auth, None);
    assert_eq!(smtp.mails()[0].header("Subject").unwrap(), "[INFO] x");
}
