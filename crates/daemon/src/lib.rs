//! The control plane: the controller that drives rollouts, and the API.
