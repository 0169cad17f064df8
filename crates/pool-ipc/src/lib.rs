//! Process workers for pool: fork and spawn start methods, shared-memory transport, fault detection.
