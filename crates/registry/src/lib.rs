//! recops-registry (in progress).
