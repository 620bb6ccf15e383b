//! Account rules shared by sign-up, setup, invitations and password changes.

use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use waypost_core::auth::check_password;

use crate::error::{ApiError, Problem};
use crate::state::AppState;

/// Checks a new password against the policy (length, common passwords,
/// strength, the account's own words in `inputs`) and hashes it off the runtime.
pub async fn hash_new_password(
    state: &AppState,
    password: &SecretString,
    inputs: &[&str],
) -> Result<String, ApiError> {
    check_password(password.expose_secret(), inputs).map_err(|e| {
        ApiError::from(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "weak-password",
            "Password refused",
            e.to_string(),
        ))
    })?;
    let hasher = state.hasher.clone();
    let password = password.expose_secret().to_owned();
    Ok(tokio::task::spawn_blocking(move || hasher.hash(&password))
        .await
        .map_err(anyhow::Error::from)?)
}
