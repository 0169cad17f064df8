//! pool: worker pools of processes or threads.
