//! [`ModelId`]: a model's id, checked once where it enters recops.

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsutil::validate_name;

/// The id of a trained model (`als_20250115_103000`): a plain name of 1 to 128
/// lowercase ASCII letters, digits and `_`, so it is safe as the folder name
/// `artifacts/cf/<model_id>/`, in a URL and in a log line.
///
/// The rules are checked once, when the id is built ([`ModelId::new`], [`FromStr`],
/// [`TryFrom`], or serde deserialization, which rejects a bad id in a registry file or
/// a request body); every holder of a `ModelId` can use it as a path part without
/// checking again. It serializes as a plain string and derefs to `str`.
///
/// ```
/// use recops_core::ModelId;
///
/// let id: ModelId = "als_20250115_103000".parse()?;
/// assert_eq!(id.as_str(), "als_20250115_103000");
/// assert_eq!(serde_json::to_string(&id)?, r#""als_20250115_103000""#);
/// let err = "../etc".parse::<ModelId>().unwrap_err().to_string();
/// assert!(err.contains(r#""../etc""#) && err.contains("lowercase"), "{err}");
/// assert!(serde_json::from_str::<ModelId>(r#""A/B""#).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelId(String);

impl ModelId {
    /// The longest id accepted, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks `id` and wraps it; the error names the rejected value and what is
    /// expected.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        validate_name("model_id", &id)?;
        Ok(ModelId(id))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as an owned `String`.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// Debug-formats like the string it holds (`"als_1"`), as a `String` id did.
impl fmt::Debug for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for ModelId {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ModelId::new(s)
    }
}

impl TryFrom<String> for ModelId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        ModelId::new(s)
    }
}

impl TryFrom<&str> for ModelId {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        ModelId::new(s)
    }
}

impl From<ModelId> for String {
    fn from(id: ModelId) -> String {
        id.0
    }
}

impl AsRef<str> for ModelId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl AsRef<std::path::Path> for ModelId {
    fn as_ref(&self) -> &std::path::Path {
        std::path::Path::new(&self.0)
    }
}

impl Borrow<str> for ModelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl Deref for ModelId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for ModelId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for ModelId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for ModelId {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl PartialEq<ModelId> for str {
    fn eq(&self, other: &ModelId) -> bool {
        self == other.0
    }
}

impl PartialEq<ModelId> for &str {
    fn eq(&self, other: &ModelId) -> bool {
        *self == other.0
    }
}

impl PartialEq<ModelId> for String {
    fn eq(&self, other: &ModelId) -> bool {
        *self == other.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_are_accepted_and_kept_as_given() {
        for ok in [
            "als_20250115_103000",
            "m2",
            "_",
            &"a".repeat(ModelId::MAX_LEN),
        ] {
            let id = ModelId::new(ok).unwrap();
            assert_eq!(id, ok);
            assert_eq!(id.to_string(), ok);
            assert_eq!(ok.parse::<ModelId>().unwrap(), id);
            assert_eq!(ModelId::try_from(ok.to_owned()).unwrap(), id);
        }
    }

    #[test]
    fn unsafe_ids_are_rejected_naming_the_value_and_the_rule() {
        let too_long = "a".repeat(ModelId::MAX_LEN + 1);
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            "a\\b",
            "/abs",
            "a.b",
            "ALS_1",
            "a b",
            "a\nb",
            "modèle",
            "als-1",
            too_long.as_str(),
        ] {
            let err = ModelId::new(bad).unwrap_err().to_string();
            assert!(err.contains("model_id"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "{err}");
            assert!(err.contains("lowercase") && err.contains("128"), "{err}");
            assert!(bad.parse::<ModelId>().is_err());
        }
    }

    #[test]
    fn serde_is_a_plain_string_validated_on_the_way_in() {
        let id = ModelId::new("bpr_1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, r#""bpr_1""#);
        assert_eq!(serde_json::from_str::<ModelId>(&json).unwrap(), id);
        let err = serde_json::from_str::<ModelId>(r#""../../etc/passwd""#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("../../etc/passwd"), "{err}");
        assert!(serde_json::from_str::<ModelId>("7").is_err());
        // Map keys too: a registry with a bad key does not load.
        let map: std::collections::BTreeMap<ModelId, u8> =
            serde_json::from_str(r#"{"als_1": 1}"#).unwrap();
        assert_eq!(map.get("als_1"), Some(&1));
        assert!(
            serde_json::from_str::<std::collections::BTreeMap<ModelId, u8>>(r#"{"a/b": 1}"#)
                .is_err()
        );
    }
}
