//! Business rules, one module per area. Domain code never builds HTTP responses.

pub mod aggregate;
pub mod analysis;
pub mod auth;
pub mod chat;
pub mod comics;
pub mod export;
pub mod interactions;
pub mod limits;
pub mod llm;
pub mod locks;
pub mod plugins;
pub mod scenes;
pub mod settings;
pub mod story;
pub mod template;
pub mod upload;
pub mod users;
pub mod vision;
