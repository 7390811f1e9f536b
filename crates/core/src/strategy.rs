//! Strategies (in progress).
