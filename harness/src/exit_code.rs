//! The exit codes of `imfed`, in one place.

/// Every selected scenario passed (or failed as expected, or was skipped).
pub const SUCCESS: u8 = 0;
/// A scenario failed, or passed although expected to fail.
pub const FAILURES: u8 = 1;
/// Bad command line, or invalid scenario, target or expectations files: nothing ran.
pub const USAGE: u8 = 2;
/// The target (or the reference server) could not be started or reached: nothing ran.
pub const TARGET_UNAVAILABLE: u8 = 3;
/// A report could not be written.
pub const REPORT_FAILED: u8 = 4;
/// Interrupted (Ctrl-C or SIGTERM); reports hold what ran.
pub const INTERRUPTED: u8 = 130;

/// The table for `--help`.
pub const TABLE: &str = "Exit codes:
  0    every selected scenario passed (expected failures and skips included)
  1    a scenario failed, or passed although expected to fail
  2    bad command line or invalid scenario/target/expectations files (nothing ran)
  3    the target or the reference server could not be started or reached
  4    a report could not be written
  130  interrupted; the reports hold what ran";
