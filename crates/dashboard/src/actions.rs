//! The dashboard's only writes: create and expire a silence (through
//! recops-alerting, so `recops alert list` sees them) and roll the deployment back
//! (recops-deploy's `Deployer::rollback`, what `model-deployment --rollback` runs).
//!
//! The rollback calls recops-deploy directly rather than the `model_deployment` job of
//! recops-automation, which component crates may not depend on. It differs from the
//! job in one detail: the users it verifies with come from the home's
//! `user_item_mappings.json` instead of the model file (reading model files belongs to
//! cf-training, which the dashboard does not depend on).

use recops_alerting::{AlertManager, parse_duration};
use recops_deploy::{DeployOptions, DeployResult, Deployer, TestUsers};
use recops_registry::Registry;
use serde::Deserialize;

use crate::data::Ctx;

/// Users verified after a rollback.
const TEST_USERS: usize = 5;

/// The silence form.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SilenceForm {
    /// Alert name or prefix ending in `*`.
    pub(crate) matcher: String,
    /// `2h`, `30m`, `1d`.
    pub(crate) duration: String,
    /// Why.
    pub(crate) reason: String,
    /// The admin token.
    #[serde(default)]
    pub(crate) admin_token: Option<String>,
    /// The CSRF token.
    #[serde(default)]
    pub(crate) recops_csrf: Option<String>,
}

/// The expire-silence and rollback forms.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SimpleForm {
    /// The silence to expire (absent for a rollback).
    #[serde(default)]
    pub(crate) matcher: Option<String>,
    /// The admin token.
    #[serde(default)]
    pub(crate) admin_token: Option<String>,
    /// The CSRF token.
    #[serde(default)]
    pub(crate) recops_csrf: Option<String>,
}

fn manager(ctx: &Ctx) -> Result<AlertManager, String> {
    AlertManager::builder(&ctx.home)
        .clock(ctx.clock.clone())
        .build()
        .map_err(|e| e.to_string())
}

/// Creates (or replaces) a silence; the message says what was done.
pub(crate) fn silence(ctx: &Ctx, form: &SilenceForm) -> Result<String, String> {
    let duration = parse_duration(form.duration.trim()).map_err(|e| e.to_string())?;
    let s = manager(ctx)?
        .silence_for(&form.matcher, duration, &form.reason)
        .map_err(|e| e.to_string())?;
    tracing::info!(matcher = %s.matcher, until = %s.until, "silence set from the dashboard");
    Ok(format!(
        "silenced {} until {}",
        s.matcher,
        crate::timefmt::local(s.until, ctx.tz)
    ))
}

/// Expires a silence now.
pub(crate) fn expire(ctx: &Ctx, matcher: &str) -> Result<String, String> {
    match manager(ctx)?
        .unsilence(matcher)
        .map_err(|e| e.to_string())?
    {
        true => {
            tracing::info!(matcher, "silence expired from the dashboard");
            Ok(format!("silence {} expired", matcher.trim()))
        }
        false => Err(format!("no silence {:?}", matcher.trim())),
    }
}

/// Rolls the service back to the model before the newest successful deployment.
pub(crate) fn rollback(ctx: &Ctx, admin_token: Option<String>) -> Result<String, String> {
    let deployer = Deployer::new(
        DeployOptions {
            service_url: ctx.service_url.clone(),
            service_urls: ctx.service_urls.clone(),
            admin_token,
            ..DeployOptions::default()
        },
        recops_deploy::DeploymentLog::open(&ctx.home),
        ctx.clock.clone(),
    )
    .map_err(|e| e.to_string())?;
    let users = test_users(ctx);
    let registry = Registry::with_clock(&ctx.home, ctx.clock.clone());
    let outcome = deployer
        .rollback_deployed(&registry, &|_| users.clone())
        .map_err(|e| recops_core::error_chain(&e))?;
    tracing::info!(
        result = %outcome.result,
        "rollback from the dashboard: {}",
        outcome.message
    );
    match outcome.result {
        DeployResult::Deployed => Ok(outcome.message),
        _ => Err(outcome.message),
    }
}

/// Known users from `user_item_mappings.json` (`user_to_idx` keys) and one unknown.
fn test_users(ctx: &Ctx) -> TestUsers {
    let ids = std::fs::read(ctx.home.user_item_mappings())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("user_to_idx")?.as_object().map(|m| {
                m.keys()
                    .filter_map(|k| k.parse::<i64>().ok())
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default();
    let mut ids = ids;
    ids.sort_unstable();
    TestUsers::sample(&ids, TEST_USERS)
}
