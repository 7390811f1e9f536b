//! The embedded process runtime: supervised instances in their own process groups, probes, logs, restarts.
