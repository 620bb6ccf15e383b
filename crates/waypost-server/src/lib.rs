//! Waypost's server: configuration, the HTTP API, the key ring in use, the
//! shield instance, and the background workers, all sharing one [`state::AppState`].
#![forbid(unsafe_code)]

pub mod audit_chain;
pub mod auth;
pub mod automation_worker;
pub mod backup;
pub mod backup_schedule;
pub mod billing;
pub mod cache;
pub mod campaign_sender;
pub mod config;
pub mod detect;
pub mod dispatch;
mod edge_io;
pub mod emails;
pub mod error;
pub mod event_feed;
pub mod events;
pub mod guard;
pub mod http;
pub mod keys;
pub mod llm;
pub mod mail;
pub mod messaging;
pub mod ops;
pub mod quota;
pub mod retention;
pub mod serve;
pub mod shield;
pub mod signals;
pub mod startup;
pub mod state;
pub mod stripe_api;
pub mod telemetry;
pub mod templates;
pub mod web;
pub mod webhooks;
pub mod workers;

pub use config::{Config, Overrides};
pub use http::openapi_json;
pub use startup::{Application, StartupError};
