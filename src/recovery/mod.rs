//! Recovery: reconciling servers' bindings and planning and installing one
//! route per delegated prefix.
//!
//! Sans IO (no sockets, no clock: time is an argument): [`rank`] (the one
//! order of claims, RFC 5007 s.4.3.4), [`planner`] (route planning, written
//! once over borrowed and owned bindings), [`claim`] (the compact form made
//! on the connection task), [`table`] (the prefix table: reconciliation and
//! route decisions as claims stream in), [`prune`] (the prune rail), and
//! the reference versions the property tests hold those to:
//! [`reconcile`] and [`plan`]. With IO: [`install`], the async driver that
//! lists the route table into the prefix table and applies its changes
//! through a [`crate::routes::RouteTable`].

pub mod claim;
pub mod install;
pub mod plan;
pub mod planner;
pub mod prune;
pub mod rank;
pub mod reconcile;
pub mod table;
