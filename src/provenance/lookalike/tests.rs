use super::*;

fn index() -> &'static LookalikeIndex {
    LookalikeIndex::builtin()
}

fn flag(source: &str) -> Lookalike {
    match index().check_source(source) {
        Ok(Some(found)) => found,
        other => panic!("{source:?} should be flagged, got {other:?}"),
    }
}

fn clean(source: &str) {
    match index().check_source(source) {
        Ok(None) => {}
        other => panic!("{source:?} should pass, got {other:?}"),
    }
}

fn reject(source: &str) -> SourceError {
    match SourceRef::parse(source) {
        Err(e) => e,
        Ok(ok) => panic!("{source:?} should be rejected, parsed as {ok:?}"),
    }
}

/// Every pair of list entries that would count as imitating each other, had one of them
/// not been on the list. Exact matches come first, so these never produce findings.
#[test]
fn collisions() {
    let mut table = Table::default();
    let mut pairs = BTreeSet::new();
    for (list, part) in [
        (&index().orgs, Part::Organisation),
        (&index().repos, Part::Repository),
    ] {
        for a in list.iter() {
            for b in list.iter() {
                if a.name != b.name && compare(part, &a.spelling, b, &mut table).is_some() {
                    let (x, y) = if a.name < b.name { (a, b) } else { (b, a) };
                    pairs.insert(format!("{} {}", x.name, y.name));
                }
            }
        }
    }
    let pairs: Vec<_> = pairs.into_iter().collect();
    assert_eq!(pairs, KNOWN_COLLISIONS, "{pairs:#?}");
}

const KNOWN_COLLISIONS: &[&str] = &[
    "FacebookAI facebook",
    "HuggingFaceFW HuggingFaceH4",
    "HuggingFaceFW HuggingFaceM4",
    "HuggingFaceFW HuggingFaceTB",
    "HuggingFaceFW huggingface",
    "HuggingFaceH4 HuggingFaceM4",
    "HuggingFaceH4 HuggingFaceTB",
    "HuggingFaceH4 huggingface",
    "HuggingFaceM4 HuggingFaceTB",
    "HuggingFaceM4 huggingface",
    "HuggingFaceTB huggingface",
    "flax-community mlx-community",
    "xai-org zai-org",
];

#[test]
fn bundled_list_parses_and_is_a_sensible_size() {
    let idx = LookalikeIndex::parse(BUILTIN_LIST).unwrap();
    let orgs = idx.orgs().count();
    assert!((150..=300).contains(&orgs), "{orgs} organisations");
    assert!((20..=80).contains(&idx.repos().count()));
}

#[test]
fn every_listed_name_matches_itself_in_any_case() {
    for org in index().orgs() {
        for spelled in [
            org.to_string(),
            org.to_ascii_lowercase(),
            org.to_ascii_uppercase(),
        ] {
            clean(&format!("hf://{spelled}/some-model"));
            clean(&format!("{spelled}/some-model@main"));
        }
    }
    for repo in index().repos() {
        clean(&format!("hf://someone/{repo}"));
        clean(&format!("hf://someone/{}", repo.to_ascii_lowercase()));
    }
}

#[test]
fn poisongpt() {
    let found = flag("hf://EleuterAI/gpt-j-6B@main");
    assert_eq!(found.part, Part::Organisation);
    assert_eq!(found.found, "EleuterAI");
    assert_eq!(found.imitates, "EleutherAI");
    assert_eq!(found.tricks, [Trick::DroppedLetter]);
    assert_eq!(found.distance, 1);
    assert!((found.normalized_distance - 0.1).abs() < 1e-9);
    assert_eq!(
        found.to_string(),
        "the organisation \"EleuterAI\" looks like the well-known \"EleutherAI\" \
         (dropped letter)"
    );
}

#[test]
fn must_flag() {
    let cases: &[(&str, &str, &[Trick], usize)] = &[
        ("meta-1lama", "meta-llama", &[Trick::DigitLetterSwap], 0),
        ("rnicrosoft", "microsoft", &[Trick::LookalikeLetters], 0),
        ("googIe", "google", &[Trick::LookalikeLetters], 0),
        ("openal", "openai", &[Trick::LookalikeLetters], 0),
        // `l` for `i` again, not an extra syllable: reads as "mistralai" at a glance.
        ("mistralal", "mistralai", &[Trick::LookalikeLetters], 0),
        ("m\u{435}ta-llama", "meta-llama", &[Trick::Homoglyph], 0),
        ("g\u{3bf}\u{3bf}gle", "google", &[Trick::Homoglyph], 0),
        (
            "\u{ff4d}\u{ff45}\u{ff54}\u{ff41}-llama",
            "meta-llama",
            &[Trick::Homoglyph],
            0,
        ),
        ("0penai", "openai", &[Trick::DigitLetterSwap], 0),
        ("micr0s0ft", "microsoft", &[Trick::DigitLetterSwap], 0),
        ("Qvven", "Qwen", &[Trick::LookalikeLetters], 0),
        ("nvidla", "nvidia", &[Trick::LookalikeLetters], 0),
        ("EleutherIA", "EleutherAI", &[Trick::Transposition], 1),
        ("huggingfcae", "huggingface", &[Trick::Transposition], 1),
        ("Qewn", "Qwen", &[Trick::Transposition], 1),
        ("microsofft", "microsoft", &[Trick::ExtraLetter], 1),
        ("deepseek_ai", "deepseek-ai", &[Trick::Substitution], 1),
        ("metallama", "meta-llama", &[Trick::DroppedLetter], 1),
        ("stabilltyai", "stabilityai", &[Trick::LookalikeLetters], 0),
        // Read as "mistr[al]ai": two dropped letters, no look-alike needed.
        ("mistrai", "mistralai", &[Trick::DroppedLetter], 2),
        (
            "mikrosoftt",
            "microsoft",
            &[Trick::ExtraLetter, Trick::Substitution],
            2,
        ),
        (
            "meta-\u{200b}llama",
            "meta-llama",
            &[Trick::HiddenCharacter],
            0,
        ),
        ("meta-llam\u{0301}a", "meta-llama", &[Trick::Homoglyph], 0),
        (
            "m\u{435}ta-lama",
            "meta-llama",
            &[Trick::Homoglyph, Trick::DroppedLetter],
            1,
        ),
        // A Cyrillic letter the table does not map still stands in for a Latin one.
        ("nvid\u{44f}a", "nvidia", &[Trick::Homoglyph], 1),
        ("5alesforce", "Salesforce", &[Trick::DigitLetterSwap], 0),
        ("fac3book", "facebook", &[Trick::DigitLetterSwap], 0),
        ("bigsclence", "bigscience", &[Trick::LookalikeLetters], 0),
        ("vvizardlm", "WizardLM", &[Trick::LookalikeLetters], 0),
        ("cleepseek-ai", "deepseek-ai", &[Trick::LookalikeLetters], 0),
        ("o1-ai", "01-ai", &[Trick::DigitLetterSwap], 0),
    ];
    for &(org, imitates, tricks, distance) in cases {
        let found = flag(&format!("hf://{org}/model"));
        assert_eq!(found.part, Part::Organisation, "{org}");
        assert_eq!(found.found, org);
        assert_eq!(found.imitates, imitates, "{org}");
        assert_eq!(found.tricks, tricks, "{org}");
        assert_eq!(found.distance, distance, "{org}");
        assert!((0.0..=1.0).contains(&found.normalized_distance));
    }
}

#[test]
fn styled_alphabets() {
    // Mathematical sans-serif bold lowercase starts at U+1D5EE.
    let styled: String = "microsoft"
        .bytes()
        .map(|b| char::from_u32(0x1D5EE + u32::from(b - b'a')).unwrap())
        .collect();
    let found = flag(&format!("hf://{styled}/model"));
    assert_eq!(
        (
            found.imitates.as_str(),
            found.tricks.as_slice(),
            found.distance
        ),
        ("microsoft", &[Trick::Homoglyph][..], 0)
    );
}

#[test]
fn unrelated_names_pass() {
    for org in [
        "my-lab",
        "acme-research",
        "username123",
        "jdoe",
        "team-alpha",
        "deep-learning-lab",
        "vision-research",
        "nlp-group",
        "johnsmith",
        "data-science-club",
        "stanford-oval",
        "mit-han-lab",
        "julien-c",
        "osanseviero",
        "lvwerra",
        "ybelkada",
        "merve",
        "abidlabs",
        "nielsr",
        "sayakpaul",
        "thomwolf",
        "lysandre",
        "ArthurZ",
        "Narsil",
        "clem",
        "openai-community-fan-club",
        "meta-llama-research-group",
        "x",
        "a_b.c-d",
        // Short well-known names tolerate no plain edit: these are real words and names.
        "Owen",
        "gwen",
        "ibn",
        "and",
        "bart",
    ] {
        clean(&format!("hf://{org}/model"));
    }
    // A different script is fine when it imitates nothing.
    clean("hf://\u{43c}\u{43e}\u{44f}-\u{43b}\u{430}\u{431}\u{43e}\u{440}\u{430}\u{442}\u{43e}\u{440}\u{438}\u{44f}/model");
}

#[test]
fn thresholds_scale_with_length() {
    assert_eq!(
        (max_edits(4), max_edits(5), max_edits(8), max_edits(9)),
        (0, 1, 1, 2)
    );
    // 6 letters: one edit is an imitation, two are a different name.
    flag("nvidiax/m");
    clean("nvidiaxy/m");
    // 9 letters: two edits still imitate, three do not.
    flag("mikrosoftt/m");
    clean("mikrosofttt/m");
    // Look-alike characters are free at any length.
    flag("1bm/m");
    flag("BAAl/m");
    flag("arnd/m");
    // Lookup is case-insensitive, so whoever owns `baal` can display it as `BAAl`.
    assert_eq!(flag("baal/m").imitates, "BAAI");
    // A swap next to a free look-alike pair is still a single swap on a short name:
    // `eDd` is `Deci` (skeleton `decl`) with `de` swapped and `d` for `cl`.
    let found = flag("eDd/m");
    assert_eq!(found.imitates, "Deci");
    assert_eq!(
        found.tricks,
        [Trick::LookalikeLetters, Trick::Transposition]
    );
}

#[test]
fn closest_and_first_listed_wins() {
    // One edit from zai-org and from xai-org; the list order decides.
    assert_eq!(flag("yai-org/m").imitates, "zai-org");
    // Exact beats everything, even when another entry is close.
    clean("HuggingFaceH4/m");
    clean("huggingface/m");
    assert_eq!(flag("HuggingFaceH5/m").imitates, "HuggingFaceH4");
}

#[test]
fn repository_names_only_flag_lookalike_characters() {
    clean("meta-llama/Llama-2-7b-hf");
    clean("openai-community/gpt2");
    clean("someone/gpt2");
    clean("google-bert/bert-base-uncased");
    // Plain edits are other real repositories or fine-tunes.
    clean("someone/Llama-2-7b");
    clean("someone/bert-base-uncase");
    clean("someone/gpt2-finetuned");
    let found = flag("meta-llama/L1ama-2-7b-hf");
    assert_eq!(found.part, Part::Repository);
    assert_eq!(found.imitates, "Llama-2-7b-hf");
    assert_eq!(found.tricks, [Trick::DigitLetterSwap]);
    let found = flag("hf://someone/bert-base-uncas\u{435}d@main");
    assert_eq!(found.part, Part::Repository);
    assert_eq!(found.tricks, [Trick::Homoglyph]);
    // The organisation is reported first.
    let found = flag("EleuterAI/g\u{440}t2");
    assert_eq!(found.part, Part::Organisation);
}

#[test]
fn display_escapes_what_you_cannot_see() {
    let found = flag("hf://m\u{435}ta-llama/x");
    assert_eq!(
        found.to_string(),
        "the organisation \"m\\u{435}ta-llama\" looks like the well-known \"meta-llama\" \
         (homoglyph)"
    );
    let found = flag("hf://meta-\u{200b}llama/x");
    assert!(found.to_string().contains("meta-\\u{200b}llama"));
    assert!(found.to_string().ends_with("(hidden character)"));
}

#[test]
fn accepted_source_forms() {
    let s = SourceRef::parse("hf://EleutherAI/gpt-j-6b@refs/pr/12").unwrap();
    assert_eq!(
        (s.org(), s.name(), s.revision()),
        ("EleutherAI", "gpt-j-6b", Some("refs/pr/12"))
    );
    let s = SourceRef::parse("HF://org/name").unwrap();
    assert_eq!((s.org(), s.name(), s.revision()), ("org", "name", None));
    let s = SourceRef::parse("org_1/Name.v2@0123456789abcdef0123456789abcdef01234567").unwrap();
    assert_eq!(
        s.to_string(),
        "hf://org_1/Name.v2@0123456789abcdef0123456789abcdef01234567"
    );
    let long = "a".repeat(MAX_NAME_CHARS);
    SourceRef::parse(&format!("{long}/{long}@v1.0+build")).unwrap();
    clean("hf://meta-llama/Llama-2-7b-hf@main");
    clean("META-LLAMA/llama-2-7b-hf");
    let s = SourceRef::parse("m\u{435}ta/x.git2").unwrap();
    assert_eq!(s.to_string(), "hf://m\\u{435}ta/x.git2");
    // A multi-byte character in the last four bytes must not trip the `.git` check.
    SourceRef::parse("org/name\u{430}\u{430}").unwrap();
}

#[test]
fn rejected_sources() {
    use SourceError as E;
    let org = Part::Organisation;
    let repo = Part::Repository;
    assert_eq!(reject(""), E::Empty);
    assert_eq!(reject("hf://"), E::NotOrgAndName { segments: 1 });
    assert_eq!(reject("gpt2"), E::NotOrgAndName { segments: 1 });
    assert_eq!(reject("hf://a/b/c"), E::NotOrgAndName { segments: 3 });
    assert_eq!(reject("hf://a/b/"), E::NotOrgAndName { segments: 3 });
    assert_eq!(reject("hf:///name"), E::EmptyPart { part: org });
    assert_eq!(reject("hf://org/"), E::EmptyPart { part: repo });
    assert_eq!(reject("org/\u{200b}\u{fe0f}"), E::EmptyPart { part: repo });
    assert_eq!(reject("org/name@"), E::EmptyRevision);
    assert_eq!(reject("org/name@a@b"), E::MultipleAt);
    assert_eq!(reject("@org/name@main"), E::MultipleAt);
    assert_eq!(reject("org/na me"), E::Whitespace { ch: ' ' });
    assert_eq!(reject("org/name\u{a0}"), E::Whitespace { ch: '\u{a0}' });
    assert_eq!(reject("org/name\n"), E::ControlCharacter { ch: '\n' });
    assert_eq!(
        reject("org/\u{7f}name"),
        E::ControlCharacter { ch: '\u{7f}' }
    );
    assert_eq!(
        reject("org/\u{202e}emaN"),
        E::BidiControl { ch: '\u{202e}' }
    );
    assert_eq!(
        reject("https://huggingface.co/org/name"),
        E::UnsupportedScheme {
            scheme: "https".into()
        }
    );
    assert_eq!(
        reject("hf:org/name"),
        E::InvalidCharacter { part: org, ch: ':' }
    );
    assert_eq!(
        reject("org/na%2fme"),
        E::InvalidCharacter {
            part: repo,
            ch: '%'
        }
    );
    assert_eq!(
        reject("org\\x/name"),
        E::InvalidCharacter {
            part: org,
            ch: '\\'
        }
    );
    for bad in [
        "-org/name",
        "org./name",
        "org/..",
        "org/.",
        "org/a--b",
        "org/a..b",
        "org/x.GIT",
    ] {
        assert!(matches!(reject(bad), E::InvalidName { .. }), "{bad}");
    }
    let long = "a".repeat(MAX_NAME_CHARS + 1);
    assert_eq!(
        reject(&format!("{long}/name")),
        E::PartTooLong {
            part: org,
            chars: MAX_NAME_CHARS + 1
        }
    );
    assert_eq!(
        reject(&format!("org/{}", "\u{430}".repeat(MAX_NAME_CHARS + 1))),
        E::PartTooLong {
            part: repo,
            chars: MAX_NAME_CHARS + 1
        }
    );
    assert!(matches!(
        reject("org/name@http://x"),
        E::InvalidRevision { .. }
    ));
    assert_eq!(reject("://org/name"), E::NotOrgAndName { segments: 4 });
    assert_eq!(
        reject("x\u{442}tp://org/name"),
        E::NotOrgAndName { segments: 4 }
    );
    let huge = "a".repeat(MAX_SOURCE_BYTES + 1);
    assert_eq!(
        reject(&huge),
        E::TooLong {
            bytes: MAX_SOURCE_BYTES + 1
        }
    );
    for rev in [
        "a..b", "/main", "main/", "a//b", "v1.lock", "a:b", "a~1", "\u{430}", ".hidden", "a/.b",
    ] {
        assert!(
            matches!(
                reject(&format!("org/name@{rev}")),
                E::InvalidRevision { .. }
            ),
            "{rev}"
        );
    }
    assert!(matches!(
        reject(&format!("org/name@{}", "a".repeat(MAX_REVISION_BYTES + 1))),
        E::InvalidRevision { .. }
    ));
    // check_source surfaces the same errors.
    assert_eq!(
        index().check_source("gpt2"),
        Err(E::NotOrgAndName { segments: 1 })
    );
}

#[test]
fn error_messages_are_readable() {
    assert_eq!(
        reject("gpt2").to_string(),
        "expected org/name, got 1 '/'-separated part (a model id names its organisation or \
         user, e.g. openai-community/gpt2)"
    );
    assert_eq!(
        reject("org/\u{202e}x").to_string(),
        "the source contains the bidirectional control U+202E, which can make it display as \
         a different name"
    );
    assert_eq!(
        reject("org/a:b").to_string(),
        "the repository name contains ':'; Hugging Face names use letters, digits, '-', '_' \
         and '.'"
    );
    assert_eq!(
        reject("ftp://org/name").to_string(),
        "unsupported scheme \"ftp\": expected hf://org/name[@revision] or org/name[@revision]"
    );
}

#[test]
fn data_file_errors() {
    let err = |text: &str| LookalikeIndex::parse(text).unwrap_err();
    assert_eq!(err("google\n").line, 1);
    assert!(err("[orgs]\n[people]\n")
        .message
        .contains("unknown section"));
    let dup = err("[orgs]\n# c\ngoogle\n\nGoogle # again\n");
    assert_eq!(
        (dup.line, dup.message.as_str()),
        (5, "Google is listed twice")
    );
    assert!(err("[orgs]\nm\u{435}ta\n").message.contains("not ASCII"));
    assert!(err("[orgs]\nbad name\n").message.contains("U+0020"));
    assert!(err("[orgs]\n-lead\n").message.contains("starts or ends"));
    // The same name may be both an organisation and a repository.
    let idx = LookalikeIndex::parse("[orgs]\nbloom # trailing comment\n[repos]\nbloom\n").unwrap();
    assert_eq!(idx.orgs().collect::<Vec<_>>(), ["bloom"]);
    assert_eq!(idx.repos().collect::<Vec<_>>(), ["bloom"]);
    assert_eq!(
        idx.check_source("bl00m/x").unwrap().map(|f| f.imitates),
        Some("bloom".into())
    );
}

#[test]
fn confusables_map_to_name_characters() {
    // Every table entry must land on something a Hugging Face name can contain, or the
    // comparison could never line up with a real name.
    for cp in 0x80..=0x10FFFFu32 {
        let Some(c) = char::from_u32(cp) else {
            continue;
        };
        if let Some(p) = prototype(c) {
            assert!(is_name_ascii(p), "U+{cp:04X} -> {p:?}");
        }
    }
    let skel = |s: &str| Spelling::of(s).skel.into_iter().collect::<String>();
    assert_eq!(
        skel("\u{430}\u{435}\u{43e}\u{440}\u{441}\u{445}\u{443}"),
        "aeopcxy"
    );
    assert_eq!(skel("\u{3b1}\u{3bf}\u{3bd}\u{3c1}\u{3b9}"), "aovpl");
    assert_eq!(
        skel("\u{391}\u{392}\u{395}\u{397}\u{39a}\u{39c}\u{39d}"),
        "abehkmn"
    );
    assert_eq!(
        skel("\u{410}\u{412}\u{415}\u{41d}\u{41a}\u{41c}\u{422}"),
        "abehkmt"
    );
    assert_eq!(
        skel("\u{ff27}\u{ff4f}\u{ff10}\u{ff47}\u{ff4c}\u{ff45}\u{ff0d}\u{ff3f}"),
        "google-_"
    );
    assert_eq!(skel("\u{1d400}\u{1d41a}\u{1d7ce}\u{1d7cf}"), "aaol");
    assert_eq!(skel("\u{24b6}\u{24e9}\u{2460}"), "azl");
    assert_eq!(skel("I1il|"), "llll|");
    assert_eq!(skel("\u{212a}\u{130}\u{c9}\u{2010}"), "kle-");
    assert_eq!(skel("a\u{200b}b\u{301}"), "ab");
}

#[test]
fn longest_inputs_stay_cheap() {
    // Worst case: 96 characters against every entry, with look-alike pairs on every
    // position so no length filter helps.
    let name = "rn".repeat(MAX_NAME_CHARS / 2);
    let started = std::time::Instant::now();
    for _ in 0..10 {
        index().check_source(&format!("{name}/{name}")).unwrap();
    }
    // Generous even for an unoptimised build on a busy machine.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}
