//! Recovery: reconciling servers' bindings and planning and installing one
//! route per delegated prefix.
//!
//! Sans IO (no sockets, no clock: time is an argument):
//! - [`settings`]: what planning is told (the ownership rule, our relay
//!   layer, the interface map, the fallback);
//! - [`rejection`]: why a prefix gets no route;
//! - [`rank`]: the one order of claims (RFC 5007 s.4.3.4) and the
//!   recovery's clock ([`rank::Millis`]);
//! - [`observed`]: whole bindings as a server reported them, and the
//!   clients' addresses for the next-hop fallback;
//! - [`planner`]: route planning, written once over borrowed and owned
//!   bindings;
//! - [`claim`]: the compact form made on the connection task;
//! - [`table`]: the prefix table: reconciliation and route decisions as
//!   claims stream in;
//! - [`prune`]: the prune rail;
//! - [`ledger`]: what a recovery knew of each route it left in place (the
//!   file `status` reads).
//!
//! With IO: [`install`], the async driver that lists the route table into
//! the prefix table and applies its changes through a
//! [`crate::routes::RouteTable`]. Test builds also have `reference`: the
//! plainly written versions of reconciliation and planning that property
//! tests hold the fast ones to.

pub mod claim;
pub mod install;
pub mod ledger;
pub mod observed;
pub mod pace;
pub mod planner;
pub mod prune;
pub mod rank;
#[cfg(test)]
pub(crate) mod reference;
pub mod rejection;
pub mod settings;
pub mod table;
