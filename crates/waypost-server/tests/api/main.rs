//! HTTP-level tests against the real application on 127.0.0.1:0, each on
//! SQLite and on PostgreSQL.

mod helpers;

mod encryption;
mod errors;
mod keys;
mod operations;
mod tls;
