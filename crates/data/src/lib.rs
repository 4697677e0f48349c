//! recops-data: interactions, staging ingest, merge, comment quality, training matrices
//! and the deterministic temporal split of ARCHITECTURE.md.
//!
//! ```
//! use recops_data::{RawInteraction, temporal_split};
//!
//! // One user with 5 interactions: the last one (20 %) is held out.
//! let rows: Vec<RawInteraction> = (0..5)
//!     .map(|t| RawInteraction { user_id: 7, item_id: 100 + t, rating: 5.0, timestamp: t })
//!     .collect();
//! let split = temporal_split(&rows);
//! assert_eq!(split.train.len(), 4);
//! assert_eq!(split.test.len(), 1);
//! assert_eq!(split.item_ids[split.test[0].item as usize], 104);
//! ```

mod error;
mod split;

pub use error::{Error, Result};
pub use split::{Entry, RawInteraction, Split, holdout_split, temporal_split};
