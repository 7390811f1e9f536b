//! How each strategy moves from one release to the next, as a pure function of what is observed.
//!
//! Every strategy answers the same question each time the controller looks: given the scales I asked
//! for so far and the instances that are ready now, what scales and traffic do I want, and am I done?
//! The answer depends only on its inputs, so a restarted daemon that reloads the rollout resumes it.

pub mod blue_green;
pub mod canary;
pub mod recreate;
pub mod rolling;
