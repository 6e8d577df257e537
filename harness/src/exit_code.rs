//! The exit codes of `imfed`, in one place.

/// Every selected scenario passed (or failed as expected, or was skipped), and at least one
/// ran to a verdict.
pub const SUCCESS: u8 = 0;
/// A scenario failed, passed although expected to fail, or passed only on a retry (flaky,
/// unless `--accept-flaky`); or no scenario ran to a verdict (all skipped or unsupported).
pub const FAILURES: u8 = 1;
/// Bad command line, invalid scenario, target or expectations files, or a selection that
/// matches no scenario: nothing ran.
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
  1    a scenario failed, passed although expected to fail, or passed only on a retry
       (flaky, unless --accept-flaky); or nothing ran to a verdict (all skipped)
  2    bad command line, invalid scenario/target/expectations files, or a selection
       that matches no scenario (nothing ran)
  3    the target or the reference server could not be started or reached
  4    a report could not be written
  130  interrupted; the reports hold what ran";
