//! Who may do what, and the account inputs that decide it: member roles, API
//! key scopes, the one permission table that maps protected actions to both,
//! validated email addresses, and the password policy applied when a member
//! chooses a password.
//!
//! Everything here is pure so the server's extractors, the CLI and the README
//! generator all read the same rules; there is deliberately no second place
//! where a permission could be granted.

mod email;
mod password_policy;
mod permissions;
mod roles;

pub use email::{Email, EmailError};
pub use password_policy::{
    MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, PasswordRejection, check_password,
};
pub use permissions::{
    PermissionRow, permission_table, permission_table_markdown, role_allows, scope_for,
};
pub use roles::{Action, Role, Scope, UnknownAction, UnknownRole, UnknownScope};
