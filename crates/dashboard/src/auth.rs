//! Who may change anything: the admin token (`RECOPS_ADMIN_TOKEN`) and CSRF
//! protection for the POST actions, and the loopback rule for binding.
//!
//! A browser form carries the admin token (typed by the operator) and the process's
//! CSRF token in hidden fields; the same CSRF token is set as a `SameSite=Strict`,
//! `HttpOnly` cookie on every page. A POST is accepted only when the field equals the
//! cookie and the process's token, its `Origin` (when sent) is this server, and the
//! admin token matches. Tools without a browser send `Authorization: Bearer <token>`
//! and need no CSRF token (no cookie is involved, so nothing can be forged).

use std::net::IpAddr;

use axum::http::{HeaderMap, header};

/// Name of the CSRF cookie and form field.
pub(crate) const CSRF_NAME: &str = "recops_csrf";

/// Why an action is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No admin token is configured: actions are off.
    NoTokenConfigured,
    /// Wrong or missing admin token.
    BadToken,
    /// The CSRF check failed.
    Csrf(&'static str),
}

impl Refusal {
    /// The message shown.
    pub(crate) fn message(&self) -> String {
        match self {
            Refusal::NoTokenConfigured => "actions are disabled: start the dashboard with \
                RECOPS_ADMIN_TOKEN set to enable them"
                .to_owned(),
            Refusal::BadToken => "wrong or missing admin token".to_owned(),
            Refusal::Csrf(why) => {
                format!("request refused (CSRF check: {why}); reload the page and try again")
            }
        }
    }
}

/// The secrets of one dashboard process.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    admin_token: Option<String>,
    csrf: String,
}

impl Guard {
    /// A guard with a fresh random CSRF token.
    pub(crate) fn new(admin_token: Option<String>) -> Self {
        Guard {
            admin_token: admin_token.filter(|t| !t.is_empty()),
            csrf: format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        }
    }

    /// The CSRF token forms carry.
    pub(crate) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// The admin token (passed on to the recommender by a rollback).
    pub(crate) fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// Whether actions are possible at all.
    pub(crate) fn actions_enabled(&self) -> bool {
        self.admin_token.is_some()
    }

    /// The `Set-Cookie` value of every page.
    pub(crate) fn cookie(&self) -> String {
        format!(
            "{CSRF_NAME}={}; Path=/; HttpOnly; SameSite=Strict",
            self.csrf
        )
    }

    /// Checks a POST: bearer token alone, or form token + CSRF (field, cookie, origin).
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        form_token: Option<&str>,
        form_csrf: Option<&str>,
    ) -> Result<(), Refusal> {
        let Some(expected) = self.admin_token.as_deref() else {
            return Err(Refusal::NoTokenConfigured);
        };
        if bearer(headers).is_some_and(|t| same(t, expected)) {
            return Ok(());
        }
        self.check_csrf(headers, form_csrf)?;
        match form_token {
            Some(t) if same(t.trim(), expected) => Ok(()),
            _ => Err(Refusal::BadToken),
        }
    }

    fn check_csrf(&self, headers: &HeaderMap, form_csrf: Option<&str>) -> Result<(), Refusal> {
        if !origin_matches(headers) {
            return Err(Refusal::Csrf("the request came from another site"));
        }
        let field = form_csrf.ok_or(Refusal::Csrf("no token in the form"))?;
        let cookie = cookie(headers, CSRF_NAME).ok_or(Refusal::Csrf("no cookie"))?;
        if same(field, &self.csrf) && same(cookie, &self.csrf) {
            Ok(())
        } else {
            Err(Refusal::Csrf("the token does not match"))
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Origin`, when the browser sends it, names this server's `Host`.
fn origin_matches(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// Compares secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Whether `host` names only this machine (`127.0.0.1`, `::1`, `localhost`).
pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(cookie: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8050"));
        h.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn posts_need_the_token_and_a_matching_csrf_token_from_this_origin() {
        let g = Guard::new(Some("s3cret".into()));
        let csrf = g.csrf().to_owned();
        let ok = headers(
            &format!("a=b; {CSRF_NAME}={csrf}"),
            Some("http://127.0.0.1:8050"),
        );
        assert_eq!(g.check(&ok, Some("s3cret"), Some(&csrf)), Ok(()));
        assert_eq!(
            g.check(&ok, Some("nope"), Some(&csrf)),
            Err(Refusal::BadToken)
        );
        assert!(matches!(
            g.check(&ok, Some("s3cret"), Some("forged")),
            Err(Refusal::Csrf(_))
        ));
        let evil = headers(&format!("{CSRF_NAME}={csrf}"), Some("http://evil.example"));
        assert!(matches!(
            g.check(&evil, Some("s3cret"), Some(&csrf)),
            Err(Refusal::Csrf(_))
        ));
        let no_cookie = headers("x=y", None);
        assert!(matches!(
            g.check(&no_cookie, Some("s3cret"), Some(&csrf)),
            Err(Refusal::Csrf(_))
        ));
    }

    #[test]
    fn a_bearer_token_works_without_csrf_and_nothing_works_without_a_configured_token() {
        let g = Guard::new(Some("s3cret".into()));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert_eq!(g.check(&h, None, None), Ok(()));
        let off = Guard::new(None);
        assert_eq!(
            off.check(&h, Some("s3cret"), None),
            Err(Refusal::NoTokenConfigured)
        );
        assert!(!off.actions_enabled());
    }

    #[test]
    fn loopback_hosts() {
        for h in ["127.0.0.1", "::1", "[::1]", "localhost", "127.1.2.3"] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["0.0.0.0", "192.168.1.5", "example.org", "::"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
