//! Recovery logic that needs no IO: reconciling servers and planning routes.

pub mod claim;
pub mod install;
pub mod plan;
pub mod reconcile;
