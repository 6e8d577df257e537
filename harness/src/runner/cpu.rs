//! CPU time by thread name, from `/proc/self/task` (Linux): how much of a run's CPU the
//! harness itself used, apart from the in-process reference servers.

use std::time::Duration;

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on Linux).
const TICKS_PER_SECOND: u64 = 100;

/// CPU time used so far, split into the reference servers' threads and everything else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSplit {
    /// Threads named after [`super::env::SERVER_THREAD`].
    pub servers: Duration,
    /// The harness: every other thread of this process.
    pub harness: Duration,
}

impl CpuSplit {
    /// The CPU used since `earlier`.
    pub fn since(self, earlier: CpuSplit) -> CpuSplit {
        CpuSplit {
            servers: self.servers.saturating_sub(earlier.servers),
            harness: self.harness.saturating_sub(earlier.harness),
        }
    }
}

/// Reads the current split; `None` where `/proc` is not available.
pub fn sample() -> Option<CpuSplit> {
    let mut split = CpuSplit::default();
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let path = entry.path();
        let (Ok(name), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        // Fields after the parenthesized name: state is field 3, utime 14, stime 15.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |index: usize| {
            fields
                .get(index)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let used = Duration::from_millis((ticks(11) + ticks(12)) * 1000 / TICKS_PER_SECOND);
        if name.trim().starts_with(super::env::SERVER_THREAD) {
            split.servers += used;
        } else {
            split.harness += used;
        }
    }
    Some(split)
}
