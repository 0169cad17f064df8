//! The integration suite of the `pool` facade: one test body, run against every start method.

mod suite;
