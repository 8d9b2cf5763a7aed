//! One API test binary (faster to build than many): each module boots the
//! real server on port 0 against its own fresh PostgreSQL database.

mod aliases;
mod audit;
mod auth;
mod cli;
mod conflicts;
mod ctl;
mod errors;
mod export;
mod history;
mod import;
mod openapi;
mod ownership;
mod ratelimit;
mod resolve;
mod schema;
