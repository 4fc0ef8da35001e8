//! What each global means and how severe each finding is: the registry of modelled names
//! (`registry.toml`), the interpreters of registered calls, and the grades.

pub mod findings;
pub mod grade;
pub mod interpret;
pub mod registry;
