//! Alerts: what an incident e-mail says ([`render`]) and how it leaves the
//! outbox ([`email`]). Which incidents alert, and when, is decided by
//! [`crate::incident`]; this module never decides status.

pub mod email;
pub mod render;
