//! The rollout state machine (in progress).
