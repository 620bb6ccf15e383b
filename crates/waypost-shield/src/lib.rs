#![forbid(unsafe_code)]
pub mod error;
mod hash;
pub mod lists;
pub mod operator;
pub mod phone;
pub mod reason;
pub mod urls;
