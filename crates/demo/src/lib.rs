//! recops-demo: `recops demo` and `recops gen-data`, orchestration over the jobs of
//! recops-automation, the recommender of recops-serving and the generator of
//! recops-synth. It lives outside the job layer so that the job binaries link
//! neither the HTTP server nor the generator.
//!
//! - [`run_demo`]: the whole system once on generated data in a fresh home
//!   ([`prepare_home`] makes or resets it).
//! - [`gen_data`]: sample data into a home's staging folder and catalog.
//!
//! ```no_run
//! use recops_demo::{DemoOptions, prepare_home, run_demo};
//!
//! let options = DemoOptions::new("demo-home".into(), 0);
//! let home = prepare_home(&options.home)?;
//! let demo = run_demo(&home, &options, &mut std::io::stdout())?;
//! demo.service.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod demo;
mod error;
mod gen_data;

pub use demo::{DEMO_MARKER, Demo, DemoOptions, StepReport, prepare_home, run_demo};
pub use error::{Error, Result};
pub use gen_data::{GenDataReport, gen_data};
pub use recops_synth::{DriftOptions, GenConfig};
