//! The closed sets documented from their single source: the README's rules table from
//! `policy::findings::Rule`, and docs/registry.md from the registry (src/policy/registry.toml as
//! build.rs compiled it). Run with MODELGUARD_BLESS=1 to rewrite both after a change.

use modelguard::policy::findings::Rule;
use modelguard::policy::registry::{
    ALLOW, CONSTRUCT, DANGEROUS_GLOBALS, DANGEROUS_MODULES, DANGEROUS_NAMES,
};
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("MODELGUARD_BLESS").is_some()
}

/// Markdown table cells hold no pipes or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn rules_table() -> String {
    let mut out = String::from("| rule | name | usual severity | what |\n|---|---|---|---|\n");
    for r in Rule::ALL {
        let (name, what) = r.describe();
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            r.id(),
            name,
            r.typical_severity(),
            cell(what)
        ));
    }
    out
}

fn registry_doc() -> String {
    let mut out = String::from(
        "# The registry of modelled globals\n\n\
         Generated from `src/policy/registry.toml` by `tests/registry_docs.rs` \
         (`MODELGUARD_BLESS=1 cargo test --test registry_docs` rewrites it); edit the TOML, not \
         this file. Matching is by exact `module.name` after Python 2 renames; there are no \
         prefixes. The README's \"Findings and verdicts\" says what each list means for a \
         verdict, and docs/unpickling-model.md what each registered callable does upstream.\n\n\
         ## Modelled (`[[allow]]`)\n\n\
         `use`: `call` (calls modelled for the argument shapes the interpreter accepts), `new` \
         (instantiated without arguments and restored with plain data), `value` (only \
         referenced).\n\n\
         | global | kind | use | why it is sound |\n|---|---|---|---|\n",
    );
    for e in ALLOW {
        out.push_str(&format!(
            "| `{}.{}` | {:?} | {} | {} |\n",
            e.module,
            e.name,
            e.kind,
            e.usage.as_str(),
            cell(e.reason)
        ));
    }
    out.push_str(
        "\n## Constructions from plain data (`[[construct]]`)\n\n\
         Their modules are not registered (importing them is medium). Built from plain data \
         they run only the class's own code, graded like an instantiation without arguments \
         (medium); with anything else they are calls of the file's choosing (high).\n\n\
         | global | kind | why |\n|---|---|---|\n",
    );
    for c in CONSTRUCT {
        out.push_str(&format!(
            "| `{}.{}` | {:?} | {} |\n",
            c.module,
            c.name,
            c.kind,
            cell(c.reason)
        ));
    }
    out.push_str(
        "\n## Known gadgets (`[dangerous]`)\n\n\
         These only raise a grade: a reference is high instead of medium, a call critical \
         instead of high.\n\n| exact global | why |\n|---|---|\n",
    );
    for (m, n, why) in DANGEROUS_GLOBALS {
        out.push_str(&format!("| `{m}.{n}` | {} |\n", cell(why)));
    }
    out.push_str("\n| module (and its submodules) | why |\n|---|---|\n");
    for (m, why) in DANGEROUS_MODULES {
        out.push_str(&format!("| `{m}` | {} |\n", cell(why)));
    }
    out.push_str("\n| name (any component of a global's name) | why |\n|---|---|\n");
    for (n, why) in DANGEROUS_NAMES {
        out.push_str(&format!("| `{n}` | {} |\n", cell(why)));
    }
    out
}

#[test]
fn readme_rules_table_is_generated_from_the_rules() {
    let path = root().join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let begin = text
        .find("<!-- rules:begin")
        .expect("README has a rules:begin marker");
    let begin = begin + text[begin..].find("-->").unwrap() + 3;
    let end = text
        .find("<!-- rules:end -->")
        .expect("README has a rules:end marker");
    let want = format!("\n{}", rules_table());
    if text[begin..end] != want {
        if bless() {
            let new = format!("{}{}{}", &text[..begin], want, &text[end..]);
            std::fs::write(&path, new).unwrap();
        } else {
            panic!("README's rules table is stale: run MODELGUARD_BLESS=1 cargo test --test registry_docs");
        }
    }
}

#[test]
fn docs_registry_is_generated_from_the_registry() {
    let path = root().join("docs/registry.md");
    let want = registry_doc();
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    if have != want {
        if bless() {
            std::fs::write(&path, want).unwrap();
        } else {
            panic!(
                "docs/registry.md is stale: run MODELGUARD_BLESS=1 cargo test --test registry_docs"
            );
        }
    }
}

/// Every rule id is unique and resolves back to its rule.
#[test]
fn rule_ids_round_trip() {
    let mut ids = std::collections::HashSet::new();
    for r in Rule::ALL {
        assert!(ids.insert(r.id()), "{} twice", r.id());
        assert_eq!(Rule::from_id(r.id()), Some(r));
    }
}
