//! imfed: the conformance and interoperability harness for federated IM and presence.
//!
//! Scenarios ([`scenario`]) are YAML files of protocol-neutral steps; a [`target`] names the
//! implementation under test; the [`runner`] drives actors through a protocol [`driver`]
//! against the implementation and the reference server (imfed-server), and the results go
//! to the renderers of `imfed-reports`.

pub mod cli;
pub mod control;
pub mod dns;
pub mod driver;
pub mod exit_code;
pub mod expectations;
pub mod filter;
pub mod mutants;
pub mod runner;
pub mod scenario;
pub mod target;
