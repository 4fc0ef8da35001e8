//! `modelguard.toml` (or `--config FILE`): the scan policy a team keeps in its repository.
//!
//! ```toml
//! fail_on = "high"
//! include = ["**/*.bin", "**/*.pt"]      # default: every file
//! exclude = ["**/testdata/**"]
//!
//! [[allow]]                               # a class of your own in your checkpoints
//! global = "mypkg.layers.Scaler"
//! justification = "our class; reviewed in PR 123"
//!
//! [[suppress]]
//! rule = "MG013"
//! paths = ["legacy/**"]
//! justification = "archives written by our old exporter have zero CRCs"
//!
//! [[unscanned]]                           # formats modelguard does not read
//! formats = ["onnx"]                      # ids from the README's table; default: all
//! paths = ["exports/**"]
//! justification = "our own exports, loaded by onnxruntime without custom op libraries"
//! ```
//!
//! Allowing never makes anything run: it lowers the unknown-global findings (MG003-MG006) of
//! exactly that global to info and echoes the justification. Known dangerous callables cannot
//! be allowed. Suppressed findings move to the file's `suppressed` list with the justification.
//! Accepted unscanned content no longer fails the scan: it stays listed with the justification,
//! and a file that is nothing but an unread format becomes `skipped`.

use crate::policy::findings::{Rule, Severity};
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    fail_on: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    exclude: Vec<String>,
    #[serde(default)]
    allow: Vec<Allow>,
    #[serde(default)]
    suppress: Vec<Suppress>,
    #[serde(default)]
    unscanned: Vec<AcceptUnscanned>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptUnscanned {
    #[serde(default)]
    formats: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    justification: String,
}

/// An `[[unscanned]]` entry: unread content the team has looked at and accepts.
pub struct Acceptance {
    formats: Vec<String>,
    paths: Option<GlobSet>,
    pub justification: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    pub global: String,
    pub justification: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Suppress {
    rule: String,
    #[serde(default)]
    paths: Vec<String>,
    justification: String,
}

pub struct Suppression {
    pub rule: Rule,
    paths: Option<GlobSet>,
    pub justification: String,
}

#[derive(Default)]
pub struct Config {
    pub fail_on: Option<Option<Severity>>,
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    pub allow: Vec<Allow>,
    pub suppress: Vec<Suppression>,
    pub unscanned: Vec<Acceptance>,
}

fn globs(patterns: &[String]) -> Result<Option<GlobSet>, String> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).map_err(|e| format!("glob {p:?}: {e}"))?);
    }
    b.build().map(Some).map_err(|e| e.to_string())
}

impl Config {
    /// `explicit` (`--config`), else `modelguard.toml` in the current folder, else defaults.
    pub fn load(explicit: Option<&Path>) -> Result<Config, String> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new("modelguard.toml").is_file() => "modelguard.toml".into(),
            None => return Ok(Config::default()),
        };
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        Config::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let f: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let fail_on = match f.fail_on.as_deref() {
            None => None,
            Some(s) if s.eq_ignore_ascii_case("none") => Some(None),
            Some(s) => Some(Some(s.parse::<Severity>()?)),
        };
        for a in &f.allow {
            let (m, n) = a
                .global
                .rsplit_once('.')
                .ok_or_else(|| format!("allow: {:?} is not module.name", a.global))?;
            if crate::policy::registry::dangerous(m, n).is_some() {
                return Err(format!(
                    "allow: {} is a known dangerous callable and cannot be allowed",
                    a.global
                ));
            }
            if a.justification.trim().is_empty() {
                return Err(format!("allow: {} needs a justification", a.global));
            }
        }
        let mut suppress = Vec::new();
        for s in &f.suppress {
            let rule = Rule::from_id(&s.rule)
                .ok_or_else(|| format!("suppress: unknown rule {:?}", s.rule))?;
            if s.justification.trim().is_empty() {
                return Err(format!("suppress: {} needs a justification", s.rule));
            }
            suppress.push(Suppression {
                rule,
                paths: globs(&s.paths)?,
                justification: s.justification.clone(),
            });
        }
        let mut unscanned = Vec::new();
        for u in &f.unscanned {
            for id in &u.formats {
                let known =
                    id == "archive" || crate::formats::registry::TABLE.iter().any(|e| e.id == id);
                if !known {
                    return Err(format!("unscanned: unknown format {id:?}"));
                }
            }
            if u.justification.trim().is_empty() {
                return Err("unscanned: every entry needs a justification".into());
            }
            unscanned.push(Acceptance {
                formats: u.formats.clone(),
                paths: globs(&u.paths)?,
                justification: u.justification.clone(),
            });
        }
        Ok(Config {
            fail_on,
            include: globs(&f.include)?,
            exclude: globs(&f.exclude)?,
            allow: f.allow,
            suppress,
            unscanned,
        })
    }

    /// Whether a file (path relative to its scan root) is scanned at all.
    pub fn selects(&self, relative: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(relative))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(relative))
    }

    pub fn suppression(&self, rule: Rule, relative: &str) -> Option<&Suppression> {
        self.suppress
            .iter()
            .find(|s| s.rule == rule && s.paths.as_ref().is_none_or(|g| g.is_match(relative)))
    }

    /// The `[[unscanned]]` entry accepting unread content of `format` in a file, if any.
    pub fn acceptance(&self, format: &str, relative: &str) -> Option<&Acceptance> {
        self.unscanned.iter().find(|a| {
            (a.formats.is_empty() || a.formats.iter().any(|f| f == format))
                && a.paths.as_ref().is_none_or(|g| g.is_match(relative))
        })
    }

    /// The allow entry covering a finding of `rule` about `global`, if any.
    pub fn allowance(&self, rule: Rule, global: Option<&str>) -> Option<&Allow> {
        let lowerable = matches!(
            rule,
            Rule::UnknownCall | Rule::UnknownClass | Rule::UnknownGlobal | Rule::BuildOnGlobal
        );
        let g = global?;
        lowerable
            .then(|| self.allow.iter().find(|a| a.global == g))
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_parses_and_applies() {
        let c = Config::parse(
            r#"
fail_on = "medium"
include = ["**/*.pt"]
exclude = ["skip/**"]
[[allow]]
global = "mypkg.Scaler"
justification = "ours"
[[suppress]]
rule = "MG013"
paths = ["old/**"]
justification = "zero CRCs from our exporter"
"#,
        )
        .unwrap();
        assert_eq!(c.fail_on, Some(Some(Severity::Medium)));
        assert!(c.selects("a/b.pt") && !c.selects("a/b.json") && !c.selects("skip/x.pt"));
        assert!(c.suppression(Rule::ContainerAnomaly, "old/a.pt").is_some());
        assert!(c.suppression(Rule::ContainerAnomaly, "new/a.pt").is_none());
        assert!(c
            .allowance(Rule::UnknownCall, Some("mypkg.Scaler"))
            .is_some());
        assert!(c
            .allowance(Rule::DangerousCall, Some("mypkg.Scaler"))
            .is_none());
    }

    #[test]
    fn dangerous_globals_and_missing_justifications_are_refused() {
        let e = Config::parse("[[allow]]\nglobal = \"os.system\"\njustification = \"x\"\n");
        assert!(e.err().unwrap().contains("dangerous"));
        let e = Config::parse("[[allow]]\nglobal = \"a.B\"\njustification = \" \"\n");
        assert!(e.err().unwrap().contains("justification"));
        let e = Config::parse("[[suppress]]\nrule = \"MG999\"\njustification = \"x\"\n");
        assert!(e.err().unwrap().contains("unknown rule"));
        assert!(Config::parse("colour = 1").is_err());
        let e = Config::parse("[[unscanned]]\nformats = [\"onnx\"]\njustification = \"\"\n");
        assert!(e.err().unwrap().contains("justification"));
        let e = Config::parse("[[unscanned]]\nformats = [\"0nnx\"]\njustification = \"x\"\n");
        assert!(e.err().unwrap().contains("unknown format"));
    }

    #[test]
    fn unscanned_acceptances_match_format_and_path() {
        let c = Config::parse(
            "[[unscanned]]\nformats = [\"onnx\"]\npaths = [\"exports/**\"]\njustification = \"ours\"\n",
        )
        .unwrap();
        assert!(c.acceptance("onnx", "exports/a.onnx").is_some());
        assert!(c.acceptance("onnx", "other/a.onnx").is_none());
        assert!(c.acceptance("hdf5", "exports/a.h5").is_none());
    }
}
