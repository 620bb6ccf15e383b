//! Who is calling and what they may do: session and API-key authentication,
//! the permission check every route declares through [`Authorized`], step-up
//! re-authentication, CSRF protection for cookie sessions, and rate limits.

pub mod caller;
pub mod operator;
pub mod permission;

pub use crate::guard::{clock, cookies, lockout, rate_limit};

pub use caller::{ApiKeyCaller, Caller, SessionCaller};
pub use clock::{Clock, ManualClock, SystemClock};
pub use operator::{Operator, verify_operator_token};
pub use permission::{Authorized, RequiredAction, WorkspaceCaller};
