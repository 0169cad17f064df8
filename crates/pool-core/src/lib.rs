//! The worker pool itself: tasks, chunking, scheduling, worker life cycle, errors, thread back end.
