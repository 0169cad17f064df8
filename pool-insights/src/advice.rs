//! What to try when the numbers show the workers were not working: the warnings that end the
//! insights table.

use crate::Insights;
use crate::table::secs;

/// Waiting above this share of the time is "mostly waiting".
const MOSTLY: f64 = 0.5;
/// Moving data is worth a warning once it takes longer than the work and at least this share.
const TRANSFER_SHARE: f64 = 0.2;

pub(crate) fn warnings(i: &Insights) -> Vec<String> {
    let mut out = Vec::new();
    if !i.enabled || i.total_time <= 0.0 {
        return out;
    }
    if i.waiting_ratio > MOSTLY {
        out.push(format!(
            "warning: workers spent {:.1}% of their time waiting for work ({} of {}). \
             The tasks may be too short for what handing them out costs (try a larger \
             chunk_size), the input may be produced slowly, or much data may go over the task \
             queue per task (pass big read-only data once as shared_objects).",
            i.waiting_ratio * 100.0,
            secs(i.total_waiting_time),
            secs(i.total_time),
        ));
    }
    if i.data_transfer_ratio >= TRANSFER_SHARE && i.total_data_transfer_time > i.total_working_time
    {
        out.push(format!(
            "warning: moving arguments and results took {:.1}% of the time ({}), more than the \
             work itself ({}). Send less per task: pass big read-only data once as \
             shared_objects (copy-on-write under Fork), return smaller results, or use \
             StartMethod::Threading when tasks need no isolation.",
            i.data_transfer_ratio * 100.0,
            secs(i.total_data_transfer_time),
            secs(i.total_working_time),
        ));
    }
    out
}
