//! HTTP-level tests against the real application on 127.0.0.1:0, each on
//! SQLite and on PostgreSQL.

mod helpers;
mod users;

mod encryption;
mod errors;
mod isolation;
mod keys;
mod keys_api;
mod login;
mod mfa;
mod operations;
mod setup;
mod shield;
mod tls;
