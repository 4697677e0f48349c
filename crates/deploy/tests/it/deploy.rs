use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use recops_core::{FixedClock, ModelId};
use recops_deploy::{
    DeployOptions, DeployResult, Deployer, DeploymentAction, DeploymentHistory, DeploymentStatus,
    RollbackStatus, TestUsers,
};
use recops_serving::{
    Error, ModelParts, ModelSource, RunningService, ServiceOptions, ServingModel,
};

struct Models(HashMap<ModelId, ModelParts>, Option<ModelId>);

impl ModelSource for Models {
    fn initial_model_id(&self) -> recops_serving::Result<Option<ModelId>> {
        Ok(self.1.clone())
    }
    fn load(&self, model_id: &ModelId) -> recops_serving::Result<ServingModel> {
        let parts = self
            .0
            .get(model_id)
            .cloned()
            .ok_or_else(|| Error::ModelUnavailable {
                model_id: model_id.to_string(),
                reason: recops_serving::Unavailable::NotRegistered,
            })?;
        ServingModel::new(parts)
    }
}

/// 20 users x 10 items. With `broken_user`, that user has seen every item, so the model
/// loads (the service's own smoke test passes) but answers that user with nothing:
/// a model built to fail verification.
fn mid(id: &str) -> ModelId {
    id.parse().unwrap()
}

fn model(id: &str, broken_user: Option<usize>) -> ModelParts {
    let (nu, ni) = (20usize, 10usize);
    let mut indptr = vec![0];
    let mut indices = Vec::new();
    for u in 0..nu {
        if Some(u) == broken_user {
            indices.extend(0..ni as u32);
        } else {
            indices.push((u % ni) as u32);
        }
        indptr.push(indices.len());
    }
    ModelParts {
        model_id: mid(id),
        model_type: recops_core::ModelType::Als,
        user_ids: (0..nu as i64).map(|u| 100 + u).collect(),
        item_ids: (0..ni as i64).map(|i| 9000 + i).collect(),
        factors: 2,
        user_factors: (0..nu * 2).map(|x| (x % 5) as f32 + 1.0).collect(),
        item_factors: (0..ni * 2).map(|x| (x % 7) as f32).collect(),
        seen_indptr: indptr,
        seen_indices: indices,
        item_popularity: (0..ni as u32).rev().collect(),
    }
}

fn start(initial: Option<&str>) -> RunningService {
    start_replica(initial, &[])
}

/// A replica whose models are those of [`start`], changed by `overrides`: a model id with
/// `Some(user)` is built broken for that user, with `None` it is missing (its reload
/// answers 404).
fn start_replica(initial: Option<&str>, overrides: &[(&str, Option<usize>)]) -> RunningService {
    let mut models = HashMap::new();
    for (id, broken) in [
        ("als_20250110_090000", None),
        ("als_20250115_100000", None),
        ("bpr_20250116_100000", Some(10)),
        ("als_20250117_100000", None),
    ] {
        match overrides.iter().find(|(o, _)| *o == id) {
            Some((_, None)) => {}
            Some((_, Some(user))) => {
                models.insert(mid(id), model(id, Some(*user)));
            }
            None => {
                models.insert(mid(id), model(id, broken));
            }
        }
    }
    let source = Arc::new(Models(models, initial.map(mid)));
    RunningService::start(
        TcpListener::bind("127.0.0.1:0").unwrap(),
        source,
        None,
        ServiceOptions {
            admin_token: Some("tok".into()),
            ..ServiceOptions::default()
        },
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 15, 10, 0, 0).unwrap()).shared(),
    )
    .unwrap()
}

fn deployer(service_url: String, dir: &std::path::Path) -> Deployer {
    Deployer::new(
        DeployOptions {
            service_url,
            admin_token: Some("tok".into()),
            ..DeployOptions::default()
        },
        dir.join("logs/deployment_history.json"),
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 16, 5, 0, 0).unwrap()).shared(),
    )
    .unwrap()
}

/// Every model is tested with all its 20 users (and an unknown one).
fn users(_: &ModelId) -> TestUsers {
    TestUsers::sample(&(100..120).collect::<Vec<_>>(), 20)
}

#[test]
fn deploy_verify_then_automatic_rollback_of_a_model_that_fails_verification() {
    let service = start(Some("als_20250110_090000"));
    let dir = tempfile::tempdir().unwrap();
    let d = deployer(format!("http://{}", service.addr()), dir.path());

    let ok = d.deploy(&mid("als_20250115_100000"), &users).unwrap();
    assert_eq!(ok.result, DeployResult::Deployed, "{}", ok.message);
    let rec = ok.record.unwrap();
    assert_eq!(
        rec.previous_model_id.as_deref(),
        Some("als_20250110_090000")
    );
    assert!(rec.verification.as_ref().unwrap().success());

    // Deploying the live model again does nothing.
    let same = d.deploy(&mid("als_20250115_100000"), &users).unwrap();
    assert_eq!(same.result, DeployResult::Unchanged);
    assert!(same.record.is_none());

    // The BPR model loads but user 110 gets nothing: verification fails, rollback.
    let bad = d.deploy(&mid("bpr_20250116_100000"), &users).unwrap();
    assert_eq!(bad.result, DeployResult::RolledBack, "{}", bad.message);
    let rec = bad.record.unwrap();
    assert_eq!(rec.status, DeploymentStatus::Failed);
    let v = rec.verification.as_ref().unwrap();
    assert!(v.health_check && v.model_id_match && !v.recommendations_work);
    assert!(
        v.errors.iter().any(|e| e.contains("user 110")),
        "{:?}",
        v.errors
    );
    assert!(rec.rollback_triggered);
    assert_eq!(rec.rollback_status, Some(RollbackStatus::Success));
    assert_eq!(
        d.current_model().unwrap().as_deref(),
        Some("als_20250115_100000")
    );

    let history =
        DeploymentHistory::load(&dir.path().join("logs/deployment_history.json")).unwrap();
    assert_eq!(history.deployments.len(), 2);
    assert_eq!(history.deployments[0].status, DeploymentStatus::Success);
    assert_eq!(
        history.deployments[1].rollback_status,
        Some(RollbackStatus::Success)
    );
}

#[test]
fn a_refused_reload_is_recorded_and_the_old_model_keeps_serving() {
    let service = start(Some("als_20250110_090000"));
    let dir = tempfile::tempdir().unwrap();
    let d = deployer(format!("http://{}", service.addr()), dir.path());
    let out = d.deploy(&mid("als_20991231_000000"), &users).unwrap();
    assert_eq!(out.result, DeployResult::Failed);
    let rec = out.record.unwrap();
    assert!(
        rec.reason.as_deref().unwrap().contains("404"),
        "{:?}",
        rec.reason
    );
    assert!(!rec.rollback_triggered);
    assert_eq!(
        d.current_model().unwrap().as_deref(),
        Some("als_20250110_090000")
    );
}

#[test]
fn a_service_that_is_down_gives_a_failed_record_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = deployer(format!("http://127.0.0.1:{port}"), dir.path());
    let out = d.deploy(&mid("als_20250115_100000"), &users).unwrap();
    assert_eq!(out.result, DeployResult::Failed);
    assert!(out.record.unwrap().reason.unwrap().contains("unreachable"));
    let history =
        DeploymentHistory::load(&dir.path().join("logs/deployment_history.json")).unwrap();
    assert_eq!(history.deployments.len(), 1);
}

#[test]
fn operator_rollback_returns_to_the_previous_model() {
    let service = start(Some("als_20250110_090000"));
    let dir = tempfile::tempdir().unwrap();
    let d = deployer(format!("http://{}", service.addr()), dir.path());
    assert_eq!(
        d.deploy(&mid("als_20250115_100000"), &users)
            .unwrap()
            .result,
        DeployResult::Deployed
    );
    let out = d.rollback(&users).unwrap();
    assert_eq!(out.result, DeployResult::Deployed, "{}", out.message);
    let rec = out.record.unwrap();
    assert_eq!(rec.action, DeploymentAction::Rollback);
    assert_eq!(rec.model_id, "als_20250110_090000");
    assert_eq!(
        d.current_model().unwrap().as_deref(),
        Some("als_20250110_090000")
    );
}

#[test]
fn a_wrong_admin_token_fails_the_deployment_with_the_reason() {
    let service = start(Some("als_20250110_090000"));
    let dir = tempfile::tempdir().unwrap();
    let d = Deployer::new(
        DeployOptions {
            service_url: format!("http://{}", service.addr()),
            admin_token: Some("nope".into()),
            ..DeployOptions::default()
        },
        dir.path().join("h.json"),
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 16, 5, 0, 0).unwrap()).shared(),
    )
    .unwrap();
    let out = d.deploy(&mid("als_20250115_100000"), &users).unwrap();
    assert_eq!(out.result, DeployResult::Failed);
    assert!(out.record.unwrap().reason.unwrap().contains("401"));
}

fn replicas_deployer(urls: Vec<String>, dir: &std::path::Path) -> Deployer {
    Deployer::new(
        DeployOptions {
            service_urls: urls,
            admin_token: Some("tok".into()),
            ..DeployOptions::default()
        },
        dir.join("logs/deployment_history.json"),
        FixedClock::new(Utc.with_ymd_and_hms(2025, 1, 16, 5, 0, 0).unwrap()).shared(),
    )
    .unwrap()
}

/// What the replica at `service` serves, asked on its own.
fn serving(service: &RunningService) -> Option<String> {
    let d = deployer(format!("http://{}", service.addr()), &std::env::temp_dir());
    d.current_model().unwrap().map(|m| m.to_string())
}

#[test]
fn two_replicas_switch_together_and_roll_back_together_when_one_fails_verification() {
    let a = start_replica(Some("als_20250110_090000"), &[]);
    // Replica b's copy of als_20250115_100000 answers user 110 with nothing.
    let b = start_replica(
        Some("als_20250110_090000"),
        &[("als_20250115_100000", Some(10))],
    );
    let (url_a, url_b) = (
        format!("http://{}", a.addr()),
        format!("http://{}", b.addr()),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = replicas_deployer(vec![url_a.clone(), url_b.clone()], dir.path());

    let bad = d.deploy(&mid("als_20250115_100000"), &users).unwrap();
    assert_eq!(bad.result, DeployResult::RolledBack, "{}", bad.message);
    let rec = bad.record.unwrap();
    assert_eq!(rec.status, DeploymentStatus::Failed);
    assert!(rec.rollback_triggered);
    assert_eq!(rec.rollback_status, Some(RollbackStatus::Success));
    let reason = rec.reason.as_deref().unwrap();
    assert!(
        reason.contains(&format!("replica {url_b}")) && reason.contains("user 110"),
        "{reason}"
    );
    assert!(!reason.contains(&format!("replica {url_a}")), "{reason}");
    // Both replicas are back on the previous model, each verified with it.
    assert_eq!(serving(&a).as_deref(), Some("als_20250110_090000"));
    assert_eq!(serving(&b).as_deref(), Some("als_20250110_090000"));
    assert!(rec.rollback_verification.as_ref().unwrap().success());

    // Happy path: a model good on both replicas switches both.
    let ok = d.deploy(&mid("als_20250117_100000"), &users).unwrap();
    assert_eq!(ok.result, DeployResult::Deployed, "{}", ok.message);
    assert_eq!(serving(&a).as_deref(), Some("als_20250117_100000"));
    assert_eq!(serving(&b).as_deref(), Some("als_20250117_100000"));
    assert_eq!(
        d.current_model().unwrap().as_deref(),
        Some("als_20250117_100000")
    );

    // The operator's rollback reaches both replicas.
    let back = d.rollback(&users).unwrap();
    assert_eq!(back.result, DeployResult::Deployed, "{}", back.message);
    assert_eq!(serving(&a).as_deref(), Some("als_20250110_090000"));
    assert_eq!(serving(&b).as_deref(), Some("als_20250110_090000"));

    let history =
        DeploymentHistory::load(&dir.path().join("logs/deployment_history.json")).unwrap();
    assert_eq!(history.deployments.len(), 3, "one record per deployment");
    assert_eq!(history.deployments[0].status, DeploymentStatus::Failed);
}

#[test]
fn a_replica_that_refuses_the_reload_rolls_back_the_replicas_that_switched() {
    let a = start_replica(Some("als_20250110_090000"), &[]);
    // Replica b cannot load als_20250115_100000 (as if it could not read its folder).
    let b = start_replica(
        Some("als_20250110_090000"),
        &[("als_20250115_100000", None)],
    );
    let url_b = format!("http://{}", b.addr());
    let dir = tempfile::tempdir().unwrap();
    let d = replicas_deployer(
        vec![format!("http://{}", a.addr()), url_b.clone()],
        dir.path(),
    );
    let out = d.deploy(&mid("als_20250115_100000"), &users).unwrap();
    assert_eq!(out.result, DeployResult::RolledBack, "{}", out.message);
    let rec = out.record.unwrap();
    let reason = rec.reason.as_deref().unwrap();
    assert!(
        reason.contains(&format!("replica {url_b}")) && reason.contains("404"),
        "{reason}"
    );
    assert_eq!(rec.rollback_status, Some(RollbackStatus::Success));
    assert_eq!(serving(&a).as_deref(), Some("als_20250110_090000"));
    assert_eq!(serving(&b).as_deref(), Some("als_20250110_090000"));
}
