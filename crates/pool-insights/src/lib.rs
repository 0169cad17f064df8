//! Worker insights for pool: timing statistics, percentiles, tables and JSON.
