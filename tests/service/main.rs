//! `modelguard serve` over real HTTP on loopback: the API end to end, access control and
//! hostile requests, load with a crash in the middle, and the web page in headless Chromium.

#[path = "../common/mod.rs"]
mod common;

mod api;
mod browser;
mod load;
mod security;
mod support;
