//! The reference versions of reconciliation and planning, and the fixtures
//! of the recovery's tests. Test builds only: production never calls them.
//!
//! [`reconcile`] and [`plan`] are written plainly over whole bindings (no
//! compact claims, no precomputed networks, no single-pass chain walk), so
//! that property tests can hold the fast versions to them: the planner
//! (`Planner::plan`, on borrowed and owned bindings), the prefix table and
//! the installer give the routes and refusals that reconciling everything
//! first and then planning it gives.

pub(crate) mod fixtures;
pub(crate) mod plan;
pub(crate) mod reconcile;
