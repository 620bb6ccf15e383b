//! The security building blocks the shared state holds: the clock, request
//! and sign-in rate limits, lockouts of unknown accounts, the session cookie,
//! and the address policy for every outbound call a tenant can aim (`ssrf`).
//! Nothing here knows the state or a request's caller.

pub mod clock;
pub mod cookies;
pub mod lockout;
pub mod rate_limit;
pub mod ssrf;

pub use clock::{Clock, ManualClock, SystemClock};
