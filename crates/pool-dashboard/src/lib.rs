//! Live dashboard for pool: a local web server that pools report their progress and insights to.
