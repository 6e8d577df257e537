//! imfed-reports: pure renderers from run results to terminal text, JUnit XML, JSON and HTML.
//!
//! Nothing here does I/O beyond writing into the `Write` it is given: the runner produces one
//! [`model::RunReport`], and each renderer turns it into its format.

pub mod json;
pub mod junit;
pub mod matrix;
pub mod model;
pub mod mutation;
pub mod terminal;
mod text;

pub use model::*;
