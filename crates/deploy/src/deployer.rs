//! Deploy, verify and roll back over the service's HTTP API.

use std::time::{Duration, Instant};

use recops_core::{ModelId, SharedClock, format_timestamp};
use serde::Serialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::history::{
    DeploymentAction, DeploymentRecord, DeploymentStatus, RollbackStatus, Verification,
};
use crate::store::DeploymentLog;

/// How to reach the service and what to do on failure.
#[derive(Debug, Clone)]
pub struct DeployOptions {
    /// Base URL of the recommender (`http://127.0.0.1:8000`), used when
    /// `service_urls` is empty.
    pub service_url: String,
    /// Every replica of the recommender (`service.urls`), reloaded and verified in this
    /// order; empty (default) = `service_url` alone. See [`Deployer::deploy`].
    pub service_urls: Vec<String>,
    /// Verify the deployment from outside (spec default: true).
    pub verify: bool,
    /// Roll back automatically when verification fails (spec default: true).
    pub rollback_on_failure: bool,
    /// Bearer token for `/reload_model` (`RECOPS_ADMIN_TOKEN`).
    pub admin_token: Option<String>,
    /// Timeout of `/health` and `/recommend` calls (spec: 5 s and 10 s; default 10 s).
    pub request_timeout: Duration,
    /// Timeout of `/reload_model` (spec: 30 s; default 60 s: large models take time).
    pub reload_timeout: Duration,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            service_url: "http://127.0.0.1:8000".into(),
            service_urls: Vec::new(),
            verify: true,
            rollback_on_failure: true,
            admin_token: None,
            request_timeout: Duration::from_secs(10),
            reload_timeout: Duration::from_secs(60),
        }
    }
}

impl DeployOptions {
    /// The replicas to deploy to: `service_urls`, or `service_url` when it is empty.
    pub fn urls(&self) -> Vec<String> {
        if self.service_urls.is_empty() {
            vec![self.service_url.clone()]
        } else {
            self.service_urls.clone()
        }
    }
}

/// Users to verify a model with: some the model knows (each must get a personalised
/// answer) and one it does not (it must get the popularity fallback).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestUsers {
    /// Known users, drawn from the model's mappings.
    pub known: Vec<i64>,
    /// A user id the model does not know.
    pub unknown: i64,
}

impl TestUsers {
    /// Up to `n` known users spread evenly over `user_ids`, and an id certainly not in
    /// them ([`recops_core::absent_id`]).
    pub fn sample(user_ids: &[i64], n: usize) -> Self {
        let known = if user_ids.is_empty() || n == 0 {
            Vec::new()
        } else {
            let step = (user_ids.len() / n).max(1);
            user_ids.iter().step_by(step).take(n).copied().collect()
        };
        let unknown = recops_core::absent_id(user_ids);
        TestUsers { known, unknown }
    }
}

/// How a deployment (or rollback) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployResult {
    /// The model serves now.
    Deployed,
    /// The model was already live; nothing was done.
    Unchanged,
    /// The deployment failed; the previous model keeps serving (or nothing does).
    Failed,
    /// Verification failed and the previous model was restored.
    RolledBack,
}

impl DeployResult {
    /// The JSON spelling (`rolled_back`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeployResult::Deployed => "deployed",
            DeployResult::Unchanged => "unchanged",
            DeployResult::Failed => "failed",
            DeployResult::RolledBack => "rolled_back",
        }
    }
}

impl std::fmt::Display for DeployResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What [`Deployer::deploy`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploymentOutcome {
    /// Deployed, unchanged (already live), failed or rolled back.
    pub result: DeployResult,
    /// The record appended to the history (absent for `unchanged`).
    pub record: Option<DeploymentRecord>,
    /// A one-line summary for people.
    pub message: String,
}

/// Deploys models to the recommender's replicas and keeps the history.
#[derive(Debug)]
pub struct Deployer {
    client: reqwest::blocking::Client,
    options: DeployOptions,
    urls: Vec<String>,
    history: DeploymentLog,
    clock: SharedClock,
}

impl Deployer {
    /// A deployer for `options.service_url`, recording to `history`
    /// ([`DeploymentLog::open`] of the home; a path is the embedded file there).
    pub fn new(
        options: DeployOptions,
        history: impl Into<DeploymentLog>,
        clock: SharedClock,
    ) -> Result<Self> {
        let history = history.into();
        // reqwest is built with rustls without a default provider (see DEPENDENCIES.md).
        recops_core::tls::install_crypto_provider();
        let client = reqwest::blocking::Client::builder()
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| Error::Client(e.to_string()))?;
        Ok(Deployer {
            client,
            urls: options.urls(),
            options,
            history,
            clock,
        })
    }

    /// `reason` naming the replica, when there are several.
    fn on(&self, url: &str, reason: String) -> String {
        if self.urls.len() > 1 {
            format!("replica {url}: {reason}")
        } else {
            reason
        }
    }

    /// Adds replica `url`'s verification to `acc` (a check passes when it passes on
    /// every replica).
    fn merge(&self, acc: &mut Verification, url: &str, v: Verification) {
        acc.health_check &= v.health_check;
        acc.model_id_match &= v.model_id_match;
        acc.recommendations_work &= v.recommendations_work;
        acc.errors
            .extend(v.errors.into_iter().map(|e| self.on(url, e)));
    }

    /// The model every replica serves now: `Ok(None)` when they run without a model,
    /// `Err(reason)` when one cannot be reached or they serve different models.
    pub fn current_model(&self) -> std::result::Result<Option<ModelId>, String> {
        let mut first: Option<Option<ModelId>> = None;
        for url in &self.urls {
            let m = self.current_model_at(url).map_err(|e| self.on(url, e))?;
            match &first {
                None => first = Some(m),
                Some(f) if *f != m => {
                    return Err(format!(
                        "the replicas serve different models: {} serves {}, {url} serves {}",
                        self.urls[0],
                        f.as_deref().unwrap_or("none"),
                        m.as_deref().unwrap_or("none")
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(first.flatten())
    }

    fn current_model_at(&self, base: &str) -> std::result::Result<Option<ModelId>, String> {
        let resp = self
            .client
            .get(endpoint(base, "/health"))
            .timeout(Duration::from_secs(5))
            .send()
            .map_err(|e| format!("service unreachable at {base}: {e}"))?;
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        match body.get("model_id") {
            Some(Value::String(id)) => id
                .parse()
                .map(Some)
                .map_err(|e| format!("GET /health: {e}")),
            _ if status.is_success() || status.as_u16() == 503 => Ok(None),
            _ => Err(format!("GET /health answered {status}")),
        }
    }

    /// Asks every replica, in order, to load `model_id`; stops at the first refusal.
    /// `Err` carries the service's reason.
    pub fn reload(&self, model_id: &ModelId) -> std::result::Result<(), String> {
        for url in &self.urls {
            self.reload_at(url, model_id).map_err(|e| self.on(url, e))?;
        }
        Ok(())
    }

    fn reload_at(&self, base: &str, model_id: &ModelId) -> std::result::Result<(), String> {
        let mut req = self
            .client
            .post(endpoint(base, "/reload_model"))
            .timeout(self.options.reload_timeout)
            .json(&json!({ "model_id": model_id }));
        if let Some(token) = &self.options.admin_token {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .map_err(|e| format!("POST /reload_model failed: {e}"))?;
        let status = resp.status();
        if status.is_success() {
            recops_core::faults::point("deploy.reloaded");
            return Ok(());
        }
        let body: Value = resp.json().unwrap_or(Value::Null);
        let reason = body
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        Err(format!("POST /reload_model answered {status}: {reason}"))
    }

    /// The spec's `verify_deployment`, fixed: every known test user must get a
    /// non-empty personalised answer from `expected_model_id`, and the unknown user a
    /// non-empty fallback, on every replica (errors name the replica when there are
    /// several).
    pub fn verify(&self, expected_model_id: &ModelId, users: &TestUsers) -> Verification {
        let mut acc = passed();
        for url in &self.urls {
            let v = self.verify_at(url, expected_model_id, users);
            self.merge(&mut acc, url, v);
        }
        acc
    }

    fn verify_at(
        &self,
        base: &str,
        expected_model_id: &ModelId,
        users: &TestUsers,
    ) -> Verification {
        let mut v = Verification::default();
        match self
            .client
            .get(endpoint(base, "/health"))
            .timeout(Duration::from_secs(5))
            .send()
        {
            Ok(resp) => {
                v.health_check = resp.status().is_success();
                if !v.health_check {
                    v.errors
                        .push(format!("GET /health answered {}", resp.status()));
                }
                let body: Value = resp.json().unwrap_or(Value::Null);
                let served = body.get("model_id").and_then(Value::as_str);
                v.model_id_match = served == Some(expected_model_id);
                if !v.model_id_match {
                    v.errors.push(format!(
                        "service reports model {}, expected {expected_model_id}",
                        served.unwrap_or("none")
                    ));
                }
            }
            Err(e) => v.errors.push(format!("health check failed: {e}")),
        }
        if users.known.is_empty() {
            v.errors.push("no known test users to verify with".into());
        }
        let mut all_ok = !users.known.is_empty();
        let checks = users
            .known
            .iter()
            .map(|&u| (u, false))
            .chain(std::iter::once((users.unknown, true)));
        for (user, expect_fallback) in checks {
            if let Err(e) = self.check_user(base, user, expect_fallback, expected_model_id) {
                all_ok = false;
                v.errors.push(e);
            }
        }
        v.recommendations_work = all_ok;
        v
    }

    fn check_user(
        &self,
        base: &str,
        user: i64,
        expect_fallback: bool,
        model_id: &ModelId,
    ) -> std::result::Result<(), String> {
        let resp = self
            .client
            .post(endpoint(base, "/recommend"))
            .json(&json!({"user_id": user, "topk": 5}))
            .send()
            .map_err(|e| format!("recommendation for user {user} failed: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("recommendation for user {user} answered {status}"));
        }
        let body: Value = resp
            .json()
            .map_err(|e| format!("recommendation for user {user} is not JSON: {e}"))?;
        let items = body
            .get("items")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if items == 0 {
            return Err(format!("recommendation for user {user} is empty"));
        }
        if body.get("model_id").and_then(Value::as_str) != Some(model_id) {
            return Err(format!(
                "recommendation for user {user} came from another model"
            ));
        }
        let fallback = body
            .get("fallback")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if fallback != expect_fallback {
            return Err(if expect_fallback {
                format!("unknown user {user} did not get the popularity fallback")
            } else {
                format!("known user {user} got the popularity fallback")
            });
        }
        Ok(())
    }

    /// The spec's `deploy_model` with its result recorded in the history:
    /// reload `model_id`, verify it, roll back to the previous model when verification
    /// fails. Service failures give a `failed` record, never an `Err`; `Err` means the
    /// history could not be written. `users_of(model_id)` gives the test users of a
    /// model (the rollback target is verified with its own users).
    ///
    /// With several replicas ([`DeployOptions::service_urls`]) every replica is
    /// reloaded in order and then every replica is verified; when a reload or a
    /// verification fails on any of them, every replica that had switched goes back to
    /// the model it served before (and is verified with it), and one history record
    /// names the failing replica and why. The caller records the registry's deployed
    /// model only on [`DeployResult::Deployed`], i.e. after all replicas verified.
    pub fn deploy(
        &self,
        model_id: &ModelId,
        users_of: &dyn Fn(&ModelId) -> TestUsers,
    ) -> Result<DeploymentOutcome> {
        let started = Instant::now();
        let timestamp = format_timestamp(self.clock.now());
        let mut previous = Vec::with_capacity(self.urls.len());
        for url in &self.urls {
            match self.current_model_at(url) {
                Ok(p) => previous.push(p),
                Err(reason) => {
                    let reason = self.on(url, reason);
                    let record = self
                        .record(timestamp, model_id, None, DeploymentStatus::Failed, started)
                        .with_reason(reason.clone());
                    return self.finish(
                        record,
                        DeployResult::Failed,
                        format!("deployment of {model_id} failed: {reason}"),
                    );
                }
            }
        }
        // The record's previous model: the first replica's (they normally agree).
        let prev = previous.first().cloned().flatten();
        if previous.iter().all(|p| p.as_deref() == Some(model_id)) {
            return Ok(DeploymentOutcome {
                result: DeployResult::Unchanged,
                record: None,
                message: format!("{model_id} is already live; nothing to do"),
            });
        }
        // Replicas that switched to `model_id`, with the model each served before.
        let mut switched: Vec<(&str, Option<ModelId>)> = Vec::new();
        for (url, p) in self.urls.iter().zip(&previous) {
            if p.as_deref() == Some(model_id) {
                continue;
            }
            if let Err(reason) = self.reload_at(url, model_id) {
                let reason = self.on(url, reason);
                let mut record = self.record(
                    timestamp,
                    model_id,
                    prev.clone(),
                    DeploymentStatus::Failed,
                    started,
                );
                if switched.is_empty() || !self.options.rollback_on_failure {
                    let keeps = if switched.is_empty() {
                        "the previous model keeps serving".to_owned()
                    } else {
                        format!(
                            "{} replica(s) switched and were not rolled back (rollback disabled)",
                            switched.len()
                        )
                    };
                    record.reason = Some(format!("{reason}; {keeps}"));
                    return self.finish(
                        record,
                        DeployResult::Failed,
                        format!("deployment of {model_id} failed: {reason}"),
                    );
                }
                record.reason = Some(reason);
                return self.roll_back_switched(
                    record,
                    format!("{model_id} failed to load on {url}"),
                    model_id,
                    &switched,
                    users_of,
                    started,
                );
            }
            switched.push((url, p.clone()));
        }
        if !self.options.verify {
            let record = self.record(
                timestamp,
                model_id,
                prev,
                DeploymentStatus::Success,
                started,
            );
            return self.finish(
                record,
                DeployResult::Deployed,
                format!("{model_id} deployed (not verified)"),
            );
        }
        let verification = self.verify(model_id, &users_of(model_id));
        if verification.success() {
            let mut record = self.record(
                timestamp,
                model_id,
                prev,
                DeploymentStatus::Success,
                started,
            );
            record.verification = Some(verification);
            return self.finish(
                record,
                DeployResult::Deployed,
                format!("{model_id} deployed and verified"),
            );
        }
        let mut record = self.record(timestamp, model_id, prev, DeploymentStatus::Failed, started);
        record.reason = Some(format!(
            "verification failed: {}",
            verification.errors.join("; ")
        ));
        record.verification = Some(verification);
        if !self.options.rollback_on_failure {
            return self.finish(
                record,
                DeployResult::Failed,
                format!("{model_id} failed verification (rollback disabled)"),
            );
        }
        self.roll_back_switched(
            record,
            format!("{model_id} failed verification"),
            model_id,
            &switched,
            users_of,
            started,
        )
    }

    /// Returns every replica in `switched` to the model it served before, verifies it
    /// and records `record` with the rollback's outcome.
    fn roll_back_switched(
        &self,
        mut record: DeploymentRecord,
        failure: String,
        model_id: &ModelId,
        switched: &[(&str, Option<ModelId>)],
        users_of: &dyn Fn(&ModelId) -> TestUsers,
        started: Instant,
    ) -> Result<DeploymentOutcome> {
        let stranded: Vec<&str> = switched
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(u, _)| *u)
            .collect();
        if stranded.len() == switched.len() {
            record.reason = Some(format!(
                "{}; no previous model to roll back to",
                record.reason.unwrap_or_default()
            ));
            return self.finish(
                record,
                DeployResult::Failed,
                format!("{failure} and there is no previous model"),
            );
        }
        record.rollback_triggered = true;
        let mut rv = passed();
        let mut ok = true;
        let mut targets: Vec<&str> = Vec::new();
        for (url, prev) in switched {
            let Some(prev) = prev.as_ref() else {
                continue;
            };
            tracing::warn!(model_id = %model_id, previous = %prev, replica = %url, "rolling back");
            let (status, v) = self.rollback_at(url, prev, &users_of(prev));
            ok &= status == RollbackStatus::Success;
            self.merge(&mut rv, url, v);
            if !targets.contains(&prev.as_str()) {
                targets.push(prev.as_str());
            }
        }
        if !stranded.is_empty() {
            ok = false;
            rv.errors.push(format!(
                "{} served no model before and keep {model_id}",
                stranded.join(", ")
            ));
        }
        let status = if ok {
            RollbackStatus::Success
        } else {
            RollbackStatus::Failed
        };
        record.rollback_status = Some(status);
        record.rollback_verification = Some(rv);
        record.duration_seconds = started.elapsed().as_secs_f64();
        let targets = targets.join(", ");
        let message = match status {
            RollbackStatus::Success => format!("{failure}; rolled back to {targets}"),
            RollbackStatus::Failed => {
                format!("{failure} and the rollback to {targets} FAILED: check the service")
            }
        };
        self.finish(record, DeployResult::RolledBack, message)
    }

    /// Reloads `model_id` on every replica and verifies it; the spec's
    /// `rollback_deployment`.
    pub fn rollback_to(
        &self,
        model_id: &ModelId,
        users: &TestUsers,
    ) -> (RollbackStatus, Verification) {
        let mut acc = passed();
        let mut ok = true;
        for url in &self.urls {
            let (status, v) = self.rollback_at(url, model_id, users);
            ok &= status == RollbackStatus::Success;
            self.merge(&mut acc, url, v);
        }
        let status = if ok {
            RollbackStatus::Success
        } else {
            RollbackStatus::Failed
        };
        (status, acc)
    }

    fn rollback_at(
        &self,
        base: &str,
        model_id: &ModelId,
        users: &TestUsers,
    ) -> (RollbackStatus, Verification) {
        if let Err(reason) = self.reload_at(base, model_id) {
            let v = Verification {
                errors: vec![reason],
                ..Verification::default()
            };
            return (RollbackStatus::Failed, v);
        }
        let v = self.verify_at(base, model_id, users);
        let status = if v.success() {
            RollbackStatus::Success
        } else {
            RollbackStatus::Failed
        };
        (status, v)
    }

    /// `model-deployment --rollback`: returns the service to the model that served
    /// before the newest successful deployment, verifies it and records it.
    pub fn rollback(&self, users_of: &dyn Fn(&ModelId) -> TestUsers) -> Result<DeploymentOutcome> {
        self.rollback_from(None, &|_| false, users_of)
    }

    /// The operator's rollback (`model-deployment --rollback`, the dashboard's button):
    /// from the registry's `deployed` model to the last model deployed successfully
    /// before it (never back and forth), skipping models the registry no longer
    /// serves; a successful rollback becomes the registry's `deployed` entry, so it
    /// sticks across restarts and scheduled deployments.
    pub fn rollback_deployed(
        &self,
        registry: &recops_registry::Registry,
        users_of: &dyn Fn(&ModelId) -> TestUsers,
    ) -> Result<DeploymentOutcome> {
        let current = registry.deployed()?.map(|d| d.model_id);
        let skip = |id: &ModelId| registry.servable(id).is_err();
        let outcome = self.rollback_from(current.as_ref(), &skip, users_of)?;
        if outcome.result == DeployResult::Deployed
            && let Some(record) = &outcome.record
        {
            registry.record_deployment(
                &record.model_id,
                recops_registry::DeployedBy::Rollback,
                &outcome.message,
            )?;
        }
        Ok(outcome)
    }

    /// `model-deployment --rollback` from `current` (the deployed model; `None` = what
    /// the service serves, else the newest successful deployment): goes to
    /// [`crate::DeploymentHistory::rollback_target`], skipping models `skip` refuses,
    /// verifies it and records it.
    pub fn rollback_from(
        &self,
        current: Option<&ModelId>,
        skip: &dyn Fn(&ModelId) -> bool,
        users_of: &dyn Fn(&ModelId) -> TestUsers,
    ) -> Result<DeploymentOutcome> {
        let started = Instant::now();
        let timestamp = format_timestamp(self.clock.now());
        let history = self.history.load()?;
        let serving = self.current_model().ok().flatten();
        let from = current
            .cloned()
            .or_else(|| serving.clone())
            .or_else(|| history.last_success().map(|d| d.model_id.clone()))
            .ok_or_else(|| {
                Error::NoRollbackTarget("no successful deployment in the history".into())
            })?;
        let target = history.rollback_target(&from, skip).ok_or_else(|| {
            Error::NoRollbackTarget(format!(
                "no model was deployed successfully before {from} (that is still servable)"
            ))
        })?;
        let current = serving;
        let (status, v) = self.rollback_to(&target, &users_of(&target));
        let mut record = self.record(
            timestamp,
            &target,
            current,
            if status == RollbackStatus::Success {
                DeploymentStatus::Success
            } else {
                DeploymentStatus::Failed
            },
            started,
        );
        record.action = DeploymentAction::Rollback;
        if !v.success() {
            record.reason = Some(format!(
                "rollback verification failed: {}",
                v.errors.join("; ")
            ));
        }
        record.verification = Some(v);
        let (result, message) = match status {
            RollbackStatus::Success => (DeployResult::Deployed, format!("rolled back to {target}")),
            RollbackStatus::Failed => {
                (DeployResult::Failed, format!("rollback to {target} failed"))
            }
        };
        self.finish(record, result, message)
    }

    fn record(
        &self,
        timestamp: String,
        model_id: &ModelId,
        previous: Option<ModelId>,
        status: DeploymentStatus,
        started: Instant,
    ) -> DeploymentRecord {
        DeploymentRecord {
            timestamp,
            model_id: model_id.clone(),
            previous_model_id: previous,
            status,
            verification: None,
            rollback_triggered: false,
            rollback_status: None,
            rollback_verification: None,
            action: DeploymentAction::Deploy,
            reason: None,
            duration_seconds: started.elapsed().as_secs_f64(),
        }
    }

    fn finish(
        &self,
        record: DeploymentRecord,
        result: DeployResult,
        message: String,
    ) -> Result<DeploymentOutcome> {
        self.history.append(record.clone())?;
        match record.status {
            DeploymentStatus::Success => tracing::info!(model_id = %record.model_id, "{message}"),
            DeploymentStatus::Failed => tracing::error!(model_id = %record.model_id, "{message}"),
        }
        Ok(DeploymentOutcome {
            result,
            record: Some(record),
            message,
        })
    }
}

impl DeploymentRecord {
    fn with_reason(mut self, reason: String) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// `path` on the replica at `base`.
fn endpoint(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim_end_matches('/'))
}

/// A verification with every check passed and no errors: the start of a merge.
fn passed() -> Verification {
    Verification {
        health_check: true,
        model_id_match: true,
        recommendations_work: true,
        errors: Vec::new(),
    }
}
