//! Bearer tokens from a file that holds only their sha256, and the two roles.
//!
//! ```toml
//! [[token]]
//! name = "ci"          # owner of the jobs this token submits; shown in logs
//! role = "submit"      # or "admin"
//! sha256 = "…"         # `modelguard token --name ci --role submit` prints both halves
//! ```
//! A presented token is hashed and looked up; tokens are 256-bit random, so the hash lookup
//! leaks nothing an attacker can use.

use super::problem::Problem;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Submit,
    Admin,
}

/// Who made a request (put in the request's extensions by the auth layer).
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this principal may see a job owned by `owner`.
    pub fn may_read(&self, owner: &str) -> bool {
        self.is_admin() || self.name == owner
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    token: Vec<TokenEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    name: String,
    role: Role,
    sha256: String,
}

pub struct Tokens {
    by_hash: HashMap<[u8; 32], Principal>,
}

fn sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Tokens {
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the tokens file {}: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Tokens, String> {
        let file: TokenFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut by_hash = HashMap::new();
        for t in file.token {
            let hash = parse_hex32(&t.sha256.to_ascii_lowercase())
                .ok_or_else(|| format!("token {:?}: sha256 is not 64 hex digits", t.name))?;
            if t.name.is_empty() || t.name.chars().any(char::is_control) {
                return Err("a token has an empty or unprintable name".into());
            }
            let p = Principal {
                name: t.name,
                role: t.role,
            };
            if by_hash.insert(hash, p).is_some() {
                return Err("two entries have the same token".into());
            }
        }
        if by_hash.is_empty() {
            return Err("no [[token]] entries: nobody could use the service".into());
        }
        Ok(Tokens { by_hash })
    }

    /// The principal of an `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, Problem> {
        let Some(value) = authorization else {
            return Err(Problem::unauthorized(
                "send `Authorization: Bearer <token>`",
            ));
        };
        let token = value
            .strip_prefix("Bearer ")
            .ok_or_else(|| Problem::unauthorized("only bearer tokens are accepted"))?;
        self.by_hash
            .get(&sha256(token.trim()))
            .cloned()
            .ok_or_else(|| Problem::unauthorized("the token is not valid"))
    }
}

/// A new random token and its tokens-file entry.
pub fn new_token(name: &str, role: &str) -> Result<(String, String), String> {
    if !matches!(role, "submit" | "admin") {
        return Err(format!("role must be submit or admin, not {role:?}"));
    }
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no randomness: {e}"))?;
    let token = format!("mg_{}", crate::cli::report::hex(&bytes));
    let entry = format!(
        "[[token]]\nname = {}\nrole = \"{role}\"\nsha256 = \"{}\"\n",
        // A JSON string literal is also a valid TOML basic string.
        serde_json::to_string(name).map_err(|e| e.to_string())?,
        crate::cli::report::hex(&sha256(&token))
    );
    Ok((token, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_listed_tokens_authenticate_with_their_role() {
        let (token, entry) = new_token("ci", "submit").unwrap();
        let tokens = Tokens::parse(&entry).unwrap();
        let p = tokens
            .authenticate(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!((p.name.as_str(), p.role), ("ci", Role::Submit));
        assert!(tokens.authenticate(Some("Bearer mg_00")).is_err());
        assert!(tokens
            .authenticate(Some(&format!("Basic {token}")))
            .is_err());
        assert!(tokens.authenticate(None).is_err());
        assert!(!entry.contains(&token), "the file holds only the hash");
        assert!(Tokens::parse("").is_err());
    }
}
