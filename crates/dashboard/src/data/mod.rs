//! What every page and API call shows, read from the home's stores. One module per
//! page; each returns a serialisable view that the page renders and the API returns
//! as it is.

pub(crate) mod alerts;
pub(crate) mod drift;
pub(crate) mod models;
pub(crate) mod overview;
pub(crate) mod pipelines;
pub(crate) mod scheduler;
pub(crate) mod service;
pub(crate) mod training;

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use recops_core::{Home, SharedClock};
use serde::Serialize;

use crate::timefmt;

/// What the readers need: the home, the time zone and the clock.
#[derive(Debug)]
pub(crate) struct Ctx {
    /// The home read.
    pub(crate) home: Home,
    /// The configured time zone (scheduler config), UTC when it cannot be read.
    pub(crate) tz: Tz,
    /// Now.
    pub(crate) clock: SharedClock,
    /// The recommender's URL (config/recops.yaml).
    pub(crate) service_url: String,
    /// Every replica's URL (`service.urls`): the rollback button reaches all of them.
    pub(crate) service_urls: Vec<String>,
    /// After how long a `running` pipeline run is flagged as stale.
    pub(crate) stale_after_hours: f64,
    /// Where the scheduler's job binaries are looked up.
    pub(crate) bin_dir: PathBuf,
    /// Results of slow checks (health, drift reports), reused for a few seconds.
    pub(crate) cache: crate::cache::Cache,
}

impl Ctx {
    /// Now.
    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// A timestamp as shown: local time in the configured zone, and relative.
    pub(crate) fn when(&self, t: DateTime<Utc>) -> When {
        When {
            utc: recops_core::format_timestamp(t),
            local: timefmt::local(t, self.tz),
            relative: timefmt::relative(t, self.now()),
        }
    }

    /// [`Ctx::when`] of a stored RFC 3339 string (`None` when it does not parse).
    pub(crate) fn when_str(&self, s: &str) -> Option<When> {
        recops_core::parse_timestamp(s).map(|t| self.when(t))
    }
}

/// A point in time, ready to show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct When {
    /// RFC 3339, UTC.
    pub(crate) utc: String,
    /// In the configured time zone.
    pub(crate) local: String,
    /// Relative to now.
    pub(crate) relative: String,
}
